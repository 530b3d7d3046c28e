"""``/api/v1/generations``: create, list mine, get one, cancel, the live preview."""
from __future__ import annotations

import uuid

from flask import Response
from flask_login import current_user
from redis.exceptions import RedisError
from sqlalchemy import select

from ... import progress, services
from ...access import owned_generation_or_404, viewable_image_or_404
from ...editing import MaskInput
from ...extensions import db
from ...generations import cancel_generation
from ...tables import Generation
from ..control_input import base64_image, v1_controls
from ..gate import Scheme, protect
from ..problems import ApiError
from ..submit import decode_mask_input, decode_start_image, submit
from .parsing import ApiBlueprint, arguments_400, multipart_400
from .schemas import (
    GenerationCreateSchema,
    GenerationFromImageSchema,
    GenerationListQuerySchema,
    GenerationPageSchema,
    GenerationSchema,
    GenerationWithControlSchema,
)
from .serialize import created, generation_dict, page_dict

blp = ApiBlueprint("api_generations", __name__, url_prefix="/api/v1/generations", description="Generations")
protect(blp, Scheme.BEARER, allow_session=True)


@blp.post("")
@arguments_400(blp, GenerationCreateSchema)
@blp.response(201, GenerationSchema)
@blp.alt_response(400, response="BAD_REQUEST")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def create(params: dict):
    """Start a text-to-image generation (limits, quota and blocked terms as in the studio); ``hires``: two passes;
    a ``control_image`` (base64) steers it with a control model."""
    hires = params.pop("hires", None)
    raw = params.pop("control_image", None)
    controls = v1_controls(params, base64_image(raw, "control_image") if raw else None)
    generation = submit(params, hires=hires, controls=controls)
    return created(generation)


def mask_input(params: dict) -> MaskInput | None:
    """The multipart body's ``mask`` file with its ``mask_blur`` and ``inpaint_area`` (popped), or None."""
    upload, blur, area = params.pop("mask", None), params.pop("mask_blur", None), params.pop("inpaint_area", None)
    if upload is None or not upload.filename:
        return None
    return MaskInput(decode_mask_input(upload.read(), "mask"), mask_blur=blur, inpaint_area=area)


@blp.post("/from-image")
@multipart_400(blp, GenerationFromImageSchema)
@blp.response(201, GenerationSchema)
@blp.alt_response(400, response="BAD_REQUEST")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def create_from_image(params: dict):
    """Start an image-to-image generation from an uploaded picture (multipart/form-data); with a ``mask``, only
    its white part is repainted (inpainting); a ``control_image`` file steers it."""
    sent, image_id = params.pop("init_image"), params.pop("init_image_id")
    if bool(sent is not None and sent.filename) == bool(image_id):
        message = "Send one starting picture: init_image (a file) or init_image_id (an image's id)."
        raise ApiError(400, message, errors={"init_image": message})
    parent = viewable_image_or_404(image_id) if image_id else None  # another person's private image: 404
    start = None if parent else decode_start_image(sent.read(), "init_image")
    mask = mask_input(params)
    control = params.pop("control_image", None)
    generation = submit(params, start, mask, parent=parent,
                        controls=v1_controls(params, control.read() if control else None))
    return created(generation)


@blp.post("/with-control")
@multipart_400(blp, GenerationWithControlSchema)
@blp.response(201, GenerationSchema)
@blp.alt_response(400, response="BAD_REQUEST")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def create_with_control(params: dict):
    """Start a generation steered by a control image (multipart/form-data), from text or from ``init_image``."""
    init = params.pop("init_image", None)
    start = decode_start_image(init.read(), "init_image") if init else None
    if start is None:
        params.pop("strength", None)
        params.pop("resize_mode", None)
    mask = mask_input(params)  # with the control image: ControlNet inpainting
    controls = v1_controls(params, params.pop("control_image").read())
    generation = submit(params, start, mask, controls=controls)
    return created(generation)


@blp.get("")
@arguments_400(blp, GenerationListQuerySchema, location="query")
@blp.response(200, GenerationPageSchema)
def list_mine(args: dict):
    """My generations, newest first, optionally only those in one status."""
    query = select(Generation).where(Generation.user_id == current_user.id)
    if args["status"]:
        query = query.where(Generation.status == args["status"])
    page = db.paginate(query.order_by(Generation.created_at.desc(), Generation.id), page=args["page"],
                       per_page=args["per_page"], error_out=False)
    return page_dict(page, [generation_dict(g) for g in page.items])


@blp.get("/<uuid:generation_id>")
@blp.response(200, GenerationSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get(generation_id: uuid.UUID):
    """One of my generations: status, queue position, step, total, ETA, preview, images, error."""
    return generation_dict(owned_generation_or_404(str(generation_id)))


@blp.post("/<uuid:generation_id>/cancel")
@blp.response(200, GenerationSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def cancel(generation_id: uuid.UUID):
    """Stop a queued or running generation (a running one stops within a step)."""
    generation = owned_generation_or_404(str(generation_id))
    if generation.is_final:
        raise ApiError(409, f"This generation has already {generation.status}.")
    cancel_generation(generation)
    return generation_dict(generation)


@blp.get("/<uuid:generation_id>/preview")
@blp.doc(responses={200: {"description": "the latest preview, WebP",
                          "content": {"image/webp": {"schema": {"type": "string", "format": "binary"}}}}})
@blp.alt_response(404, response="NOT_FOUND")
def preview(generation_id: uuid.UUID):
    """The latest live preview of a running generation (404 when there is none)."""
    generation = owned_generation_or_404(str(generation_id))
    try:
        data = progress.read_preview(services.redis(), generation.id)
    except RedisError:
        data = None
    if not data:
        raise ApiError(404, "There is no preview for this generation now.")
    return Response(data, mimetype="image/webp", headers={"Cache-Control": "no-store"})
