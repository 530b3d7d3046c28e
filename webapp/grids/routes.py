"""Grid routes: ``POST /grids`` (the studio's form and its axes) and ``/grids/<id>``."""
from __future__ import annotations

from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from .. import services
from ..errors import wants_json
from ..extensions import db
from ..generations import GenerationRefused
from ..prompting.grids import GridProblem, read_axis
from ..studio.forms import GenerationForm
from ..studio.routes import render_studio, start_image_params
from ..tables import Grid
from .start import grid_state, start_grid

bp = Blueprint("grids", __name__)


@bp.post("/grids")
@login_required
def create_grid():
    """The studio's form plus up to three axes: every cell started as a generation; 303 to the grid's page."""
    form = GenerationForm(services.catalog(), lora_catalog=services.loras())
    start = start_image_params(form)
    if not form.validate_on_submit():
        return render_studio(form, 400, grid_error=True)
    try:
        axes = [read_axis(request.form[f"grid_{name}_type"], request.form.get(f"grid_{name}_values", ""))
                for name in "xyz" if request.form.get(f"grid_{name}_type")]
        if not axes:
            raise GridProblem("Choose at least one axis for the grid, with its values.")
        if form.upload_picture is not None:
            raise GridProblem("A grid starts from an image of your gallery, not a new upload: make the upload a "
                              "picture first (press Create), then use it.")
        if any(axis.type == "strength" for axis in axes) and not start:
            raise GridProblem("A Denoising (strength) axis needs a starting image.")
        grid = start_grid(current_user._get_current_object(), {**form.params(), **form.start_params(), **start}, axes)
    except GridProblem as exc:
        return render_studio(form, 400, error=str(exc), grid_error=True)
    except GenerationRefused as exc:
        return render_studio(form, exc.status, error=str(exc), grid_error=True)
    if wants_json():
        return jsonify(grid_state(grid)), 202
    return redirect(url_for("grids.grid_page", grid_id=grid.id), 303)


@bp.get("/grids/<grid_id>")
@login_required
def grid_page(grid_id: str):
    """A grid's cells and, once they have ended, its picture (owner or admin; else 404)."""
    grid = db.session.get(Grid, grid_id) if len(grid_id) <= 36 else None
    if grid is None or not (grid.user_id == current_user.id or current_user.is_admin):
        abort(404)
    state = grid_state(grid)
    if wants_json():
        return jsonify(state)
    return render_template("grids/grid.html", grid=grid, state=state)
