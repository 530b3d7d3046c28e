"""X/Y/Z comparison grids: up to three axes of values; every cell an ordinary generation; then one picture.

A grid is planned and checked whole before anything starts: every cell's request must meet the same rules as a
studio request (``generation_rules.problems``), the cells must fit ``MAX_GRID_CELLS`` and the person's limits (a
grid is one waiting request; its cells' images count against the daily limits and their groups'). Then each cell
is made by ``create_generation`` (so they batch with each other and with anyone's, as ordinary generations do),
and the worker that ends the last cell queues
the grid's picture (``jobs.grids``), drawn from the cells' first images with the axes' names and values in the
margins, and stored like any picture, with the grid's settings in its PNG text.
"""
from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from models.samplers import MODEL_DEFAULT

AXES = {  # type -> (label, how a value is read)
    "seed": ("Seed", "int"),
    "steps": ("Steps", "int"),
    "guidance": ("CFG Scale", "float"),
    "strength": ("Denoising", "float"),
    "model": ("Checkpoint name", "str"),
    "lora_scale": ("LoRA scale", "float"),
    "style": ("Styles", "str"),
    "scheduler": ("Sampler", "str"),  # models/samplers.py's names; "Model default" for the model's own
    "prompt_sr": ("Prompt S/R", "str"),
}
# AUTOMATIC1111's X/Y/Z plot (scripts/xyz_grid.py) names its txt2img axes by their index in this list.
A1111_TXT2IMG_AXES = ["Nothing", "Seed", "Var. seed", "Var. strength", "Steps", "Hires steps", "CFG Scale", "Prompt S/R",
                      "Prompt order", "Sampler", "Hires sampler", "Checkpoint name", "Negative Guidance minimum sigma",
                      "Sigma Churn", "Sigma min", "Sigma max", "Sigma noise", "Schedule type", "Schedule min sigma",
                      "Schedule max sigma", "Schedule rho", "Eta", "Clip skip", "Denoising", "Initial noise multiplier",
                      "Extra noise", "Hires upscaler", "VAE", "Styles"]
A1111_AXIS_TYPES = {"Seed": "seed", "Steps": "steps", "CFG Scale": "guidance", "Prompt S/R": "prompt_sr",
                    "Checkpoint name": "model", "Denoising": "strength", "Styles": "style", "Sampler": "scheduler"}
MAX_VALUES = 16  # values on one axis
_RANGE = re.compile(r"\s*(-?\d+)\s*-\s*(-?\d+)\s*(?:\(\s*\+?(\d+)\s*\))?\s*")


class GridProblem(ValueError):
    """A grid that cannot be made as asked, with a message for the person."""


@dataclass(frozen=True)
class Axis:
    """One axis: its type (a key of ``AXES``) and its values, read."""

    type: str
    values: tuple

    @property
    def label(self) -> str:
        return AXES[self.type][0]

    def shown(self, value: Any) -> str:
        """How a value is written in the margin (A1111 writes ``Seed: 5``; S/R shows the replacement alone)."""
        return str(value) if self.type == "prompt_sr" else f"{self.label}: {value:g}" if isinstance(value, float) \
            else f"{self.label}: {value}"


def _values(text: str) -> list[str]:
    """Comma-separated values; quotes keep a comma inside one (A1111's CSV)."""
    try:
        rows = list(csv.reader([text or ""], skipinitialspace=True))
    except csv.Error:
        raise GridProblem("The values could not be read: separate them with commas.") from None
    return [value.strip() for value in (rows[0] if rows else []) if value.strip()]


def read_axis(type_: str, text: str) -> Axis:
    """One axis from its type and its values as written ("1, 2, 3", "1-4", "1-9 (+4)", "a, b").

    Raises:
        GridProblem: an unknown type, no value, too many, or a value that is not a number where one is needed.
    """
    if type_ not in AXES:
        raise GridProblem(f"A grid's axis is one of: {', '.join(AXES)} (“{type_[:40]}” is not one).")
    label, kind = AXES[type_]
    raw = _values(text)
    values: list = []
    for item in raw:
        if kind == "int" and (found := _RANGE.fullmatch(item)):
            first, last, step = int(found.group(1)), int(found.group(2)), int(found.group(3) or 1)
            values.extend(range(first, last + 1, max(1, step))[:MAX_VALUES + 1])
        elif kind == "int":
            try:
                values.append(int(item))
            except ValueError:
                raise GridProblem(f"{label} takes whole numbers; “{item[:40]}” is not one.") from None
        elif kind == "float":
            try:
                values.append(float(item))
            except ValueError:
                raise GridProblem(f"{label} takes numbers; “{item[:40]}” is not one.") from None
        else:
            values.append(item)
    if not values:
        raise GridProblem(f"Give {label} at least one value, separated by commas.")
    if len(values) > MAX_VALUES:
        raise GridProblem(f"Give {label} at most {MAX_VALUES} values.")
    return Axis(type_, tuple(values))


