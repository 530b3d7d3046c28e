"""What the chosen model can draw (models/vocabulary.py): a one-line hint on a result whose prompt asks for more
than the model knows, and the styles that change something on that model (a style's words it never saw do not)."""
from __future__ import annotations

from models.catalog import ModelEntry
from models.vocabulary import vocabulary_of

from .styles import STYLES

WORDS_NAMED = 3  # the hint names at most this many of the words the model cannot draw


def drawing_hint(entry: ModelEntry | None, prompt: str) -> str | None:
    """One line when ``prompt`` uses words the model cannot draw, with an example it can; else None."""
    vocabulary = vocabulary_of(entry.path) if entry is not None else None
    if vocabulary is None:
        return None
    unknown = vocabulary.unknown_words(prompt)
    if not unknown:
        return None
    named = ", ".join(f"“{word}”" for word in unknown[:WORDS_NAMED]) + (" and more" if len(unknown) > WORDS_NAMED else "")
    return (f"{entry.label} knows only {vocabulary.knows}, so it cannot draw {named}. "
            f"Try: “{vocabulary.example}”.")


def offered_styles(entry: ModelEntry) -> list[str]:
    """The styles worth offering for the model: all, unless it knows few words (then those that change something)."""
    vocabulary = vocabulary_of(entry.path)
    if vocabulary is None:
        return list(STYLES)
    return [style.name for style in STYLES.values() if style.pixelate or vocabulary.knows_all(style.modifiers)]
