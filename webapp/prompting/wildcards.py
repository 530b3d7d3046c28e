"""Wildcards and variants, with dynamicprompts: ``{a|b|c}`` picks one, ``{2$$a|b|c}`` picks two, ``__name__``
picks from a list (the site's, or the person's own of the same name, which wins for them).

Picks are made when the generation is submitted, image by image from that image's seed (``seed + index``),
so the same seed picks the same words again; ``variants="all"`` makes every combination once instead. The
prompts picked are kept with the generation (``GenerationPrompts``): each image keeps the prompt it was made
from, whatever happens to the lists later.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

VARIANTS = ("random", "all")
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # a list's name, as __name__ writes it
_WILDCARD = re.compile(r"__([^\s_](?:[^\s]*?[^\s_])?)__")
MAX_VALUES = 500  # entries in one list
MAX_VALUE_LENGTH = 200
NAME_RULE = "Use 1 to 64 lower-case letters, digits, “-” or “_”, starting with a letter or digit."


class PromptProblem(ValueError):
    """A prompt whose wildcards cannot be expanded (or a list that cannot be saved), with a message for the
    person; ``field`` names the form field it is about."""

    def __init__(self, message: str, field: str = "values"):
        super().__init__(message)
        self.field = field


def is_dynamic(prompt: str) -> bool:
    """Whether the prompt has anything for dynamicprompts (``{…}`` or ``__name__``): else it is left alone."""
    return "{" in prompt or "}" in prompt or bool(_WILDCARD.search(prompt))


def wildcard_names(prompt: str) -> list[str]:
    """The ``__name__`` lists the prompt reads, in order."""
    return [match.group(1) for match in _WILDCARD.finditer(prompt)]


@contextmanager
def _quiet_parser() -> Iterator[None]:
    """dynamicprompts 0.31 builds its grammar with pyparsing names that pyparsing 3.3 calls deprecated (once, when
    the grammar is first made and cached): not our warning to show on every request."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="dynamicprompts")
        warnings.filterwarnings("ignore", message=".*deprecated - use", category=DeprecationWarning)
        yield


def _manager(lists: Mapping[str, list[str]]):
    from dynamicprompts.wildcards import WildcardManager

    return WildcardManager(root_map={"": [{name: list(values) for name, values in lists.items()}]})


def _check(prompt: str, lists: Mapping[str, list[str]]) -> None:
    depth = 0
    for at, character in enumerate(prompt):
        depth += {"{": 1, "}": -1}.get(character, 0)
        if depth < 0:
            raise PromptProblem(f"The “}}” at character {at + 1} has no “{{” before it: choices are written "
                                f"{{red|blue}}.")
    if depth:
        raise PromptProblem("A “{” is never closed: choices are written {red|blue}, each “{” with its “}”.")
    missing = [name for name in wildcard_names(prompt) if name not in lists]
    if missing:
        known = ", ".join(f"__{name}__" for name in sorted(lists)) or "none yet"
        raise PromptProblem(f"There is no wildcard list “{missing[0]}” (__{missing[0]}__). Lists you can use: {known}. "
                            f"Add your own on your account page.")


def _parse_error(exc: Exception) -> PromptProblem:
    column = getattr(exc, "col", None)
    where = f" near character {column}" if column else ""
    return PromptProblem(f"The prompt's {{…|…}} choices cannot be read{where}: every “{{” needs a “}}”, with the "
                         f"choices between them separated by “|”.")


def pick(prompt: str, seeds: list[int], lists: Mapping[str, list[str]]) -> list[str]:
    """One prompt per seed, its choices picked from that seed (the same seed picks the same words).

    Raises:
        PromptProblem: an unknown list, or braces that do not pair up.
    """
    from dynamicprompts.generators import RandomPromptGenerator
    from pyparsing import ParseBaseException

    _check(prompt, lists)
    try:
        with _quiet_parser():
            return RandomPromptGenerator(_manager(lists)).generate(prompt, len(seeds), seeds=list(seeds))
    except ParseBaseException as exc:
        raise _parse_error(exc) from None


def every_combination(prompt: str, lists: Mapping[str, list[str]], limit: int) -> list[str]:
    """Every combination of the prompt's choices, once each, in order.

    Raises:
        PromptProblem: an unknown list, braces that do not pair up, or more than ``limit`` combinations.
    """
    from dynamicprompts.generators import CombinatorialPromptGenerator
    from pyparsing import ParseBaseException

    _check(prompt, lists)
    try:
        with _quiet_parser():
            found = CombinatorialPromptGenerator(_manager(lists)).generate(prompt, max_prompts=limit + 1)
    except ParseBaseException as exc:
        raise _parse_error(exc) from None
    if len(found) > limit:
        raise PromptProblem(f"The prompt's choices make more than {limit} combinations, and one request makes at most "
                            f"{limit} images here: use fewer choices, or random picks.")
    return found


def parse_values(text: str) -> list[str]:
    """A list's entries from text, one a line (blank lines dropped).

    Raises:
        PromptProblem: no entry, too many, or one too long.
    """
    values = [line.strip() for line in text.splitlines() if line.strip()]
    if not values:
        raise PromptProblem("Write at least one entry, one a line.")
    if len(values) > MAX_VALUES:
        raise PromptProblem(f"A list holds at most {MAX_VALUES} entries.")
    if any(len(value) > MAX_VALUE_LENGTH for value in values):
        raise PromptProblem(f"Keep each entry under {MAX_VALUE_LENGTH} characters.")
    return values
