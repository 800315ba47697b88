"""Synthetic data and tokenizers for the image and text demo models (tools/make_graph_models.py).

Everything here is deterministic given a numpy Generator, and uses numpy and the standard
library only.

- shapes: 32x32 RGB images, each with one object (square, circle or triangle) that decides
  the class, drawn over a noisy background with line and dot distractors elsewhere; the
  object's pixel mask is known, which makes the set a ground truth for image explanations.
- reviews: short English-like texts whose label is the sign of the summed weights of the
  planted sentiment words they contain; the other words carry no signal.
- Two Hugging Face tokenizer.json files written by hand (no `tokenizers` package): a BERT
  WordPiece tokenizer and a WordLevel one, plus a Python implementation of both that gives
  tokens, ids and character offsets as `tokenizers`' Encoding does.
"""
import re
import unicodedata

import numpy as np

# ---- images -------------------------------------------------------------------------------
SHAPES = ["square", "circle", "triangle"]
SIZE = 32


def shape_mask(kind, cy, cx, r):
    """Boolean [SIZE][SIZE] mask of a shape centred at (cy, cx) with half-size r (pixels)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    dy, dx = yy - cy, xx - cx
    if kind == "square":
        return (np.abs(dy) <= r) & (np.abs(dx) <= r)
    if kind == "circle":  # radius chosen so the area is close to the square's
        return dy * dy + dx * dx <= (1.13 * r) ** 2
    # triangle with its apex up: width grows linearly from 0 at the apex to 2.6 r at the base
    t = (dy + 1.3 * r) / (2.6 * r)
    return (t >= 0) & (t <= 1) & (np.abs(dx) <= 1.3 * r * t)


def _contrasting_color(rng, bg):
    while True:
        c = rng.integers(0, 256, size=3)
        if np.abs(c - bg).sum() >= 200:
            return c


def make_image(rng, label):
    """One image [3][SIZE][SIZE] uint8 with an object of class `label`, and the object's mask."""
    bg = rng.integers(0, 256, size=3)
    img = bg[:, None, None] + rng.normal(0, 12, size=(3, SIZE, SIZE))
    r = rng.uniform(4.0, 7.0)
    cy, cx = rng.uniform(r + 2, SIZE - r - 2, size=2)
    mask = shape_mask(SHAPES[label], cy, cx, r)
    # keep distractors two pixels away from the object, so the mask is its only evidence
    ys, xs = np.nonzero(mask)
    keep_out = np.zeros_like(mask)
    keep_out[max(ys.min() - 2, 0):ys.max() + 3, max(xs.min() - 2, 0):xs.max() + 3] = True
    for _ in range(rng.integers(2, 5)):
        color = _contrasting_color(rng, bg)
        d = np.zeros_like(mask)
        if rng.random() < 0.6:  # a line: horizontal, vertical or diagonal, 1 px wide
            length = rng.integers(5, 13)
            y0, x0 = rng.integers(0, SIZE, size=2)
            sy, sx = [(0, 1), (1, 0), (1, 1), (1, -1)][rng.integers(0, 4)]
            for k in range(length):
                y, x = y0 + k * sy, x0 + k * sx
                if 0 <= y < SIZE and 0 <= x < SIZE:
                    d[y, x] = True
        else:  # a 2x2 dot
            y0, x0 = rng.integers(0, SIZE - 1, size=2)
            d[y0:y0 + 2, x0:x0 + 2] = True
        d &= ~keep_out
        img[:, d] = color[:, None]
    color = _contrasting_color(rng, bg)
    img[:, mask] = color[:, None] + rng.normal(0, 6, size=(3, int(mask.sum())))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), mask


def make_images(rng, n):
    labels = rng.integers(0, len(SHAPES), size=n)
    pairs = [make_image(rng, int(k)) for k in labels]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), labels


