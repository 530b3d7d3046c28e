"""AUTOMATIC1111's extra-network tags: ``<lora:NAME>`` or ``<lora:NAME:SCALE>`` in a prompt pick a LoRA.

A1111 takes every ``<kind:args>`` tag out of the prompt before the model reads it (its
``modules/extra_networks.py`` matches ``<(\\w+):([^>]+)>`` and splits the arguments on ``:``); ``lyco``
is its LoRA extension's other name for ``lora``. Easel applies one scale per LoRA, to the whole adapter,
and a LoRA named without a scale gets its catalog default (A1111 would use 1).
"""
from __future__ import annotations

import re

from ..inputs import ascii_float
from .problems import ApiError

TAG = re.compile(r"<(\w+):([^>]+)>")
LORA_KINDS = {"lora", "lyco"}
# what is left around a removed tag: runs of blanks, and commas that now separate nothing
_BLANKS = re.compile(r"[ \t]{2,}")
_EMPTY_ITEMS = re.compile(r"[ \t]*,(?:[ \t]*,)+")


def _refuse(message: str, field: str = "prompt") -> ApiError:
    return ApiError(422, message, errors={field: message})


def _scale(tag: str, raw: str) -> float | None:
    """A tag's scale: None when left blank, else the number (its range is the shared rules' to check)."""
    if not raw.strip():
        return None
    try:
        return ascii_float(raw)
    except ValueError:
        raise _refuse(f"{tag}: the scale must be a number, as in <lora:NAME:0.8>.") from None


def lora_tags(prompt: str) -> tuple[str, list[tuple[str, float | None]]]:
    """The prompt without its tags, and the LoRAs they name as ``(name, scale)`` (scale None: the default).

    Whether each name is a LoRA this site offers, fitting the model, is ``generation_rules``' to say.

    Raises:
        ApiError: 422 for a tag of another kind (hypernetworks are not offered) or a malformed one.
    """
    picks: list[tuple[str, float | None]] = []

    def take(match: re.Match) -> str:
        tag, kind, args = match.group(0), match.group(1), match.group(2).split(":")
        if kind.lower() not in LORA_KINDS:
            raise _refuse(f"{tag}: only LoRAs are offered on this site, as <lora:NAME:SCALE>; "
                          f"GET /sdapi/v1/loras lists them.")
        if len(args) > 2 or "=" in match.group(2):
            raise _refuse(f"{tag}: Easel applies one scale per LoRA; write <lora:NAME:SCALE>.")
        picks.append((args[0].strip(), _scale(tag, args[1]) if len(args) == 2 else None))
        return " "

    text = TAG.sub(take, prompt)
    if not picks:
        return prompt, picks
    text = _BLANKS.sub(" ", _EMPTY_ITEMS.sub(",", text))
    return text.strip().strip(",").strip(), picks


def refuse_tags_in_negative_prompt(negative_prompt: str) -> None:
    """A1111 reads tags from the prompt only; one in the negative prompt would be taken as words, so say so."""
    if match := TAG.search(negative_prompt):
        raise _refuse(f"{match.group(0)}: extra-network tags belong in the prompt, not the negative prompt.",
                      "negative_prompt")
