"""Editing in the studio: the editor page and ``POST /images/<id>/outpaint``.

Thin routes over ``webapp.editing`` and ``webapp.outpainting`` (shared with the API).
"""
from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms.validators import NumberRange, Optional

from ..access import viewable_image_or_404
from ..generations import GenerationRefused
from ..inputs import AsciiFloatField
from ..outpainting import SIDES, start_outpaint
from .routes import bp

EDIT_STRENGTH = 0.9  # the editor's default: the painted area is repainted, not nudged


class OutpaintForm(FlaskForm):
    """Fields of ``POST /images/<id>/outpaint``: each side in pixels, or below 1 a fraction of the picture."""

    left = AsciiFloatField("Left", default=0, validators=[Optional(), NumberRange(0, 8192)])
    right = AsciiFloatField("Right", default=0, validators=[Optional(), NumberRange(0, 8192)])
    top = AsciiFloatField("Top", default=0, validators=[Optional(), NumberRange(0, 8192)])
    bottom = AsciiFloatField("Bottom", default=0, validators=[Optional(), NumberRange(0, 8192)])


@bp.get("/images/<image_id>/edit")
@login_required
def editor(image_id: str):
    """The editor: paint over the picture what to repaint, say what it should become."""
    image = viewable_image_or_404(image_id)
    return render_template("studio/editor.html", image=image, generation=image.generation, outpaint=OutpaintForm(),
                           strength=EDIT_STRENGTH)


@bp.post("/images/<image_id>/outpaint")
@login_required
def outpaint(image_id: str):
    """The picture continued beyond the chosen sides: a new generation, 303 to its progress page."""
    image = viewable_image_or_404(image_id)
    form = OutpaintForm()
    back = redirect(url_for("studio.editor", image_id=image.id), 303)
    if not form.validate_on_submit():
        flash(" ".join(e for errors in form.errors.values() for e in errors) or "Check the sides.", "danger")
        return back
    grow = tuple(float(getattr(form, side).data or 0) for side in SIDES)
    try:
        generation = start_outpaint(current_user, image, grow)
    except GenerationRefused as exc:
        flash(str(exc), "danger")
        return back
    return redirect(url_for("studio.generation_page", generation_id=generation.id), 303)
