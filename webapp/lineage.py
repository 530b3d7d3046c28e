"""Where an image came from and what was made from it, as far as the viewer may see."""
from __future__ import annotations

from sqlalchemy import false, or_, select

from .extensions import db
from .tables import Generation, Image, Source, User

SOURCE_LABELS = {
    Source.TEXT: "text",
    Source.UPLOAD: "an uploaded image",
    Source.IMAGE: "image-to-image from",
    Source.VARIATION: "a variation of",
    Source.UPSCALE: "an upscale of",
    Source.INPAINT: "inpainted from",
    Source.OUTPAINT: "outpainted from",
    Source.HIRES: "hires of",
}


def parent_of(image: Image) -> Image | None:
    """The image this one was made from (image-to-image, variation, upscale, in- or outpainting, hires fix), or
    None."""
    parent_id = image.generation.parent_image_id
    return db.session.get(Image, parent_id) if parent_id else None


def visible_to(viewer: User | None):
    """The SQL condition for images ``viewer`` may see: own, or public and not hidden; admins see all."""
    if viewer is None or not getattr(viewer, "is_authenticated", False):
        return false()
    if viewer.is_admin:
        return Image.id.isnot(None)
    return or_(Image.user_id == viewer.id, Image.is_public.is_(True) & Image.is_hidden.is_(False)
               & Image.is_held.is_(False))


def children_of(image: Image, viewer: User | None, limit: int = 48) -> list[Image]:
    """Images made from this one that ``viewer`` may see, oldest first."""
    query = (select(Image).join(Generation, Image.generation_id == Generation.id)
             .where(Generation.parent_image_id == image.id, visible_to(viewer))
             .order_by(Image.created_at, Image.index).limit(limit))
    return list(db.session.scalars(query))


def chain_from(generation: Generation, depth: int = 16) -> list[dict]:
    """The ancestry for PNG text chunks: [{image_id, source}] from the generation's parent upwards."""
    chain: list[dict] = []
    seen: set[str] = set()
    while generation is not None and generation.parent_image_id and len(chain) < depth:
        chain.append({"image_id": generation.parent_image_id, "source": generation.source})
        parent = db.session.get(Image, generation.parent_image_id)
        if parent is None or parent.id in seen:
            break
        seen.add(parent.id)
        generation = parent.generation
    if generation is not None and generation.source == Source.UPLOAD and generation.upload_id:
        chain.append({"upload_id": generation.upload_id, "source": Source.UPLOAD})
    return chain
