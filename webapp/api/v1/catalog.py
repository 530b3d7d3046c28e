"""``/api/v1/models``, ``/api/v1/loras`` and ``/api/v1/upscalers``: what this site offers, with limits and
availability."""
from __future__ import annotations

from flask import current_app
from flask_login import current_user
from flask_smorest import Blueprint

from models.upscalers import load_upscalers

from ... import services
from ...controls import listing as control_listing
from ...generation_rules import shown_reason
from ...groups.limits import visible
from ...services import default_model as default_model_name
from ..gate import Scheme, protect
from .schemas import ControlSchema, LoraSchema, ModelSchema, UpscalerSchema

blp = Blueprint("api_models", __name__, url_prefix="/api/v1", description="Models, LoRAs and upscalers")
protect(blp, Scheme.BEARER, allow_session=True)


def availability(entry) -> dict:
    """``available`` and ``unavailable_reason`` from one look at the entry's files (the reason as shown to this person)."""
    reason = shown_reason(entry)
    return {"available": reason is None, "unavailable_reason": reason}


@blp.get("/models")
@blp.response(200, ModelSchema(many=True))
def list_models():
    """Every listed model the person's groups allow; ``available`` is false (with the reason) when its files are not
    on this machine."""
    default = default_model_name()
    return [{
        "name": e.name, "label": e.label, "description": e.description, **availability(e), "default": e.name == default,
        "default_width": e.default_width, "default_height": e.default_height, "default_steps": e.default_steps,
        "default_guidance": e.default_guidance, "sizes": [list(s) for s in e.sizes], "min_steps": e.min_steps,
        "max_steps": e.max_steps, "max_guidance": e.max_guidance, "max_images": e.max_images,
    } for e in visible(current_user.id, services.catalog()).values()]


@blp.get("/loras")
@blp.response(200, LoraSchema(many=True))
def list_loras():
    """The catalog's LoRAs the person's groups allow (``loras`` of a generation names up to three), the models each
    fits, and its defaults;
    ``available`` is false, with the reason, when its file is not on this machine."""
    models = visible(current_user.id, services.catalog())
    return [{
        "name": lora.name, "label": lora.label, "description": lora.description, "base_kinds": list(lora.base_kinds),
        "models": [name for name, entry in models.items() if lora.fits(entry)], "default_scale": lora.default_scale,
        "trigger_words": list(lora.trigger_words), "default_steps": lora.default_steps, "min_steps": lora.min_steps,
        "max_steps": lora.max_steps, "default_guidance": lora.default_guidance,
        **availability(lora),
    } for lora in visible(current_user.id, services.loras(), "loras").values()]


@blp.get("/controls")
@blp.response(200, ControlSchema(many=True))
def list_controls():
    """The catalog's control models (ControlNet, T2I-Adapter): the models each fits, its preprocessor and default
    scale; ``available`` is false, with the reason, when its folder is not on this machine."""
    return control_listing()


@blp.get("/upscalers")
@blp.response(200, UpscalerSchema(many=True))
def list_upscalers():
    """The catalog's upscalers the person's groups allow (used by the image page's upscale); ``available`` is
    false, with the reason,
    when the weights are not on this machine."""
    return [{"name": e.name, "label": e.label, "scale": e.scale, "description": e.description,
             **availability(e)}
            for e in visible(current_user.id, load_upscalers(current_app.config["EASEL_CATALOG"]), "upscalers").values()]
