"""A person's own wildcard lists (``/wildcards``, linked from the account page; theirs win over the site's), and
X/Y/Z grids (``POST /grids`` from the studio, ``/grids/<id>``)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from .. import services
from ..errors import wants_json
from ..extensions import db
from ..generations import GenerationRefused
from ..tables import Grid, Wildcard
from .forms import DeleteForm, WildcardForm
from .grid_start import grid_state, start_grid
from .grids import GridProblem, read_axis
from .lists import lists_of, remove_list, save_list
from .wildcards import PromptProblem

bp = Blueprint("prompting", __name__)


def render_lists(form: WildcardForm, owner_id: int | None, status: int = 200, **endpoints):
    """The lists page, for a person or (``owner_id`` None) the site."""
    return render_template("prompting/wildcards.html", form=form, delete_form=DeleteForm(), lists=lists_of(owner_id),
                           site_lists=lists_of(None) if owner_id is not None else [], **endpoints), status


def _mine(**kw):
    return render_lists(kw.pop("form", None) or WildcardForm(formdata=None), current_user.id, kw.pop("status", 200),
                        save_endpoint="prompting.save", delete_endpoint="prompting.delete", own=True)


@bp.get("/wildcards")
@login_required
def wildcards():
    """My lists, and the site's (mine win for me)."""
    return _mine()


@bp.post("/wildcards")
@login_required
def save():
    """Create or replace one of my lists."""
    form = WildcardForm()
    if form.validate_on_submit():
        try:
            row = save_list(current_user.id, form.name.data, form.values.data)
        except PromptProblem as exc:
            form.values.errors.append(str(exc)) if "entr" in str(exc) else form.name.errors.append(str(exc))
        else:
            flash(f"Saved __{row.name}__ ({len(row.values)} entries).", "success")
            return redirect(url_for("prompting.wildcards"), 303)
    return _mine(form=form, status=400)


@bp.post("/wildcards/<id:list_id>/delete")
@login_required
def delete(list_id: int):
    """Delete one of my lists (another's: 404)."""
    row = db.session.get(Wildcard, list_id)
    if row is None or row.user_id != current_user.id:
        abort(404)
    if not DeleteForm().validate_on_submit():
        abort(400)
    remove_list(row)
    flash(f"Deleted __{row.name}__.", "success")
    return redirect(url_for("prompting.wildcards"), 303)


@bp.post("/grids")
@login_required
def create_grid():
    """The studio's form plus up to three axes: every cell started as a generation; 303 to the grid's page."""
    from ..studio.forms import GenerationForm
    from ..studio.routes import render_studio, start_image_params

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
    return redirect(url_for("prompting.grid_page", grid_id=grid.id), 303)


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
    return render_template("prompting/grid.html", grid=grid, state=state)
