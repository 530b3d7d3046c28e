"""What a model can draw, for models that know only a few words (the bundled easel-tiny).

A model folder may hold ``vocabulary.json``: ``knows`` (what it draws, in a few words), ``words`` (every word
its training captions use) and ``example`` (a prompt it draws well). A prompt's other words reach the model as
pieces it never saw, and change nothing. Models without the file know any words (None here).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

FILE_NAME = "vocabulary.json"
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")  # letters (any script), with an inner apostrophe


@dataclass(frozen=True)
class Vocabulary:
    """The words a model was trained on, what they are about, and an example prompt."""

    knows: str
    words: frozenset[str]
    example: str

    def unknown_words(self, prompt: str) -> list[str]:
        """The prompt's words this model never saw, once each, in the order written."""
        seen: list[str] = []
        for word in WORD.findall(prompt.lower()):
            if word not in self.words and word not in seen:
                seen.append(word)
        return seen

    def knows_all(self, text: str) -> bool:
        """Whether every word of ``text`` is one the model was trained on."""
        return not self.unknown_words(text)


@lru_cache(maxsize=32)
def _read(path: Path, modified: float) -> Vocabulary | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Vocabulary(knows=str(raw["knows"]), words=frozenset(str(w).lower() for w in raw["words"]),
                          example=str(raw["example"]))
    except (OSError, ValueError, KeyError, TypeError):  # a broken file: the model is treated as knowing any words
        return None


def vocabulary_of(folder: Path | None) -> Vocabulary | None:
    """The model folder's vocabulary, or None (no file, not a folder, or unreadable)."""
    if folder is None:
        return None
    path = Path(folder) / FILE_NAME
    try:
        modified = path.stat().st_mtime
    except OSError:
        return None
    return _read(path, modified)