def cell_params(base: Mapping[str, Any], axes: list[Axis], place: tuple) -> dict:
    """The request of one cell: the base request with each axis's value at ``place`` put in.

    Raises:
        GridProblem: a prompt S/R whose first value is not in the prompt, a LoRA scale without a LoRA.
    """
    params = dict(base)
    for axis, index in zip(axes, place, strict=True):
        value = axis.values[index]
        if axis.type == "prompt_sr":
            search = axis.values[0]
            if search not in base["prompt"]:
                raise GridProblem(f"Prompt S/R replaces its first value, “{search[:40]}”, which is not in the prompt.")
            params["prompt"] = params["prompt"].replace(search, value)
        elif axis.type == "lora_scale":
            if not params.get("loras"):
                raise GridProblem("A LoRA scale axis needs a LoRA: choose one in the first LoRA menu.")
            (name, _), *rest = params["loras"]
            params["loras"] = [[name, value], *rest]
        elif axis.type == "strength":
            params["strength"] = value
        elif axis.type == "scheduler":
            params["scheduler"] = None if value.lower() == MODEL_DEFAULT.lower() else value
        else:
            params[axis.type] = value
    return params


def places(axes: list[Axis]) -> list[tuple]:
    """Every cell's (x, y, z) indices, in the picture's order: x fastest, then y, then z."""
    return [tuple(reversed(place)) for place in itertools.product(*(range(len(a.values)) for a in reversed(axes)))]


def settings_of(axes: list[Axis], base: Mapping[str, Any]) -> dict:
    """What a grid keeps of its request (and writes into its picture's PNG text)."""
    return {"axes": [{"type": axis.type, "label": axis.label, "values": list(axis.values)} for axis in axes],
            "base": {key: value for key, value in base.items() if key not in ("variants",)}}


def axes_from_a1111(script_args: list) -> list[Axis]:
    """The axes of A1111's X/Y/Z plot ``script_args`` (x type, x values, x dropdown, y …, z …, then options).

    Raises:
        GridProblem: an axis type Easel does not make (a sampler, a hires setting…), or args that are not the plot's.
    """
    if not isinstance(script_args, list) or len(script_args) < 3:
        raise GridProblem("script_args for the X/Y/Z plot start with X type, X values, X values dropdown.")
    axes = []
    for start in (0, 3, 6):
        if start + 1 >= len(script_args):
            break
        kind, text = script_args[start], script_args[start + 1]
        dropdown = script_args[start + 2] if start + 2 < len(script_args) else None
        if isinstance(kind, str):
            label = kind
        elif isinstance(kind, int) and not isinstance(kind, bool) and 0 <= kind < len(A1111_TXT2IMG_AXES):
            label = A1111_TXT2IMG_AXES[kind]
        else:
            raise GridProblem(f"The X/Y/Z plot's axis type {kind!r} is not one of its txt2img axes.")
        if label == "Nothing":
            continue
        if label not in A1111_AXIS_TYPES:
            raise GridProblem(f"The X/Y/Z plot's “{label}” axis is not supported here; use "
                              f"{', '.join(A1111_AXIS_TYPES)}.")
        if isinstance(dropdown, list) and dropdown and not (isinstance(text, str) and text.strip()):
            text = ",".join(f'"{item}"' if "," in str(item) else str(item) for item in dropdown)
        if not isinstance(text, str):
            raise GridProblem(f"The X/Y/Z plot's {label} values must be text, like “1, 2, 3”.")
        axes.append(read_axis(A1111_AXIS_TYPES[label], text))
    if not axes:
        raise GridProblem("The X/Y/Z plot needs at least one axis other than Nothing.")
    return axes
