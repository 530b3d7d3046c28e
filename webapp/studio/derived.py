"""New images from an image: ``POST /images/<id>/variations`` and ``POST /images/<id>/upscale``.

Both make an ordinary generation through ``create_generation`` (limits, quota, blocked terms, the same
queue and progress page), with the source image recorded as its parent.
"""
from __future__ import annotations

import math

from flask import current_app, flash, redirect, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import FloatField, IntegerField, SelectField
from wtforms.validators import InputRequired, NumberRange

from models.catalog import ModelEntry, ModelError
from models.upscalers import FACTORS, load_upscalers

from .. import services
from ..access import viewable_image_or_404
from ..generations import GenerationRefused, create_generation
from ..tables import Generation, Image, Source
from .forms import MAX_STRENGTH, MIN_STRENGTH
from .routes import bp

VARIATION_STRENGTH = 0.35  # low: variations stay close to the image they come from
MAX_UPSCALED_SIDE = 8192
UPSCALE_TIMEOUT = 600


class VariationForm(FlaskForm):
    """Fields of ``POST /images/<id>/variations``."""

    num_images = IntegerField("Images", default=2, validators=[
        InputRequired("Choose how many images."), NumberRange(1, 4, "Choose 1 to 4 images.")])
    strength = FloatField("Strength", default=VARIATION_STRENGTH, validators=[
        InputRequired("Choose a strength."),
        NumberRange(MIN_STRENGTH, MAX_STRENGTH, f"Use a strength from {MIN_STRENGTH} to {MAX_STRENGTH:g}.")])


class UpscaleForm(FlaskForm):
    """Fields of ``POST /images/<id>/upscale``."""

    factor = IntegerField("Factor", validators=[InputRequired("Choose ×2 or ×4."),
                                                NumberRange(min(FACTORS), max(FACTORS), "Choose ×2 or ×4.")])
    upscaler = SelectField("Upscaler", validate_choice=False)


def upscaler_menu() -> list[dict]:
    """Every catalog upscaler with its label and, when it cannot be used here, the reason."""
    try:
        entries = load_upscalers(current_app.config["EASEL_CATALOG"])
    except ModelError as exc:
        return [{"name": "", "label": "Upscalers", "unavailable": str(exc)}]
    return [{"name": name, "label": entry.label, "scale": entry.scale, "unavailable": entry.unavailable_reason()}
            for name, entry in entries.items()]


def model_size(generation: Generation) -> tuple[int, int]:
    """The size the model made (an upscale's generation records the enlarged size)."""
    factor = generation.upscale_factor or 1
    return generation.width // factor, generation.height // factor


def inherited(image: Image) -> dict:
    """The prompt and settings of the image's generation, for a new generation from it."""
    source = image.generation
    return {"prompt": source.prompt, "negative_prompt": source.negative_prompt, "style": source.style,
            "model": source.model, "steps": source.steps, "guidance": source.guidance,
            "parent_image_id": image.id, "init_image_key": image.storage_key}


def _entry(name: str) -> ModelEntry | None:
    return services.catalog().get(name)


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
    entry = _entry(image.generation.model)
    if entry is None or entry.unavailable_reason():
        return _back(image, f"The model {image.generation.model} is not available on this site now.")
    width, height = model_size(image.generation)
    params = {**inherited(image), "source": Source.VARIATION, "width": width, "height": height, "seed": None,
              "num_images": min(form.num_images.data, entry.max_images), "strength": form.strength.data,
              "resize_mode": "crop"}
    # at least one denoising step, within the model's limit
    params["steps"] = min(entry.max_steps, max(params["steps"], math.ceil(1 / form.strength.data)))
    try:
        generation = create_generation(current_user, params, job_timeout=entry.job_timeout)
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
    choice = menu.get(form.upscaler.data or "")
    if choice is None or choice["unavailable"]:
        return _back(image, choice["unavailable"] if choice else "Choose one of the listed upscalers.")
    width, height = image.width * form.factor.data, image.height * form.factor.data
    if max(width, height) > MAX_UPSCALED_SIDE:
        return _back(image, f"That would be {width}×{height}; the largest side this site makes is {MAX_UPSCALED_SIDE}.")
    source = image.generation
    params = {**inherited(image), "source": Source.UPSCALE, "width": width, "height": height,
              "seed": source.seed + image.index, "num_images": 1, "upscale_factor": form.factor.data,
              "upscaler": form.upscaler.data}
    entry = _entry(source.model)
    try:
        generation = create_generation(current_user, params,
                                       job_timeout=max(entry.job_timeout if entry else 0, UPSCALE_TIMEOUT))
    except GenerationRefused as exc:
        return _back(image, str(exc))
    return redirect(url_for("studio.generation_page", generation_id=generation.id), 303)
