"""Prompt weights: AUTOMATIC1111's syntax (and compel's) parsed into weighted fragments.

A1111's rules (``modules/prompt_parser.py``, ``parse_prompt_attention``): ``(text)`` multiplies the weight of
what it holds by 1.1, ``[text]`` divides it by 1.1, ``(text:1.3)`` multiplies it by 1.3; brackets nest and
multiply; ``\\(``, ``\\)``, ``\\[``, ``\\]`` and ``\\\\`` are the characters themselves; ``BREAK`` ends the
current chunk of 75 tokens (the rest starts a new one). compel's own syntax is read too: ``(text)1.3``,
``word+``/``word++``/``word-`` and ``(text)+`` (each ``+`` multiplies by 1.1, each ``-`` by 0.9).

Unlike A1111, which quietly reads a lone bracket as if it were closed at the end, an unbalanced bracket is
refused with the place it is at, as is a weight outside ``MIN_WEIGHT``..``MAX_WEIGHT``. The result is a list of
chunks (split at BREAK), each a list of ``(text, weight)`` fragments: compel's ``FlattenedPrompt``.
"""
from __future__ import annotations

import re

MIN_WEIGHT, MAX_WEIGHT = 0.0, 2.0
ROUND_STEP = 1.1  # A1111's "(text)"; compel's "+"
COMPEL_DOWN = 0.9  # compel's "-"
BREAK = "BREAK"

Fragments = list[tuple[str, float]]

# One token of the prompt: an escape, an opening bracket, a closing one with an A1111 weight ":1.3)", a closing
# one with a compel weight ")1.3" or ")++", a word with compel's "++"/"--", plain text, or a lone colon.
_TOKEN = re.compile(r"""
    (?P<escape>\\[()\[\]\\])
  | (?P<open>[(\[])
  | :\s*(?P<a1111>[+-]?(?:\d+\.?\d*|\.\d+))\s*\)
  | \)(?P<compel>(?:\d+\.?\d*|\.\d+)(?![\w.])|\++|-+(?![\w-]))?
  | (?P<close_square>\])
  | (?P<word>[^\s\\()\[\]:+-]+)(?P<signs>\++|-+)(?=[\s,.;]|$)
  | (?P<text>\s+|[^\s\\()\[\]:]+|[:\\])
""", re.VERBOSE)
_BREAK = re.compile(r"\s*\bBREAK\b\s*")
SHOWN = 24  # characters of the prompt quoted around a problem


class PromptSyntaxError(ValueError):
    """A prompt the weights parser refuses, with a message a person can act on."""


