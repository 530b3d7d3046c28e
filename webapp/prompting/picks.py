"""The wildcard lists a person can use, and each image's prompt picked when a generation is submitted."""
from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import or_, select

from ..extensions import db
from ..tables import Generation, GenerationPrompts, Wildcard
from .weights import weights_problem
from .wildcards import PromptProblem, every_combination, is_dynamic, pick


def lists_for(user_id: int | None) -> dict[str, list[str]]:
    """Every list the person may use by name: the site's, with their own of the same name in its place."""
    rows = db.session.scalars(select(Wildcard).where(
        or_(Wildcard.user_id.is_(None), Wildcard.user_id == user_id) if user_id is not None
        else Wildcard.user_id.is_(None)))
    site, own = {}, {}
    for row in rows:
        (site if row.user_id is None else own)[row.name] = list(row.values)
    return site | own


def image_prompts(user_id: int, params: Mapping, limit: int) -> tuple[dict, GenerationPrompts | None]:
    """The columns with ``num_images`` set for ``variants="all"``, and each image's prompt (None: all the same).

    Args:
        user_id: whose lists win.
        params: the generation's columns with ``seed`` resolved, and ``variants`` ("random" or "all").
        limit: the most images one request may make (variants="all" makes one per combination).

    Raises:
        PromptProblem: an unknown list, unpaired braces, too many combinations, or a picked prompt whose
            weights cannot be read.
    """
    columns = dict(params)
    variants = columns.pop("variants", None) or "random"
    prompt = columns["prompt"]
    if variants != "all" and not is_dynamic(prompt):
        return columns, None
    lists = lists_for(user_id)
    if variants == "all":
        prompts = every_combination(prompt, lists, limit)
        columns["num_images"] = len(prompts)
    else:
        prompts = pick(prompt, [columns["seed"] + index for index in range(columns["num_images"])], lists)
    for picked in prompts:
        if problem := weights_problem(picked):
            raise PromptProblem(f"With its choices filled in (“{picked[:80]}”): {problem}")
    return columns, GenerationPrompts(prompts=prompts, variants=variants)


def prompt_of(generation: Generation, index: int) -> str:
    """The prompt image ``index`` of the generation was made from (its picks, else the prompt as written)."""
    picks = generation.prompt_picks
    if picks is not None and 0 <= index < len(picks.prompts):
        return picks.prompts[index]
    return generation.prompt
