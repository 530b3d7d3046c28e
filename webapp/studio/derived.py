"""New images from an image: ``POST /images/<id>/variations``, ``/upscale`` and ``/hires`` (the hires fix's second
pass).

Thin routes over ``webapp.derived_images`` (shared with the API).
"""
from __future__ import annotations

from flask import flash, redirect, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.validators import InputRequired, NumberRange

from models.upscalers import FACTORS

from ..access import viewable_image_or_404
from ..derived_images import VARIATION_STRENGTH, start_hires, start_upscale, start_variation, upscaler_menu
from ..editing import DEFAULT_HR_SCALE, DEFAULT_HR_STRENGTH
from ..generations import GenerationRefused
from ..inputs import AsciiFloatField, AsciiIntegerField
from ..tables import Image
from .forms import MAX_STRENGTH, MIN_STRENGTH
from .routes import bp


class VariationForm(FlaskForm):
    """Fields of ``POST /images/<id>/variations``."""

    num_images = AsciiIntegerField("Images", default=2, validators=[
        InputRequired("Choose how many images."), NumberRange(1, 4, "Choose 1 to 4 images.")])
    strength = AsciiFloatField("Strength", default=VARIATION_STRENGTH, validators=[
        InputRequired("Choose a strength."),
        NumberRange(MIN_STRENGTH, MAX_STRENGTH, f"Use a strength from {MIN_STRENGTH} to {MAX_STRENGTH:g}.")])


class UpscaleForm(FlaskForm):
    """Fields of ``POST /images/<id>/upscale``."""

    factor = AsciiIntegerField("Factor", validators=[InputRequired("Choose ×2 or ×4."),
                                                NumberRange(min(FACTORS), max(FACTORS), "Choose ×2 or ×4.")])
    upscaler = SelectField("Upscaler", validate_choice=False)


class HiresForm(FlaskForm):
    """Fields of ``POST /images/<id>/hires``: the scale (the larger size must be one the model makes) and strength."""

    hr_scale = AsciiFloatField("Scale", default=DEFAULT_HR_SCALE, validators=[
        InputRequired("Choose a scale."), NumberRange(1.01, 4, "Use a scale above 1 and at most 4.")])
    hr_strength = AsciiFloatField("Strength", default=DEFAULT_HR_STRENGTH, validators=[
        InputRequired("Choose a strength."), NumberRange(0.05, 1, "Use a strength from 0.05 to 1.")])


def _back(image: Image, message: str):
    flash(message, "danger")
    return redirect(url_for("gallery.image_detail", image_id=image.id), 303)


@bp.post("/images/<image_id>/variations")
@login_required
def variations(image_id: str):
    """N new images from this one: same prompt and settings, new seeds, at a (low) strength."""
    image = viewable_image_or_404(image_id)
    form = VariationForm()
    if not form.validate_on_submit():
        return _back(image, " ".join(e for errors in form.errors.values() for e in errors))
    try:
        generation = start_variation(current_user, image, form.num_images.data, form.strength.data)
    except GenerationRefused as exc:
        return _back(image, str(exc))
    return redirect(url_for("studio.generation_page", generation_id=generation.id), 303)


@bp.post("/images/<image_id>/upscale")
@login_required
def upscale(image_id: str):
    """A new image, ``factor`` times larger, made by a catalog upscaler on the generation queue."""
    image = viewable_image_or_404(image_id)
    form = UpscaleForm()
    menu = {item["name"]: item for item in upscaler_menu()}
    form.upscaler.choices = list(menu)
    if not form.validate_on_submit() or form.factor.data not in FACTORS:
        return _back(image, "Choose ×2 or ×4 and one of the listed upscalers.")
    try:
        generation = start_upscale(current_user, image, form.factor.data, form.upscaler.data)
    except GenerationRefused as exc:
        return _back(image, str(exc))
    return redirect(url_for("studio.generation_page", generation_id=generation.id), 303)


@bp.post("/images/<image_id>/hires")
@login_required
def hires(image_id: str):
    """A new image: this one enlarged and refined at the larger size (the hires fix's second pass)."""
    image = viewable_image_or_404(image_id)
    form = HiresForm()
    if not form.validate_on_submit():
        return _back(image, " ".join(e for errors in form.errors.values() for e in errors))
    try:
        generation = start_hires(current_user, image, form.hr_scale.data, form.hr_strength.data)
    except GenerationRefused as exc:
        return _back(image, str(exc))
    return redirect(url_for("studio.generation_page", generation_id=generation.id), 303)
