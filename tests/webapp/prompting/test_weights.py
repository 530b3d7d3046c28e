"""The weights parser on AUTOMATIC1111's own syntax cases (its ``parse_prompt_attention`` doctests) and compel's."""
from __future__ import annotations

import pytest

from webapp.prompting.weights import parse_weights, plain_text, to_compel, weights_problem


@pytest.mark.parametrize(("prompt", "chunks"), [
    # A1111's doctests, merged the same way (neighbours of equal weight are one fragment)
    ("normal text", [[("normal text", 1.0)]]),
    ("an (important) word", [[("an ", 1.0), ("important", 1.1), (" word", 1.0)]]),
    ("(unbalanced:1.5)", [[("unbalanced", 1.5)]]),
    ("\\(literal\\]", [[("(literal]", 1.0)]]),
    ("(unnecessary)(parens)", [[("unnecessaryparens", 1.1)]]),
    # A1111's doctest has "(((house:1.3))", which it reads as if closed at the end; Easel refuses that (below)
    ("a (((house:1.3))) [on] a (hill:0.5), sun, (((sky))).", [[
        ("a ", 1.0), ("house", 1.573), ("on", 0.9091), (" a ", 1.0), ("hill", 0.5),
        (", sun, ", 1.0), ("sky", 1.331), (".", 1.0)]]),
    ("((word))", [[("word", 1.21)]]),
    ("[[word]]", [[("word", 0.8264)]]),
    ("a red star BREAK blue background", [[("a red star", 1.0)], [("blue background", 1.0)]]),
    # compel's own syntax
    ("a (red)1.3 star", [[("a ", 1.0), ("red", 1.3), (" star", 1.0)]]),
    ("a red++ star", [[("a ", 1.0), ("red", 1.21), (" star", 1.0)]]),
    ("a (red star)- here", [[("a ", 1.0), ("red star", 0.9), (" here", 1.0)]]),
    # text that only looks like syntax
    ("a high-quality, 3:2 picture", [[("a high-quality, 3:2 picture", 1.0)]]),
])
def test_a1111_and_compel_syntax(prompt: str, chunks: list) -> None:
    assert parse_weights(prompt) == chunks


def test_the_compel_form_and_the_plain_words() -> None:
    chunks = parse_weights("a (red:1.5) star \\(big\\) BREAK [blue] background")
    assert to_compel(chunks) == r'("a (red)1.5 star \(big\)", "(blue)0.9091 background").and()'
    assert plain_text(chunks) == "a red star (big) blue background"


@pytest.mark.parametrize(("prompt", "says"), [
    ("a (red star", "“(” near “a (red star” is never closed"),
    ("a red) star", "has no “(” before it"),
    ("a [red) star", "closes a “[”"),
    ("a (red:2.5) star", "The weight 2.5 near"),
    ("a (red:-1) star", "out of range: use 0 to 2"),
    ("((((((((red))))))))", "ends up weighted 2.14"),
])
def test_bad_weights_are_refused_with_the_place(prompt: str, says: str) -> None:
    assert says in weights_problem(prompt)
