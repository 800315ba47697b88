#!/usr/bin/python3
"""Seeds of the fuzz_upload corpus for image and text bundles: tiny ONNX graphs (an
embedding-mean text classifier with an attention mask, a one-layer image classifier)
uploaded as JSON bundles with an inline tokenizer.json and inline background pictures, so
the fuzzer starts inside the graph-model decoding (api/bundle_graph.c).
Run: /usr/bin/python3 tools/make_graph_bundle_seeds.py
"""
import base64
import io
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus", "upload")
rng = np.random.default_rng(3)


def text_graph(vocab):
    emb = numpy_helper.from_array(rng.normal(size=(vocab, 4)).astype(np.float32), "emb")
    w = numpy_helper.from_array(rng.normal(size=(4, 2)).astype(np.float32), "w")
    nodes = [helper.make_node("Gather", ["emb", "input_ids"], ["e"]),
             helper.make_node("Cast", ["attention_mask"], ["mf"], to=TensorProto.FLOAT),
             helper.make_node("Unsqueeze", ["mf", "ax"], ["m3"]),
             helper.make_node("Mul", ["e", "m3"], ["em"]),
             helper.make_node("ReduceSum", ["em", "ax1"], ["s"], keepdims=0),
             helper.make_node("MatMul", ["s", "w"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probs"], axis=-1)]
    inits = [emb, w, numpy_helper.from_array(np.array([2], np.int64), "ax"),
             numpy_helper.from_array(np.array([1], np.int64), "ax1")]
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
                                       helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
                          [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 2])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def image_graph():
    w = numpy_helper.from_array(rng.normal(size=(1 * 4 * 4, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["logits"])]
    g = helper.make_graph(nodes, "i", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def main():
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "good": 4, "bad": 5, "film": 6, "##s": 7}
    tok = {"version": "1.0", "truncation": None, "padding": None,
           "added_tokens": [{"id": i, "content": t, "special": True} for t, i in vocab.items() if t.startswith("[")],
           "normalizer": {"type": "BertNormalizer", "lowercase": True}, "pre_tokenizer": {"type": "BertPreTokenizer"},
           "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
           "decoder": None, "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": vocab}}
    text = {"format": "explaind.model/v1", "task": "classification", "classes": ["neg", "pos"],
            "input": {"kind": "text", "tokenizer": tok, "max_length": 8}, "output": "probabilities",
            "background": {"texts": ["good films", "bad"]},
            "onnx": {"base64": base64.b64encode(text_graph(len(vocab))).decode()}}
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(5, 3), dtype=np.uint8), "L").save(buf, format="PNG")
    image = {"format": "explaind.model/v1", "task": "classification", "classes": ["a", "b", "c"],
             "input": {"kind": "image", "channels": 1, "height": 4, "width": 4, "scale": 0.5, "mean": 0.25, "std": [2]},
             "output": "logits", "background": {"images": [{"b64": base64.b64encode(buf.getvalue()).decode()}]},
             "onnx": {"base64": base64.b64encode(image_graph()).decode()}}
    for name, b in (("16_json_graph_text", text), ("17_json_graph_image", image)):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(b" " + json.dumps(b).encode())


if __name__ == "__main__":
    main()
