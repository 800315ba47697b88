#!/usr/bin/python3
"""Tokenizer fixtures for tests/test_tokenizer.c and the fuzz_tokenizer seed corpus.

Writes small tokenizer.json files (written out by hand here: Python's tokenizers is
not packaged by Debian) covering every supported model, normalizer, pre-tokenizer and
post-processor, a list of texts (accents, punctuation, CJK, unknown and long words,
control characters, combining marks, added tokens), and freezes what Hugging Face's
tokenizers library makes of each text — through its Node bindings, tests/tokref
(`make tokref-deps` installs them) — in tests/golden/tokenizer/expected.json.
Run: /usr/bin/python3 tools/make_tokenizer_fixtures.py
"""
import json
import os
import subprocess

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "golden", "tokenizer")
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus", "tokenizer")

WORDS = """the a an and or but is was be to of in on at for with it this that i you he she we they
movie film great good bad terrible awful boring brilliant acting actors plot story cafe naive resume
hello world wait what don t e mail number one two three life berlin istanbul strasse cine ma
un able watch ing ed ly s re pre 12 345 67 0 1 2 3 4 5 6 7 8 9 day ok yes no very so""".split()
PIECES = ["##" + p for p in "s ing ed ly able er est ness a b c d e f g h i j k l m n o p q r s t u v w x y z".split()]
CJK = list("我爱北京天安门中文字")
PUNCT = list(".,!?;:'\"()[]{}-_/@#$%&*+=<>~`^|\\…¡¿«»—")
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def vocab(extra=()):
    v = {}
    for t in SPECIAL + WORDS + PIECES + CJK + PUNCT + list(extra):
        if t not in v:
            v[t] = len(v)
    return v


def added(v):
    return [{"id": v[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True} for t in SPECIAL]


def template(v):
    return {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [v["[CLS]"]], "tokens": ["[CLS]"]},
                               "[SEP]": {"id": "[SEP]", "ids": [v["[SEP]"]], "tokens": ["[SEP]"]}}}


def wordpiece(v, **kw):
    m = {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
         "max_input_chars_per_word": 100, "vocab": v}
    m.update(kw)
    return m


def doc(model, normalizer, pre, post, v, padding=None):
    return {"version": "1.0", "truncation": None, "padding": padding, "added_tokens": added(v),
            "normalizer": normalizer, "pre_tokenizer": pre, "post_processor": post,
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True}, "model": model}


def tokenizers():
    v = vocab()
    vc = vocab(["Hello", "World", "Café", "Naïve", "HELLO", "The", "İstanbul", "Straße"])
    vw = vocab(["café", "naïve", "ß", "straße", "ﬁ"])
    bert = {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None,
            "lowercase": True}
    return {
        "bert_uncased": doc(wordpiece(v), bert, {"type": "BertPreTokenizer"}, template(v), v),
        "bert_cased": doc(wordpiece(vc, max_input_chars_per_word=12),
                          dict(bert, lowercase=False, handle_chinese_chars=False), {"type": "BertPreTokenizer"},
                          {"type": "BertProcessing", "sep": ["[SEP]", vc["[SEP]"]], "cls": ["[CLS]", vc["[CLS]"]]},
                          vc),
        "bert_strip": doc(wordpiece(v), dict(bert, lowercase=False, strip_accents=True, clean_text=False),
                          {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"},
                                                                 {"type": "BertPreTokenizer"}]}, template(v), v),
        "wordlevel": doc({"type": "WordLevel", "unk_token": "[UNK]", "vocab": vw},
                         {"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "Lowercase"},
                                                              {"type": "StripAccents"}]},
                         {"type": "Whitespace"}, None, vw),
        "wordlevel_plain": doc({"type": "WordLevel", "unk_token": "[UNK]", "vocab": vw}, {"type": "Lowercase"},
                               {"type": "WhitespaceSplit"}, None, vw,
                               padding={"strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": None,
                                        "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"}),
    }


TEXTS = [
    "", "   ", "hello world", "Hello World!", "HELLO, World... wait?!",
    "Café naïve résumé", "cafe\u0301 nai\u0308ve", "a\u0315\u0300\u05ae\u0300b c\u0300\u0315", "\u0344x",
    "我爱北京天安门 ok", "中文字abc中", "한국어 텍스트", "İstanbul straße ﬁ Straße",
    "ΣΊΣΥΦΟΣ σίσυφος", "zzyzx qwrtp", "unwatchable rewatching", "the " + "a" * 120, "aaaaaaaaaaaaa bbbb",
    "don't e-mail me @home #1 (ok) [yes] {no}", "12,345.67 + 3 = 4", "tab\there\nnewline\r\nend",
    "nul\u0000ctrl\u0007zero\u200bwidth\ufffdrepl", "\u00a0nbsp\u3000ideo\u2028sep", "emoji 😀 🥰 ok",
    "[MASK] is [CLS] and [SEP]", "x[UNK]y[PAD]", "[MASK][MASK]", "¡¿«quoted»?! — dash … ellipsis",
    "नमस्ते दुनिया", "مرحبا بالعالم", "Ünïcödé ÀÉÎÕÜ ñ ç ø å", "ﬁnal ﬂow", "the movie was great " * 30,
    "UPPER lower MiXeD", "re-watch pre-order un-able", "  leading and trailing  ", "a_b c__d e\u203fb",
    "x\u200dy z\u200cw", "Ⓐⓑ ⅰⅱ ½", "e\u0301\u0301\u0301", "\u0301start",
]
MAX_LENGTH = 16


def run_reference(path, texts, max_length):
    req = json.dumps({"tokenizer": path, "max_length": max_length, "texts": texts})
    r = subprocess.run(["node", os.path.join(ROOT, "tests", "tokref", "encode.mjs")], input=req.encode(),
                       capture_output=True, check=True)
    return json.loads(r.stdout)


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(CORPUS, exist_ok=True)
    expected = {"texts": TEXTS, "max_length": MAX_LENGTH, "tokenizers": {}}
    for name, d in tokenizers().items():
        path = os.path.join(OUT, name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(d, f, ensure_ascii=False, indent=1)
            f.write("\n")
        expected["tokenizers"][name] = {"full": run_reference(path, TEXTS, 0),
                                        "truncated": run_reference(path, TEXTS, MAX_LENGTH)}
        # fuzz seeds: the tokenizer, a NUL, then a text (the fuzz target's input format)
        with open(os.path.join(CORPUS, name), "wb") as f:
            f.write(json.dumps(d, ensure_ascii=False).encode() + b"\0" + "Café 我爱 don't [MASK] zzyzx".encode())
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
