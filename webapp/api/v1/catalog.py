"""``/api/v1/models`` and ``/api/v1/upscalers``: what this site offers, with limits and availability."""
from __future__ import annotations

from flask import current_app
from flask_smorest import Blueprint

from models.upscalers import load_upscalers

from ... import services
from ..gate import Scheme, protect
from ..submit import default_model_name
from .schemas import ModelSchema, UpscalerSchema

blp = Blueprint("api_models", __name__, url_prefix="/api/v1", description="Models and upscalers")
protect(blp, Scheme.BEARER, allow_session=True)


@blp.get("/models")
@blp.response(200, ModelSchema(many=True))
def list_models():
    """Every listed model; ``available`` is false (with the reason) when its files are not on this machine."""
    default = default_model_name()
    return [{
        "name": e.name, "label": e.label, "description": e.description, "available": e.unavailable_reason() is None,
        "unavailable_reason": e.unavailable_reason(), "default": e.name == default,
        "default_width": e.default_width, "default_height": e.default_height, "default_steps": e.default_steps,
        "default_guidance": e.default_guidance, "sizes": [list(s) for s in e.sizes], "min_steps": e.min_steps,
        "max_steps": e.max_steps, "max_guidance": e.max_guidance, "max_images": e.max_images,
    } for e in services.catalog().values()]


@blp.get("/upscalers")
@blp.response(200, UpscalerSchema(many=True))
def list_upscalers():
    """The catalog's upscalers (used by the image page's upscale); ``available`` is false, with the reason,
    when the weights are not on this machine."""
    return [{"name": e.name, "label": e.label, "scale": e.scale, "description": e.description,
             "available": e.unavailable_reason() is None, "unavailable_reason": e.unavailable_reason()}
            for e in load_upscalers(current_app.config["EASEL_CATALOG"]).values()]
