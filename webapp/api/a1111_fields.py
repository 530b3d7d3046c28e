"""Reading what AUTOMATIC1111 clients send: a JSON body, whole numbers and numbers, base64 images, styles, variants.

Every problem is a 422 naming its field, as A1111's FastAPI answers.
"""
from __future__ import annotations

import base64
import binascii
import math

from flask import request
from flask_login import current_user
from PIL import Image as PILImage

from models.samplers import SAMPLER_ARCHITECTURES, from_a1111, sampler_problem

from .. import services
from ..generation_rules import STYLE_UNKNOWN, chosen_loras
from ..prompting.styles import SEPARATOR, style_exists
from ..prompting.wildcards import VARIANTS
from ..tables import STYLE_MAX
from ..uploads import UploadRejected, read_text_chunks
from .problems import ApiError
from .submit import decode_start_image


def read_body() -> dict:
    """The request's JSON object."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(422, "Send a JSON object (Content-Type: application/json).")
    return body


def whole_number(body: dict, key: str, default: int | None) -> int | None:
    """``body[key]`` as an int (``default`` when absent or null)."""
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value != int(value):
        raise ApiError(422, f"{key} must be a whole number.", errors={key: "Must be a whole number."})
    return int(value)


def number(body: dict, key: str) -> float | None:
    """``body[key]`` as a float (None when absent or null)."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(422, f"{key} must be a number.", errors={key: "Must be a number."})
    return float(value)


def base64_bytes(data: object, field: str) -> bytes:
    """The bytes of a base64 image as clients send it (optionally a ``data:`` URL)."""
    if not isinstance(data, str) or not data:
        raise ApiError(422, f"{field} must be a base64 image.", errors={field: "Must be a base64 image."})
    payload = data.split(",", 1)[1] if data.startswith("data:") else data
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, f"{field} is not valid base64.", errors={field: "Not valid base64."}) from None


def decode_image(data: object, field: str) -> PILImage.Image:
    """A base64 starting image, checked as every upload is (its 400 is answered as a 422 by ``a1111_error``)."""
    return decode_start_image(base64_bytes(data, field), field)


def read_png_text(data: object) -> dict[str, str]:
    """The text chunks of a base64 image (no pixels are decoded)."""
    try:
        return read_text_chunks(base64_bytes(data, "image"))
    except UploadRejected as exc:
        raise ApiError(422, f"image: {exc}", errors={"image": str(exc)}) from None


def a1111_variants(body: dict) -> str | None:
    """Easel's extra field ``variants``: ``all`` makes one image per combination of the prompt's ``{a|b}`` and
    ``__list__`` choices (batch_size and n_iter are then ignored); ``random`` (the default) picks by seed."""
    variants = body.get("variants")
    if variants is not None and variants not in VARIANTS:
        raise ApiError(422, "variants is random (each image picks from its seed) or all (one image per combination).",
                       errors={"variants": "Use random or all."})
    return variants


def a1111_style(body: dict) -> str | None:
    """A1111's ``styles`` list as Easel's ``style``: one name, or several joined by ``,`` and applied in order
    (``webapp.prompting.styles.apply_style``); None: none asked.

    Raises:
        ApiError: 422 naming a style that does not exist for the person, or a list too long to keep.
    """
    styles = body.get("styles")
    if styles in (None, []):
        return None
    if not isinstance(styles, list) or not all(isinstance(name, str) and name for name in styles):
        raise ApiError(422, "styles must be a list of style names.", errors={"styles": "A list of style names."})
    for name in styles:
        if SEPARATOR in name or not style_exists(name, current_user.id):
            raise ApiError(422, f"There is no style “{name[:60]}”. {STYLE_UNKNOWN}",
                           errors={"styles": f"No style “{name[:60]}”."})
    joined = SEPARATOR.join(styles)
    if len(joined) > STYLE_MAX:
        raise ApiError(422, f"Too many styles: their names may take {STYLE_MAX} characters together.",
                       errors={"styles": "Too many styles."})
    return joined
def a1111_sampler(body: dict, model: str, loras: list) -> object:
    """``sampler_name`` (or the older ``sampler_index``) and ``scheduler`` as one of Easel's samplers; None where the
    model or a chosen LoRA runs its own scheduler (webuiapi sends "Euler a" unless told otherwise). A name that is
    none of them is kept, so the rules refuse it naming the ones there are."""
    name = body.get("sampler_name") or body.get("sampler_index")
    if name is None or name == "":
        return None
    entry = services.catalog().get(model)
    own = any(lora.scheduler for lora, _ in chosen_loras(services.loras(), loras))
    if sampler_problem(name) is None and (own or (entry is not None and entry.architecture is not None
                                                   and entry.architecture not in SAMPLER_ARCHITECTURES)):
        return None
    return from_a1111(name, body.get("scheduler"))
