#!/usr/bin/python3
"""text_torch.py — the reference side of the text-explanation benchmark (bench/run.sh):
layer integrated gradients (50 Gauss-Legendre steps, one batch as Captum's default) and
lime_text's algorithm (5,000 samples, one classifier call over all perturbed texts, tokenized
in Python, evaluated in padded batches of 256 (BERT) or equal-length groups (GRU)) with the
demo text models rebuilt in PyTorch (tools/text_reference.py), on one text of about 20 words.

    /usr/bin/python3 bench/text_torch.py [REPEATS]

Prints one JSON line per case: {"kind":"text_ref","id":"ig_reviews_bert",...,"median_ms":...}.
float32 as users run these models, one torch thread (text_reference.py pins it; on this
shared 2-core machine two threads measured slower, not faster).
"""
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import graph_data as gd  # noqa: E402
import make_graph_models as mgm  # noqa: E402
import text_reference as tr  # noqa: E402

TEXT = "The acting was superb, but the ending felt rather dull and the script was a waste of two hours tonight."


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    for name in ("reviews_bert", "reviews_gru"):
        m, tok = tr.load_model(name)
        m = m.float()
        bert = name == "reviews_bert"
        L = mgm.MAX_LENGTH[name]
        pad = tok["model"]["vocab"]["[PAD]"]
        _, ids, offsets, _ = gd.encode(TEXT, tok, L)
        special = [o is None for o in offsets]

        def ig():
            x = torch.tensor([ids])
            base = torch.tensor([[t if s else pad for t, s in zip(ids, special)]])
            ex, eb = m.word(x).detach(), m.word(base).detach()
            xs, ws = np.polynomial.legendre.leggauss(50)
            a = torch.tensor(0.5 * (xs + 1), dtype=torch.float32)[:, None, None]
            es = (eb + a * (ex - eb)).requires_grad_()
            p = torch.softmax(tr.logits_of(m, bert, es), -1)[:, 1]
            p.sum().backward()
            return ((ex - eb)[0] * (torch.tensor(0.5 * ws, dtype=torch.float32)[:, None, None] * es.grad).sum(0)).sum(-1)

        def classify(strs):
            return tr.probs_of_ids(m, bert, [gd.encode(s, tok, L)[1] or [pad] for s in strs])

        def lime():
            return tr.lime_text(classify, TEXT, 1, 5000, 0)
        for case, fn, r in (("ig", ig, reps), ("lime", lime, max(1, reps // 2))):
            fn()
            ts = []
            for _ in range(r):
                t0 = time.perf_counter()
                fn()
                ts.append((time.perf_counter() - t0) * 1000)
            print(json.dumps({"kind": "text_ref", "id": f"{case}_{name}", "model": name, "tokens": len(ids),
                              "words": len(TEXT.split()), "median_ms": round(float(np.median(ts)), 2),
                              "threads": torch.get_num_threads(), "repeats": r}))


if __name__ == "__main__":
    main()
