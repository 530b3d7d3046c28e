"""Control images as the APIs send them: ``/api/v1``'s fields (base64 in JSON, a file in multipart) and
AUTOMATIC1111's ControlNet extension units (``alwayson_scripts.controlnet.args``), all as ``ControlUnit``s."""
from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from ..controls import ControlUnit, preprocessor_problem
from .problems import ApiError
from .submit import decode_start_image

CONTROL_SETTINGS = ("control", "control_scale", "control_preprocessor")
# What the ControlNet extension's units may hold that Easel honours, or ignores: the preprocessors' resolution
# and thresholds (Easel's built-in preprocessors have their own), how to resize (Easel crops to fill), VRAM and
# hires-fix hints.
A1111_UNIT_KEYS = {"image", "input_image", "module", "model", "weight", "enabled", "processor_res", "threshold_a",
                   "threshold_b", "resize_mode", "low_vram", "lowvram", "hr_option", "save_detected_map"}
# Keys the webuiapi client and the extension send with their defaults; another value asks for a feature Easel
# does not have, and is refused by name.
A1111_UNIT_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "mask": (None, ""), "mask_image": (None, ""), "guidance_start": (0, 0.0), "guidance_end": (1, 1.0),
    "control_mode": (0, "Balanced", "balanced"), "pixel_perfect": (False,), "guessmode": (None, False, 0),
    "effective_region_mask": (None,), "inpaint_crop_input_image": (False,),
}


def base64_image(text: str, field: str) -> bytes:
    """The bytes of a base64 image (optionally a ``data:`` URL); 400 naming ``field`` otherwise."""
    payload = text.split(",", 1)[1] if text.startswith("data:") and "," in text else text
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{field} is not valid base64.", errors={field: "Not valid base64."}) from None


def v1_controls(params: dict, picture: bytes | None) -> list[ControlUnit]:
    """The control unit of an ``/api/v1`` request (its settings popped from ``params``); empty without an image."""
    name, scale, preprocessor = (params.pop(key, None) for key in CONTROL_SETTINGS)
    if picture is None:
        given = [key for key, value in zip(CONTROL_SETTINGS, (name, scale, preprocessor), strict=True) if value]
        if given:
            raise ApiError(400, f"{', '.join(given)} need a control_image.",
                           errors={key: "Needs a control_image." for key in given})
        return []
    return [ControlUnit(decode_start_image(picture, "control_image"), name, scale, preprocessor)]


def _number(unit: Mapping, key: str, where: str) -> float | None:
    value = unit.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(422, f"{where}.{key} must be a number.", errors={f"{where}.{key}": "Must be a number."})
    return float(value)


def a1111_controls(body: Mapping) -> list[ControlUnit]:
    """The units of ``alwayson_scripts.controlnet.args`` (disabled ones skipped), or 422 naming what is not supported.

    A unit's ``model`` may be a catalog name or, as the extension lists them, ``name [hash]``; ``module`` is
    ``none``, ``canny`` or ``scribble``; ``weight`` is the scale.
    """
    scripts = body.get("alwayson_scripts") or {}
    if not isinstance(scripts, Mapping):
        raise ApiError(422, "alwayson_scripts must be an object.", errors={"alwayson_scripts": "Must be an object."})
    script = next((value for key, value in scripts.items() if str(key).lower() == "controlnet"), None)
    if script is None:
        return []
    args = script.get("args") if isinstance(script, Mapping) else None
    if not isinstance(args, list):
        raise ApiError(422, "alwayson_scripts.controlnet.args must be a list of units.",
                       errors={"alwayson_scripts.controlnet.args": "Must be a list of units."})
    units = []
    for index, unit in enumerate(args):
        where = f"alwayson_scripts.controlnet.args[{index}]"
        if not isinstance(unit, Mapping):
            raise ApiError(422, f"{where} must be an object.", errors={where: "Must be an object."})
        if unit.get("enabled", True) is False:
            continue
        unsupported = sorted(key for key, value in unit.items() if key not in A1111_UNIT_KEYS and not (
            key in A1111_UNIT_DEFAULTS and value in A1111_UNIT_DEFAULTS[key]))
        if unsupported:
            raise ApiError(422, f"{where}: Easel does not support {', '.join(unsupported)} in a ControlNet unit; "
                                f"send image, module, model and weight only (docs/controls.md).",
                           errors={f"{where}.{key}": "Not supported." for key in unsupported})
        image = unit.get("image") or unit.get("input_image")
        if isinstance(image, Mapping):  # the extension also takes {"image": base64, "mask": ...}
            image = image.get("image")
        if not isinstance(image, str) or not image:
            raise ApiError(422, f"{where} needs an image (base64).", errors={f"{where}.image": "Needs a base64 image."})
        module = str(unit.get("module") or "none").lower()
        if problem := preprocessor_problem(module):
            raise ApiError(422, f"{where}: module {module!r}: {problem}", errors={f"{where}.module": "Not supported."})
        model = unit.get("model")
        name = str(model).split(" [", 1)[0].strip() if model not in (None, "", "None", "none") else None
        picture = decode_start_image(base64_image(image, f"{where}.image"), f"{where}.image")
        units.append(ControlUnit(picture, name, _number(unit, "weight", where), module))
    return units
