"""The studio's control image: the form's fields as checked controls, what the page's script needs to know,
and the fields that bring a generation's control back ("Reuse settings", remix)."""
from __future__ import annotations

import io

from PIL import Image as PILImage

from models.catalog import ModelEntry

from .. import services
from ..access import viewable_generation_or_404
from ..controls import ControlProblem, ControlUnit, PreparedControl, catalog, prepare
from .forms import GenerationForm


def stored_control(generation_id: str) -> PILImage.Image:
    """The first control image a generation the person may see was made with (404 otherwise)."""
    generation = viewable_generation_or_404(generation_id)
    if not generation.controls:
        raise ControlProblem("That generation had no control image.", "control_image")
    try:
        data = services.storage().open(generation.controls[0]["image_key"])
    except FileNotFoundError:
        raise ControlProblem("That generation's control image is no longer stored.", "control_image") from None
    with PILImage.open(io.BytesIO(data)) as picture:
        return picture.convert("RGB")


def studio_controls(form: GenerationForm, image_to_image: bool) -> list[PreparedControl]:
    """The form's control image, checked and preprocessed; empty when none was given.

    A reused control (``control_from``) is already preprocessed, so it is taken as it is unless a preprocessor
    is chosen.

    Raises:
        ControlProblem: naming the field to show the message beside.
    """
    picture, preprocessor = form.control_picture, form.control_preprocessor.data or None
    if picture is None and form.control_from.data:
        picture, preprocessor = stored_control(form.control_from.data), preprocessor or "none"
    if picture is None:
        return []
    unit = ControlUnit(picture, form.control.data or None, form.control_scale.data, preprocessor)
    return prepare([unit], form.entry, form.width.data, form.height.data, image_to_image)


def control_info(models: dict[str, ModelEntry]) -> dict:
    """The usable control models with the models each fits, their preprocessor and default scale (for the script)."""
    return {name: {"label": c.label, "preprocessor": c.preprocessor, "scale": c.default_scale, "type": c.type,
                   "models": [m for m, entry in models.items() if c.fits(entry)]}
            for name, c in catalog().items() if c.unavailable_reason() is None}
