"""The prompt's text classifier: ``alt-profanity-check``, a linear model over word n-grams whose fitted model ships
inside its wheel (scikit-learn, nothing downloaded), beside the admins' list of blocked words.

It is on for a person when their groups turn it on, else when the site's ``PROMPT_CLASSIFIER`` is on; a person in
several groups gets it off when any of them turns it off (groups are generous). Loading scikit-learn and the model
takes a few seconds, so it happens on the first prompt checked in a process, never at start; a check then takes
a few milliseconds. A classifier that cannot load lets prompts through (the word list and the picture check still
run) and says so in the log.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app

log = logging.getLogger(__name__)

_predict: Callable | None = None
_lock = threading.Lock()


@dataclass(frozen=True)
class ClassifierChoice:
    """Whether prompts are classified for a person, and the group that decided (None: the site's setting)."""

    on: bool
    group: str | None = None


def _predict_prob() -> Callable:
    global _predict
    with _lock:
        if _predict is None:
            from profanity_check import predict_prob  # scikit-learn: loaded on the first prompt checked

            _predict = predict_prob
        return _predict


def offensive_score(text: str) -> float:
    """The classifier's probability (0 to 1) that ``text`` is offensive."""
    return float(_predict_prob()([text])[0])


def site_choice() -> ClassifierChoice:
    """The site's ``PROMPT_CLASSIFIER``, for people whose groups say nothing."""
    return ClassifierChoice(bool(current_app.config.get("PROMPT_CLASSIFIER", False)))


def classifier_refusal(prompt: str, choice: ClassifierChoice) -> str | None:
    """The message refusing ``prompt`` when the classifier is on for the person (``choice``: their groups' setting,
    else ``site_choice()``) and scores it at or above ``PROMPT_CLASSIFIER_THRESHOLD``; None lets it through."""
    if not choice.on or not prompt.strip():
        return None
    try:
        score = offensive_score(prompt)
    except Exception:
        log.exception("the prompt classifier could not run; the prompt goes on with the word list checked only")
        return None
    if score < current_app.config.get("PROMPT_CLASSIFIER_THRESHOLD", 0.9):
        return None
    who = f"Your group {choice.group} checks prompts" if choice.group else "This site checks prompts"
    return f"{who}, and this one reads as offensive (score {score:.2f}). Please rephrase it."