# ---- texts --------------------------------------------------------------------------------
# The planted words and their weights decide the label; nothing else does. Three of them are
# left out of the WordPiece vocabulary as whole words, so BERT sees them as ## pieces.
PLANTED = {
    "great": 2.0, "excellent": 2.0, "wonderful": 1.5, "enjoyed": 1.5, "brilliant": 2.0,
    "superb": 1.5, "charming": 1.0, "masterpiece": 2.5,
    "boring": -2.0, "awful": -2.0, "terrible": -2.0, "dull": -1.5, "waste": -1.5,
    "mediocre": -1.0, "disappointing": -1.5, "unwatchable": -2.5,
}
WORDPIECE_SPLIT = {"masterpiece": ["master", "##piece"], "unwatchable": ["un", "##watch", "##able"],
                   "disappointing": ["disappoint", "##ing"]}
FILLER = """the a this that movie film story plot actors acting cast director scenes music script
ending it was is were felt seemed and but so with of in on to for very quite rather really somewhat
i we they my friends watched saw thought found at home last night weekend cinema about two hours
long character characters dialogue camera work overall café naïve sequel screen popcorn""".split()
LABELS = ["negative", "positive"]


def make_text(rng, long=False):
    """A text, its label (1 positive) and the planted words it contains (in order)."""
    while True:
        planted = list(rng.choice(sorted(PLANTED), size=rng.integers(1, 4), replace=False))
        score = sum(PLANTED[w] for w in planted)
        if abs(score) >= 0.5:
            break
    n = rng.integers(40, 75) if long else rng.integers(3, 26)
    words = list(rng.choice(FILLER, size=n))
    for w in planted:
        words.insert(int(rng.integers(0, len(words) + 1)), w)
    words[0] = words[0].capitalize()
    for i in range(1, len(words) - 1):
        if rng.random() < 0.06:
            words[i] += ","
    text = " ".join(words) + str(rng.choice([".", "!", "..."]))
    order = [w for w in re.findall(r"\w+", text.lower()) if w in PLANTED]
    return text, int(score > 0), order


def make_texts(rng, n, long_fraction=0.03):
    out = [make_text(rng, long=rng.random() < long_fraction) for _ in range(n)]
    return [o[0] for o in out], np.array([o[1] for o in out]), [o[2] for o in out]


# ---- tokenizers (Hugging Face tokenizer.json, and the same algorithms in Python) ----------
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _is_bert_whitespace(c):
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def _is_bert_control(c):
    return c not in "\t\n\r" and unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn")


def _is_bert_punct(c):
    o = ord(c)
    return 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126 or \
        unicodedata.category(c).startswith("P")


def _is_cjk(o):
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x2A6DF or
            0x2A700 <= o <= 0x2B73F or 0x2B740 <= o <= 0x2B81F or 0x2B820 <= o <= 0x2CEAF or
            0xF900 <= o <= 0xFAFF or 0x2F800 <= o <= 0x2FA1F)


def bert_normalize(text):
    """BertNormalizer(clean_text, handle_chinese_chars, strip_accents=None -> lowercase, lowercase).

    Returns the normalized string and, per normalized character, the index of the original
    character it came from (the alignment `tokenizers` keeps for offsets)."""
    chars = []  # (char, original index)
    for i, c in enumerate(text):
        if c == "\0" or c == "\ufffd" or _is_bert_control(c):
            continue
        if _is_bert_whitespace(c):
            chars.append((" ", i))
        elif _is_cjk(ord(c)):
            chars += [(" ", i), (c, i), (" ", i)]
        else:
            chars.append((c, i))
    out = []
    for c, i in chars:  # strip accents: NFD, drop nonspacing marks; then lowercase
        for d in unicodedata.normalize("NFD", c):
            if unicodedata.category(d) != "Mn":
                out += [(x, i) for x in d.lower()]
    return "".join(c for c, _ in out), [i for _, i in out]


def lowercase_normalize(text):
    out = [(x, i) for i, c in enumerate(text) for x in c.lower()]
    return "".join(c for c, _ in out), [i for _, i in out]


