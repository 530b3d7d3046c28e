"""A CLIP tokenizer whose vocabulary and merges are learned (byte-pair encoding) from the caption corpus."""

from __future__ import annotations

import json
import re
from collections import Counter
from itertools import pairwise
from pathlib import Path

from transformers import CLIPTokenizer

from models.training.data import caption_corpus

MAX_LENGTH = 32
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
_WORD = re.compile(r"[a-z]+|[0-9]|[^\sa-z0-9]+")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def learn_merges(texts: list[str]) -> list[tuple[str, str]]:
    """Learn BPE merges (most frequent adjacent pair first) until every corpus word is one symbol."""
    byte_map = bytes_to_unicode()
    words: Counter[tuple[str, ...]] = Counter()
    for text in texts:
        for w in _WORD.findall(text.lower()):
            chars = [byte_map[b] for b in w.encode("utf-8")]
            chars[-1] += "</w>"
            words[tuple(chars)] += 1
    merges: list[tuple[str, str]] = []
    while True:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, freq in words.items():
            for a, b in pairwise(word):
                pairs[(a, b)] += freq
        if not pairs:
            return merges
        # Ties broken by the pair itself so the result never depends on dict order.
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        merged: Counter[tuple[str, ...]] = Counter()
        for word, freq in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += freq
        words = merged


def build_tokenizer(texts: list[str] | None = None) -> CLIPTokenizer:
    """A CLIPTokenizer with a vocabulary learned from the captions (all 256 bytes stay encodable)."""
    merges = learn_merges(texts if texts is not None else caption_corpus())
    base = list(bytes_to_unicode().values())
    tokens = base + [c + "</w>" for c in base] + ["".join(m) for m in merges] + [BOS, EOS]
    vocab: dict[str, int] = {}
    for tok in tokens:
        vocab.setdefault(tok, len(vocab))
    return CLIPTokenizer(
        vocab=vocab, merges=merges, model_max_length=MAX_LENGTH,
        unk_token=EOS, bos_token=BOS, eos_token=EOS, pad_token=EOS,
    )


def save_tokenizer(tokenizer: CLIPTokenizer, folder: Path) -> None:
    """Save the tokenizer: tokenizer.json plus the classic vocab.json/merges.txt pair older readers use."""
    tokenizer.save_pretrained(str(folder))
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    (folder / "vocab.json").write_text(json.dumps(model["vocab"], ensure_ascii=False) + "\n", encoding="utf-8")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
