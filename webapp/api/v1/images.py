"""``/api/v1/images``: list mine (search by prompt words), get one, download, star/publish, variations, upscale,
hires fix, outpaint, delete."""
from __future__ import annotations

import uuid

from flask_login import current_user
from flask_smorest import Blueprint
from sqlalchemy import select

from ...access import owned_image_or_404, viewable_image_or_404
from ...derived_images import VARIATION_STRENGTH, start_hires, start_upscale, start_variation
from ...extensions import db
from ...gallery.changes import PublishRefused, set_public, set_starred
from ...image_files import delete_image, download_name, serve_file
from ...outpainting import SIDES, start_outpaint
from ...tables import Generation, Image
from ..gate import Scheme, protect
from ..problems import ApiError
from ..submit import refusals_as_api_errors
from .parsing import arguments_400
from .schemas import (
    GenerationSchema,
    HiresCreateSchema,
    ImageListQuerySchema,
    ImagePageSchema,
    ImageSchema,
    ImageUpdateSchema,
    OutpaintCreateSchema,
    UpscaleCreateSchema,
    VariationCreateSchema,
)
from .serialize import created, image_dict, page_dict

blp = Blueprint("api_images", __name__, url_prefix="/api/v1/images", description="Images")
protect(blp, Scheme.BEARER, allow_session=True)


@blp.get("")
@arguments_400(blp, ImageListQuerySchema, location="query")
@blp.response(200, ImagePageSchema)
def list_mine(args: dict):
    """My images, newest first; ``q`` keeps those whose prompt holds every word."""
    query = select(Image).join(Generation, Image.generation_id == Generation.id).where(Image.user_id == current_user.id)
    for word in args["q"].split()[:10]:
        query = query.where(Generation.prompt.icontains(word, autoescape=True))
    if args["starred"] is not None:
        query = query.where(Image.is_starred.is_(args["starred"]))
    page = db.paginate(query.order_by(Image.created_at.desc(), Image.index, Image.id), page=args["page"],
                       per_page=args["per_page"], error_out=False)
    return page_dict(page, [image_dict(image) for image in page.items])


@blp.get("/<uuid:image_id>")
@blp.response(200, ImageSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get(image_id: uuid.UUID):
    """An image I may see (mine, or a public one)."""
    return image_dict(viewable_image_or_404(str(image_id)))


@blp.get("/<uuid:image_id>/file")
@blp.doc(responses={200: {"description": "the PNG, its parameters in text chunks",
                          "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}})
@blp.alt_response(404, response="NOT_FOUND")
def image_file(image_id: uuid.UUID):
    """Download the PNG."""
    image = viewable_image_or_404(str(image_id))
    return serve_file(image.storage_key, "image/png", download_name(image, image.generation))


@blp.patch("/<uuid:image_id>")
@arguments_400(blp, ImageUpdateSchema)
@blp.response(200, ImageSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def update(changes: dict, image_id: uuid.UUID):
    """Star (kept from cleanup) and/or publish to Explore."""
    image = owned_image_or_404(str(image_id))
    if "starred" in changes:
        set_starred(image, changes["starred"])
    if "public" in changes:
        try:
            set_public(image, changes["public"])
        except PublishRefused as exc:
            raise ApiError(409, str(exc), errors={"public": str(exc)}) from None
    return image_dict(image)


@blp.post("/<uuid:image_id>/variations")
@arguments_400(blp, VariationCreateSchema)
@blp.response(201, GenerationSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def variations(args: dict, image_id: uuid.UUID):
    """New images from an image I may see, at a low strength (an ordinary generation, its parent recorded)."""
    image = viewable_image_or_404(str(image_id))
    strength = VARIATION_STRENGTH if args["strength"] is None else args["strength"]
    with refusals_as_api_errors({"strength"}):
        generation = start_variation(current_user._get_current_object(), image, args["num_images"], strength)
    return created(generation)


@blp.post("/<uuid:image_id>/upscale")
@arguments_400(blp, UpscaleCreateSchema)
@blp.response(201, GenerationSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def upscale(args: dict, image_id: uuid.UUID):
    """A new image, ``factor`` times larger, from an image I may see (an ordinary generation, its parent recorded)."""
    image = viewable_image_or_404(str(image_id))
    with refusals_as_api_errors({"factor", "upscaler"}):
        generation = start_upscale(current_user._get_current_object(), image, args["factor"], args["upscaler"])
    return created(generation)


@blp.post("/<uuid:image_id>/hires")
@arguments_400(blp, HiresCreateSchema)
@blp.response(201, GenerationSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def hires(args: dict, image_id: uuid.UUID):
    """The hires fix of an image I may see: enlarged ``scale`` times and refined at the larger size at ``strength``
    (an ordinary generation; its lineage reads "hires of" the image)."""
    image = viewable_image_or_404(str(image_id))
    with refusals_as_api_errors({"scale", "strength"}):
        generation = start_hires(current_user._get_current_object(), image, args["scale"], args["strength"])
    return created(generation)


@blp.post("/<uuid:image_id>/outpaint")
@arguments_400(blp, OutpaintCreateSchema)
@blp.response(201, GenerationSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def outpaint(args: dict, image_id: uuid.UUID):
    """The picture continued beyond the chosen sides (an ordinary generation, its parent recorded)."""
    image = viewable_image_or_404(str(image_id))
    with refusals_as_api_errors(SIDES):
        generation = start_outpaint(current_user._get_current_object(), image, tuple(args[side] for side in SIDES))
    return created(generation)


@blp.delete("/<uuid:image_id>")
@blp.response(204)
@blp.alt_response(404, response="NOT_FOUND")
def delete(image_id: uuid.UUID):
    """Delete the image and its files."""
    delete_image(owned_image_or_404(str(image_id)))
    return ""