def bert_pretokenize(s):
    """BertPreTokenizer: split on whitespace, each punctuation character its own word. (start, end)."""
    words, start = [], None
    for i, c in enumerate(s):
        if c.isspace() or _is_bert_punct(c):
            if start is not None:
                words.append((start, i))
                start = None
            if not c.isspace():
                words.append((i, i + 1))
        elif start is None:
            start = i
    if start is not None:
        words.append((start, len(s)))
    return words


def whitespace_pretokenize(s):
    """Whitespace pre-tokenizer: the regex \\w+|[^\\w\\s]+."""
    return [m.span() for m in re.finditer(r"\w+|[^\w\s]+", s)]


def wordpiece(word, vocab, max_chars=100):
    """Greedy longest-match-first; a word with an unmatched part is one [UNK]. [(piece, start, end)]."""
    if len(word) > max_chars:
        return [("[UNK]", 0, len(word))]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            sub = word[start:end] if start == 0 else "##" + word[start:end]
            if sub in vocab:
                break
            end -= 1
        if end == start:
            return [("[UNK]", 0, len(word))]
        pieces.append((sub, start, end))
        start = end
    return pieces


def encode(text, tok, max_length):
    """tokens, ids, offsets (None for special tokens), truncated? — as tokenizers' Encoding."""
    model = tok["model"]
    vocab = model["vocab"]
    if model["type"] == "WordPiece":
        norm, align = bert_normalize(text)
        spans = bert_pretokenize(norm)
    else:
        norm, align = lowercase_normalize(text)
        spans = whitespace_pretokenize(norm)
    toks = []
    for s, e in spans:
        word = norm[s:e]
        if model["type"] == "WordPiece":
            parts = [(p, s + a, s + b) for p, a, b in wordpiece(word, vocab)]
        else:
            parts = [(word if word in vocab else model["unk_token"], s, e)]
        toks += [(p, (align[a], align[b - 1] + 1)) for p, a, b in parts]
    special = tok["post_processor"] is not None
    room = max_length - 2 if special else max_length
    truncated = len(toks) > room
    toks = toks[:room]
    if special:
        toks = [("[CLS]", None)] + toks + [("[SEP]", None)]
    return [t for t, _ in toks], [vocab[t] for t, _ in toks], [o and list(o) for _, o in toks], truncated


def _added(i, content):
    return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def wordpiece_tokenizer(train_texts):
    """A BERT-style tokenizer.json: vocabulary = specials, characters and ## characters, the
    training corpus' words by frequency (minus the words meant to split), and a few pieces."""
    counts = {}
    for t in train_texts:
        norm, _ = bert_normalize(t)
        for s, e in bert_pretokenize(norm):
            counts[norm[s:e]] = counts.get(norm[s:e], 0) + 1
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789") + list(".,!?'\";:-()")
    pieces = sorted({p for ps in WORDPIECE_SPLIT.values() for p in ps}) + ["##s", "##ed", "##ly", "##er"]
    words = sorted((w for w in counts if w not in WORDPIECE_SPLIT), key=lambda w: (-counts[w], w))
    vocab = {}
    for t in SPECIAL + chars + ["##" + c for c in chars[:36]] + words + pieces:
        vocab.setdefault(t, len(vocab))
    cls_, sep = vocab["[CLS]"], vocab["[SEP]"]
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [_added(vocab[t], t) for t in SPECIAL],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [cls_], "tokens": ["[CLS]"]},
                               "[SEP]": {"id": "[SEP]", "ids": [sep], "tokens": ["[SEP]"]}}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    }


def wordlevel_tokenizer(train_texts):
    """A WordLevel tokenizer.json (Lowercase normalizer, Whitespace pre-tokenizer, no post-processor)."""
    counts = {}
    for t in train_texts:
        norm, _ = lowercase_normalize(t)
        for s, e in whitespace_pretokenize(norm):
            counts[norm[s:e]] = counts.get(norm[s:e], 0) + 1
    vocab = {"[PAD]": 0, "[UNK]": 1}
    for w in sorted(counts, key=lambda w: (-counts[w], w)):
        vocab[w] = len(vocab)
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [_added(0, "[PAD]"), _added(1, "[UNK]")],
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": None, "decoder": None,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"},
    }
