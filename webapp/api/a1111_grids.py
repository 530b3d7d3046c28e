"""AUTOMATIC1111's X/Y/Z plot script on ``POST /sdapi/v1/txt2img`` (``script_name: "x/y/z plot"``): the axes
Easel makes (seed, steps, CFG scale, prompt S/R, checkpoint, denoising, styles) become an Easel grid
(``webapp.prompting``); any other axis is refused with 422, as A1111 refuses what it cannot do."""
from __future__ import annotations

import base64
import json
import time

from flask import current_app, jsonify
from flask_login import current_user

from ..extensions import db
from ..grids.start import start_grid
from ..prompting.grids import GridProblem, axes_from_a1111
from ..tables import Generation, GenerationStatus, Grid
from .problems import ApiError
from .submit import WAIT_INTERVAL, checked_columns, refusals_as_api_errors, stored_png, wait_until_final, waiting_place

SCRIPT_NAMES = {"x/y/z plot", "xyz plot", "x/y/z_plot"}


def is_xyz_plot(body: dict) -> bool:
    """Whether the request asks for A1111's X/Y/Z plot script."""
    name = body.get("script_name")
    return isinstance(name, str) and name.strip().lower() in SCRIPT_NAMES


def _wait_for_picture(grid: Grid) -> Generation:
    """The grid's picture once made, within ``API_WAIT_SECONDS``.

    Raises:
        ApiError: 504 when the wait runs out (the grid goes on into the gallery), 500 when the picture failed.
    """
    wait = current_app.config["API_WAIT_SECONDS"]
    deadline = time.monotonic() + wait
    while True:
        db.session.refresh(grid)
        if grid.generation_id is not None:
            picture = db.session.get(Generation, grid.generation_id)
            if wait_until_final(picture, max(0.0, deadline - time.monotonic())):
                if picture.status != GenerationStatus.SUCCEEDED:
                    raise ApiError(500, f"The grid's picture {picture.status}: {picture.error or 'not made'}")
                return picture
        if time.monotonic() >= deadline:
            raise ApiError(504, f"The grid was not ready within {wait} seconds; it goes on and will appear in your "
                                f"gallery (grid {grid.id}).", kind="timeout")
        db.session.commit()  # a fresh read next time
        time.sleep(WAIT_INTERVAL)


def xyz_plot(params: dict, body: dict):
    """Make the grid and answer as A1111 does: the grid picture first, then each cell's, with their infotexts."""
    try:
        axes = axes_from_a1111(body.get("script_args"))
    except GridProblem as exc:
        raise ApiError(422, str(exc)) from None
    columns = checked_columns(params)
    with waiting_place():
        with refusals_as_api_errors():
            try:
                grid = start_grid(current_user._get_current_object(), columns, axes)
            except GridProblem as exc:
                raise ApiError(422, str(exc)) from None
        picture = _wait_for_picture(grid)
    images = [picture.images[0]] + [cell.generation.images[0] for cell in grid.cells if cell.generation.images]
    pngs = [stored_png(image) for image in images]
    prompts = [image.generation.prompt for image in images]
    info = {"prompt": picture.prompt, "all_prompts": prompts, "seed": picture.seed,
            "all_seeds": [image.generation.seed for image in images], "negative_prompt": picture.negative_prompt,
            "width": picture.width, "height": picture.height, "easel_grid_id": grid.id, "xyz_plot": grid.settings,
            "infotexts": [_parameters(png) for png in pngs]}
    return jsonify({"images": [base64.b64encode(png).decode() for png in pngs] if body.get("send_images", True)
                    else [], "parameters": body, "info": json.dumps(info, ensure_ascii=False)})


def _parameters(png: bytes) -> str:
    import io

    from PIL import Image as PILImage

    return PILImage.open(io.BytesIO(png)).info.get("parameters", "")
