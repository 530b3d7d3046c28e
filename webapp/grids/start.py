"""Start an X/Y/Z grid: plan and check every cell, check the person's limits for all of them, then make each
cell an ordinary generation (``webapp.generations.create_generation``)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app

from .. import services
from ..extensions import db
from ..generation_rules import problems
from ..generations import GenerationRefused, check_limits, create_generation, lock_user, new_seed
from ..prompting.grids import Axis, GridProblem, cell_params, places, settings_of
from ..tables import Generation, Grid, GridCell, User
from .picture import queue_picture_when_done


def plan(base: Mapping[str, Any], axes: list[Axis]) -> list[tuple[tuple, dict]]:
    """Every cell's place and request, each checked as a studio request is.

    Raises:
        GridProblem: too many cells, or a cell the rules refuse (naming the cell).
    """
    if len({axis.type for axis in axes}) != len(axes):
        raise GridProblem("Use each kind of axis once.")
    cells = places(axes)
    limit = current_app.config["MAX_GRID_CELLS"]
    if len(cells) > limit:
        raise GridProblem(f"This grid has {len(cells)} cells; a grid may have at most {limit}. Use fewer values.")
    planned = []
    for place in cells:
        params = cell_params(base, axes, place)
        found = problems(services.catalog(), params, services.loras())
        if found:
            where = ", ".join(axis.shown(axis.values[index]) for axis, index in zip(axes, place, strict=True))
            raise GridProblem(f"The cell {where} cannot be made: {' '.join(found.values())}")
        planned.append((place, params))
    return planned


def check_room(user: User, planned: list[tuple[tuple, dict]]) -> None:
    """The person's limits for the whole grid: one request among their waiting ones (``MAX_QUEUED_PER_USER``; the
    fair queue gives their cells one turn in each round, as any of their generations), and every cell's images
    against the daily quota and their groups' limits.

    Raises:
        GenerationRefused: over a limit (nothing was started).
    """
    lock_user(user.id)
    try:
        check_limits(user, sum(params["num_images"] for _, params in planned))
    finally:
        db.session.rollback()  # the lock is released; each cell takes it again


def start_grid(user: User, base: Mapping[str, Any], axes: list[Axis]) -> Grid:
    """Check the whole grid, then start every cell; the grid's picture follows when they end (``jobs.grids``).

    Raises:
        GridProblem: a grid that cannot be made as asked. GenerationRefused: a limit, a ban, the queue down.
    """
    if user.is_banned:
        raise GenerationRefused("This account has been suspended, so it cannot make images.", status=403)
    base = {**base, "seed": base.get("seed") if base.get("seed") is not None else new_seed()}  # one seed for all
    planned = plan(base, axes)
    check_room(user, planned)
    grid = Grid(user_id=user.id, settings=settings_of(axes, base))
    db.session.add(grid)
    db.session.commit()
    for position, (_, params) in enumerate(planned):
        entry = services.catalog()[params["model"]]
        generation = create_generation(user, params, job_timeout=entry.job_timeout, grid_cell=True)
        db.session.add(GridCell(grid_id=grid.id, generation_id=generation.id, position=position))
        db.session.commit()
    queue_picture_when_done([cell.generation_id for cell in grid.cells])  # every cell may have ended already
    return grid


def grid_state(grid: Grid) -> dict:
    """A grid's cells and picture, for its page and the APIs."""
    picture = db.session.get(Generation, grid.generation_id) if grid.generation_id else None
    return {"id": grid.id, "settings": grid.settings,
            "cells": [{"generation_id": cell.generation_id, "status": cell.generation.status} for cell in grid.cells],
            "generation_id": grid.generation_id, "status": picture.status if picture is not None else "making cells",
            "image_id": picture.images[0].id if picture is not None and picture.images else None}