def _near(prompt: str, at: int) -> str:
    start = max(0, at - SHOWN // 2)
    excerpt = prompt[start:at + SHOWN // 2]
    return ("…" if start else "") + excerpt + ("…" if at + SHOWN // 2 < len(prompt) else "")


def _signs_weight(signs: str) -> float:
    return ROUND_STEP ** len(signs) if signs.startswith("+") else COMPEL_DOWN ** len(signs)


def _closing_weight(a1111: str | None, compel: str | None, prompt: str, at: int) -> float:
    """What a closing round bracket multiplies by: its A1111 or compel number, compel's signs, else 1.1."""
    if a1111 is not None:
        return _checked(a1111, prompt, at)
    if compel is None:
        return ROUND_STEP
    if set(compel) <= {"+"} or set(compel) <= {"-"}:
        return _signs_weight(compel)
    return _checked(compel, prompt, at)


def _checked(value: str, prompt: str, at: int) -> float:
    weight = float(value)
    if not MIN_WEIGHT <= weight <= MAX_WEIGHT:
        raise PromptSyntaxError(f"The weight {value} near “{_near(prompt, at)}” is out of range: use {MIN_WEIGHT:g} "
                                f"to {MAX_WEIGHT:g} (1 is unchanged).")
    return weight


def parse_weights(prompt: str) -> list[Fragments]:
    """The prompt as chunks (split at BREAK) of ``(text, weight)`` fragments, neighbours of equal weight merged.

    Raises:
        PromptSyntaxError: an unbalanced bracket, or a weight (given or multiplied up) outside 0–2.
    """
    pieces: list[list] = []  # [text, weight, chunk], weights multiplied in place as brackets close
    stack: list[tuple[str, int, int]] = []  # (bracket, index into pieces, position in the prompt)
    chunk = 0
    for match in _TOKEN.finditer(prompt):
        kind, at = match.lastgroup, match.start()
        if match.group("escape"):
            pieces.append([match.group("escape")[1], 1.0, chunk])
        elif match.group("open"):
            stack.append((match.group("open"), len(pieces), at))
        elif match.group("word"):
            pieces.append([match.group("word"), _signs_weight(match.group("signs")), chunk])
        elif kind in ("a1111", "compel") or match.group(0).startswith(")"):
            if not stack or stack[-1][0] != "(":
                raise PromptSyntaxError(_unbalanced(prompt, ")", at, stack))
            _, first, _ = stack.pop()
            weight = _closing_weight(match.group("a1111"), match.group("compel"), prompt, at)
            for piece in pieces[first:]:
                piece[1] *= weight
        elif kind == "close_square":
            if not stack or stack[-1][0] != "[":
                raise PromptSyntaxError(_unbalanced(prompt, "]", at, stack))
            _, first, _ = stack.pop()
            for piece in pieces[first:]:
                piece[1] /= ROUND_STEP
        else:
            parts = _BREAK.split(match.group(0))
            for index, part in enumerate(parts):
                if index:
                    chunk += 1
                if part:
                    pieces.append([part, 1.0, chunk])
    if stack:
        bracket, _, at = stack[-1]
        closer = ")" if bracket == "(" else "]"
        raise PromptSyntaxError(f"The “{bracket}” near “{_near(prompt, at)}” is never closed: add a “{closer}”, or "
                                f"write \\{bracket} for the character itself.")
    chunks: list[Fragments] = [[] for _ in range(chunk + 1)]
    for text, weight, index in pieces:
        if not MIN_WEIGHT <= weight <= MAX_WEIGHT + 1e-9:
            raise PromptSyntaxError(f"“{text.strip()}” ends up weighted {weight:.3g} by the brackets around it: keep "
                                    f"weights from {MIN_WEIGHT:g} to {MAX_WEIGHT:g}.")
        weight = round(weight, 4)
        fragments = chunks[index]
        if fragments and fragments[-1][1] == weight:
            fragments[-1] = (fragments[-1][0] + text, weight)
        else:
            fragments.append((text, weight))
    if len(chunks) > 1:  # BREAK takes the spaces around it with it, as in A1111
        for fragments in chunks:
            if fragments:
                fragments[0] = (fragments[0][0].lstrip(), fragments[0][1])
                fragments[-1] = (fragments[-1][0].rstrip(), fragments[-1][1])
    return [[(text, weight) for text, weight in fragments if text.strip()] for fragments in chunks]


def _unbalanced(prompt: str, closer: str, at: int, stack: list) -> str:
    opener = "(" if closer == ")" else "["
    if stack:
        return (f"The “{closer}” near “{_near(prompt, at)}” closes a “{stack[-1][0]}”: brackets must pair up, "
                f"“{opener}” with “{closer}”.")
    return (f"The “{closer}” near “{_near(prompt, at)}” has no “{opener}” before it: remove it, or write "
            f"\\{closer} for the character itself.")


def weights_problem(prompt: str | None) -> str | None:
    """Why the prompt's weights cannot be read (unbalanced brackets, a weight out of range), or None."""
    try:
        parse_weights(prompt or "")
    except PromptSyntaxError as exc:
        return str(exc)
    return None


def is_plain(chunks: list[Fragments]) -> bool:
    """True when nothing is weighted and there is no BREAK: the text can go to the pipeline as it is."""
    return len(chunks) <= 1 and all(weight == 1.0 for fragments in chunks for _, weight in fragments)


def plain_text(chunks: list[Fragments]) -> str:
    """The words alone, weights dropped (what a pipeline without compel support sees)."""
    return " ".join(" ".join(text.strip() for text, _ in fragments) for fragments in chunks if fragments).strip()


def _compel_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def to_compel(chunks: list[Fragments]) -> str:
    """compel's syntax for the same weights: ``(text)1.3``; chunks as ``("…", "…").and()`` (what BREAK does)."""
    def one(fragments: Fragments) -> str:
        return " ".join(_compel_escape(text.strip()) if weight == 1.0 else f"({_compel_escape(text.strip())}){weight:g}"
                        for text, weight in fragments)
    if len(chunks) == 1:
        return one(chunks[0])
    quoted = ", ".join('"' + one(fragments).replace('"', '\\"') + '"' for fragments in chunks)
    return f"({quoted}).and()"
