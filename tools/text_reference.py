#!/usr/bin/python3
"""Float64 references for the text explanations of the demo text models
(docs/text_explanations.md), computed with PyTorch and numpy/scikit-learn alone:

- layer integrated gradients at the token-embedding output (Captum's
  LayerIntegratedGradients definition: e(a) = e_b + a (e_x - e_b), Gauss-Legendre nodes
  and weights as Captum's "gausslegendre", pad baseline with the special tokens kept,
  attention mask of ones), summed per token, and the convergence delta;
- layer input x gradient (LayerGradientXActivation) summed per token;
- occlusion per token (pad, unk, delete);
- LIME for text, lime_text's algorithm written out (IndexedString split by \\W+ keeping the
  separators, bow, randint(1, d+1) words removed, cosine distance x 100, kernel width 25,
  feature selection "auto" = highest_weights for 10 features, weighted Ridge(alpha=1)):
  weights averaged over seeds;
- planted-word recall (the LIME paper's measure, section 5) of IG, occlusion and LIME.

The torch models are rebuilt from the ONNX files' initializers (tools/make_graph_models.py's
classes), in float64. Writes JSON (default tests/golden/text_explain.json).
usage: text_reference.py [--out FILE] [--quick]
"""
import json
import os
import re
import sys
import time

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from sklearn.linear_model import Ridge

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import graph_data as gd  # noqa: E402
import make_graph_models as mgm  # noqa: E402

STEPS = 50
LIME_SAMPLES = 1000
LIME_SEEDS = 4
torch.set_num_threads(1)


def load_model(name):
    path = os.path.join(ROOT, "models", name, "model.onnx")
    g = onnx.load(path).graph
    init = {i.name: torch.tensor(numpy_helper.to_array(i).copy(), dtype=torch.float64) for i in g.initializer}
    tok = json.load(open(os.path.join(ROOT, "models", name, "tokenizer.json"), encoding="utf-8"))
    V = init["word.weight"].shape[0]
    if name == "reviews_bert":
        m = mgm.TinyBert(V, max_len=mgm.MAX_LENGTH[name]).double()
        sd = {k: v for k, v in init.items() if k in m.state_dict()}
        for n in g.node:  # the exported MatMul weights are the transposed Linear weights
            if n.op_type == "MatMul" and n.input[1] in init:
                key = n.name.strip("/").replace("/MatMul", "").replace("/", ".") + ".weight"
                sd[key] = init[n.input[1]].T.contiguous()
        sd["position_ids"] = m.position_ids
        m.load_state_dict(sd)
    else:
        m = mgm.GruClassifier(V).double()
        gru = [n for n in g.node if n.op_type == "GRU"][0]
        W, R, B = (init[gru.input[k]] for k in (1, 2, 3))
        H = W.shape[1] // 3

        def torch_order(t):  # ONNX gates z, r, h -> torch r, z, n
            return torch.cat([t[H:2 * H], t[:H], t[2 * H:]])
        sd = {"word.weight": init["word.weight"], "cls.weight": init["cls.weight"], "cls.bias": init["cls.bias"]}
        for d, suf in ((0, ""), (1, "_reverse")):
            sd["gru.weight_ih_l0" + suf] = torch_order(W[d])
            sd["gru.weight_hh_l0" + suf] = torch_order(R[d])
            sd["gru.bias_ih_l0" + suf] = torch_order(B[d][:3 * H])
            sd["gru.bias_hh_l0" + suf] = torch_order(B[d][3 * H:])
        m.load_state_dict(sd)
    return m.eval(), tok


def logits_of(m, bert, e):
    mask = torch.ones(e.shape[0], e.shape[1], dtype=torch.int64)
    return m.logits_from(e, mask) if bert else m.logits_from(e)


def probs_of_ids(m, bert, rows):
    """Probabilities of token-id rows (any lengths): padded with mask 0 (BERT) or one by one (GRU)."""
    out = []
    with torch.no_grad():
        if bert:
            for s in range(0, len(rows), 256):
                chunk = rows[s:s + 256]
                L = max(len(r) for r in chunk)
                x = torch.zeros(len(chunk), L, dtype=torch.int64)
                mk = torch.zeros_like(x)
                for i, r in enumerate(chunk):
                    x[i, :len(r)] = torch.tensor(r)
                    mk[i, :len(r)] = 1
                out.append(torch.softmax(m.logits_from(m.word(x), mk), -1))
        else:
            by_len = {}
            for i, r in enumerate(rows):
                by_len.setdefault(len(r), []).append(i)
            res = [None] * len(rows)
            for L, idx in by_len.items():
                x = torch.tensor([rows[i] for i in idx], dtype=torch.int64)
                p = torch.softmax(m.logits_from(m.word(x)), -1)
                for k, i in enumerate(idx):
                    res[i] = p[k:k + 1]
            out = res
    return torch.cat(out).numpy()


