"""``/api/v1/grids``: start an X/Y/Z comparison grid (``webapp.grids.start``, the studio's grid code) and follow it.

A grid's cells are ordinary generations (``GET /api/v1/generations/<id>``); when the last one ends, its picture
is made, one more generation, whose image the grid's state links to.
"""
from __future__ import annotations

import csv
import io
import uuid

from flask import abort, url_for
from flask_login import current_user
from marshmallow import Schema, ValidationError, fields, validate

from ...access import viewable_image_or_404
from ...extensions import db
from ...grids.start import grid_state, start_grid
from ...prompting.grids import AXES, MAX_VALUES, GridProblem, read_axis
from ...tables import Grid
from ..gate import Scheme, protect
from ..problems import ApiError
from ..submit import edit_columns, refusals_as_api_errors
from .parsing import ApiBlueprint, arguments_400
from .schemas import GenerationCreateSchema
from .serialize import utc

blp = ApiBlueprint("api_grids", __name__, url_prefix="/api/v1/grids", description="Comparison grids (X/Y/Z plot)")
protect(blp, Scheme.BEARER, allow_session=True)


class AxisValues(fields.Field):
    """An axis's values: a list (strings or numbers), or one text as the studio's form takes it (``1, 2, 3``,
    ``1-4``, ``1-9 (+4)``; quotes keep a comma inside a value)."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, list) and value and len(value) <= MAX_VALUES and all(
                isinstance(item, str | int | float) and not isinstance(item, bool) for item in value):
            out = io.StringIO()
            csv.writer(out, lineterminator="").writerow(value)  # read back by read_axis, commas quoted
            return out.getvalue()
        raise ValidationError(f"Give a list of 1 to {MAX_VALUES} values (texts or numbers), or one text of "
                              "comma-separated values.")


class AxisSchema(Schema):
    """One axis: its kind and its values."""

    type = fields.String(required=True, validate=validate.OneOf(list(AXES)), metadata={
        "description": "seed, steps, guidance, strength (needs init_image_id), model, lora_scale (the first LoRA "
                       "of loras), style, prompt_sr (the first value is found in the prompt and replaced by each)"})
    values = AxisValues(required=True, metadata={
        "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": ["string", "number"]}}],
        "description": "a list, or the studio's text: '1, 2, 3', '1-4', '1-9 (+4)'"})


class GridCreateSchema(GenerationCreateSchema):
    """A grid: the base request (as ``POST /api/v1/generations``) and up to three axes."""

    class Meta:
        exclude = ("hires", "control_image", "control", "control_scale", "control_preprocessor")

    axes = fields.List(fields.Nested(AxisSchema), required=True,
                       validate=validate.Length(1, 3, error="Give one to three axes."),
                       metadata={"description": "X, then Y, then Z; each kind once"})
    init_image_id = fields.String(load_default=None, metadata={
        "description": "an image you may see, as every cell's starting image (image to image)"})
    strength = fields.Float(load_default=None, allow_nan=False, metadata={
        "description": "how far each cell moves from init_image_id (0–1)"})


class GridCellSchema(Schema):
    generation_id = fields.String(required=True, metadata={"description": "GET /api/v1/generations/<id>"})
    status = fields.String(required=True)


class GridSchema(Schema):
    """A grid: its cells, and its picture once every cell has ended."""

    id = fields.String(required=True)
    status = fields.String(required=True, metadata={
        "description": "'making cells' until every cell has ended, then the picture's generation's status"})
    settings = fields.Dict(required=True, metadata={"description": "the axes and the base request"})
    cells = fields.List(fields.Nested(GridCellSchema), required=True, metadata={"description": "X fastest, then Y, Z"})
    generation_id = fields.String(allow_none=True, required=True, metadata={"description": "the picture's generation"})
    image_id = fields.String(allow_none=True, required=True)
    image_url = fields.String(allow_none=True, required=True, metadata={"description": "the grid picture (PNG)"})
    created_at = fields.AwareDateTime(required=True)


def grid_dict(grid: Grid) -> dict:
    """A grid as this API shows it."""
    state = grid_state(grid)
    image_id = state["image_id"]
    return {**state, "created_at": utc(grid.created_at),
            "image_url": url_for("api_images.image_file", image_id=image_id) if image_id else None}


@blp.post("")
@arguments_400(blp, GridCreateSchema)
@blp.response(202, GridSchema)
@blp.alt_response(400, response="BAD_REQUEST")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def create(params: dict):
    """Start a grid: every cell an ordinary generation, checked whole first (the rules, ``MAX_GRID_CELLS``, the
    person's limits: a grid is one waiting request whose cells' images count against the daily limits)."""
    raw_axes, image_id = params.pop("axes"), params.pop("init_image_id")
    try:
        axes = [read_axis(axis["type"], axis["values"]) for axis in raw_axes]
    except GridProblem as exc:
        raise ApiError(400, str(exc), errors={"axes": [str(exc)]}) from None
    if any(axis.type == "strength" for axis in axes) and not image_id:
        raise ApiError(400, "A strength axis needs a starting image: send init_image_id.",
                       errors={"init_image_id": ["Needed by the strength axis."]})
    parent = viewable_image_or_404(image_id) if image_id else None  # another person's private image: 404
    base = edit_columns(params, parent=parent)[0]
    with refusals_as_api_errors():
        try:
            grid = start_grid(current_user._get_current_object(), base, axes)
        except GridProblem as exc:
            raise ApiError(400, str(exc), errors={"axes": [str(exc)]}) from None
    return grid_dict(grid), 202, {"Location": url_for("api_grids.get", grid_id=grid.id)}


@blp.get("/<uuid:grid_id>")
@blp.response(200, GridSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get(grid_id: uuid.UUID):
    """One of my grids: its cells' statuses and, once they have ended, its picture."""
    grid = db.session.get(Grid, str(grid_id))
    if grid is None or grid.user_id != current_user.id:
        abort(404)
    return grid_dict(grid)