def layer_ig(m, bert, ids, special, pad_id, target, steps=STEPS):
    x = torch.tensor([ids])
    base_ids = torch.tensor([[t if s else pad_id for t, s in zip(ids, special)]])
    with torch.no_grad():
        ex, eb = m.word(x), m.word(base_ids)
    xs, ws = np.polynomial.legendre.leggauss(steps)
    alphas = torch.tensor(0.5 * (xs + 1))[:, None, None]
    w = torch.tensor(0.5 * ws)
    es = (eb + alphas * (ex - eb)).detach().requires_grad_()
    p = torch.softmax(logits_of(m, bert, es), -1)[:, target]
    p.sum().backward()
    avg = (w[:, None, None] * es.grad).sum(0)
    attr = ((ex - eb)[0] * avg).sum(-1)
    with torch.no_grad():
        fx = torch.softmax(logits_of(m, bert, ex), -1)[0, target]
        fb = torch.softmax(logits_of(m, bert, eb), -1)[0, target]
    return attr.tolist(), float(attr.sum() - (fx - fb))


def input_x_gradient(m, bert, ids, target):
    e = m.word(torch.tensor([ids])).detach().requires_grad_()
    torch.softmax(logits_of(m, bert, e), -1)[0, target].backward()
    return (e * e.grad).sum(-1)[0].tolist()


def occlusion(m, bert, ids, target, how, pad_id, unk_id):
    rows = [ids]
    for i in range(len(ids)):
        if how == "delete":
            rows.append(ids[:i] + ids[i + 1:])
        else:
            rows.append(ids[:i] + [pad_id if how == "pad" else unk_id] + ids[i + 1:])
    p = probs_of_ids(m, bert, rows)[:, target]
    return (p[0] - p[1:]).tolist()


# ---- lime_text, written out -------------------------------------------------------------
def indexed_string(raw, bow=True):
    splitter = re.compile(r"(\W+)|$")
    as_list = [s for s in splitter.split(raw) if s]
    vocab, inverse_vocab, positions = {}, [], []
    non_vocab = set()
    for i, word in enumerate(as_list):
        if word in non_vocab:
            continue
        if splitter.match(word):
            non_vocab.add(word)
            continue
        if bow:
            if word not in vocab:
                vocab[word] = len(vocab)
                inverse_vocab.append(word)
                positions.append([])
            positions[vocab[word]].append(i)
        else:
            inverse_vocab.append(word)
            positions.append([i])
    return as_list, inverse_vocab, positions


def lime_text(classify, raw, label, num_samples, seed, num_features=10, kernel_width=25.0):
    as_list, words, positions = indexed_string(raw)
    d = len(words)
    rs = np.random.RandomState(seed)
    sample = rs.randint(1, d + 1, num_samples - 1)
    data = np.ones((num_samples, d))
    texts = [raw]
    for i, size in enumerate(sample, start=1):
        inactive = rs.choice(range(d), size, replace=False)
        data[i, inactive] = 0
        off = set(p for f in inactive for p in positions[f])
        texts.append("".join(s for k, s in enumerate(as_list) if k not in off))
    labels = classify(texts)
    norms = np.sqrt(data.sum(1))
    dist = (1 - np.where(norms > 0, data.sum(1) / (np.maximum(norms, 1e-300) * np.sqrt(d)), 0)) * 100
    wts = np.sqrt(np.exp(-dist ** 2 / kernel_width ** 2))
    y = labels[:, label]
    if num_features >= d:
        used = list(range(d))
    else:  # highest_weights
        clf = Ridge(alpha=0.01, fit_intercept=True)
        clf.fit(data, y, sample_weight=wts)
        coef = clf.coef_
        used = list(np.argsort(np.abs(coef))[::-1][:num_features])
    reg = Ridge(alpha=1, fit_intercept=True)
    reg.fit(data[:, used], y, sample_weight=wts)
    coef = np.zeros(d)
    coef[used] = reg.coef_
    return words, coef


def planted_recall(text, words_planted, scores_by_word):
    """Share of planted words among the k = len(planted) words of largest |score|."""
    spans = [mt.span() for mt in re.finditer(r"\w+", text)]
    score = np.array([scores_by_word(a, b) for a, b in spans])
    top = np.argsort(-np.abs(score), kind="stable")[:len(words_planted)]
    return sum(text[spans[w][0]:spans[w][1]].lower() in gd.PLANTED for w in top) / len(words_planted)


def token_word_scores(text, offsets, attr):
    def f(a, b):
        return sum(v for o, v in zip(offsets, attr) if o is not None and a <= o[0] < b)
    return f


def main():
    out = os.path.join(ROOT, "tests", "golden", "text_explain.json")
    quick = "--quick" in sys.argv
    if "--out" in sys.argv:
        out = sys.argv[sys.argv.index("--out") + 1]
    planted = json.load(open(os.path.join(ROOT, "tests", "golden", "graph", "planted_words.json"), encoding="utf-8"))
    texts = mgm.GOLDEN_TEXTS + [t["text"] for t in planted["texts"][:24]]
    n_recall = 10 if quick else 40
    res = {"reference": "tools/text_reference.py: torch float64 and numpy/scikit-learn", "steps": STEPS,
           "lime_samples": LIME_SAMPLES, "lime_seeds": LIME_SEEDS, "models": {}}
    for name in ("reviews_bert", "reviews_gru"):
        t0 = time.time()
        m, tok = load_model(name)
        bert = name == "reviews_bert"
        vocab = tok["model"]["vocab"]
        pad_id, unk_id = vocab["[PAD]"], vocab[tok["model"]["unk_token"]]
        L = mgm.MAX_LENGTH[name]
        gold = json.load(open(os.path.join(ROOT, "tests", "golden", "graph", name + ".json"), encoding="utf-8"))
        for g in gold["instances"]:  # the rebuilt model is the exported one
            p = probs_of_ids(m, bert, [g["ids"]])[0]
            assert np.abs(p - np.array(g["probabilities"])).max() < 1e-9, (name, p, g["probabilities"])
        inst = []
        for text in texts:
            tokens, ids, offsets, _ = gd.encode(text, tok, L)
            special = [o is None for o in offsets]
            p = probs_of_ids(m, bert, [ids])[0]
            t = int(p.argmax())
            ig, delta = layer_ig(m, bert, ids, special, pad_id, t)
            inst.append({"text": text, "tokens": tokens, "target": t, "probabilities": p.tolist(),
                         "integrated_gradients": ig, "convergence_delta": delta,
                         "input_x_gradient": input_x_gradient(m, bert, ids, t),
                         "occlusion": {h: occlusion(m, bert, ids, t, h, pad_id, unk_id)
                                       for h in ("pad", "unk", "delete") if h != "delete" or len(ids) > 1}})

        def classify(strs):
            return probs_of_ids(m, bert, [gd.encode(s, tok, L)[1] or [pad_id] for s in strs])
        lime_cases = []
        for text in texts[:3 if quick else 6]:
            t = int(classify([text])[0].argmax())
            ws = None
            for seed in range(LIME_SEEDS):
                words, coef = lime_text(classify, text, t, LIME_SAMPLES, seed)
                ws = coef if ws is None else ws + coef
            lime_cases.append({"text": text, "label": t, "words": words, "weights": (ws / LIME_SEEDS).tolist()})
        recall = {"integrated_gradients": 0.0, "occlusion_pad": 0.0, "lime": 0.0}
        rec_texts = planted["texts"][:n_recall]
        for r in rec_texts:
            text = r["text"]
            tokens, ids, offsets, _ = gd.encode(text, tok, L)
            special = [o is None for o in offsets]
            t = int(probs_of_ids(m, bert, [ids])[0].argmax())
            ig, _ = layer_ig(m, bert, ids, special, pad_id, t)
            occ = occlusion(m, bert, ids, t, "pad", pad_id, unk_id)
            recall["integrated_gradients"] += planted_recall(text, r["planted"], token_word_scores(text, offsets, ig))
            recall["occlusion_pad"] += planted_recall(text, r["planted"], token_word_scores(text, offsets, occ))
            words, coef = lime_text(classify, text, t, LIME_SAMPLES, 0)
            wmap = dict(zip(words, coef))
            recall["lime"] += planted_recall(text, r["planted"],
                                             lambda a, b, text=text, wmap=wmap: wmap.get(text[a:b], 0.0))
        recall = {k: v / len(rec_texts) for k, v in recall.items()}
        res["models"][name] = {"instances": inst, "lime": lime_cases, "planted_recall": recall,
                               "planted_texts": len(rec_texts), "seconds": round(time.time() - t0, 1)}
        print(f"{name}: {len(inst)} texts, recall {recall} ({time.time() - t0:.0f} s)", file=sys.stderr)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(res, f, ensure_ascii=False, indent=None)
        f.write("\n")


if __name__ == "__main__":
    main()
