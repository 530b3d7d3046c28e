"""Rows as ``/api/v1`` shows them (the schemas in ``schemas.py`` describe these dicts)."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import url_for

from ...generations import generation_state
from ...prompting.picks import prompt_of
from ...tables import Generation, Image


def utc(moment: datetime) -> datetime:
    """Stored times are naive UTC; the API says so (RFC 3339 with an offset)."""
    return moment.replace(tzinfo=UTC)


def image_dict(image: Image) -> dict:
    """One image, with its API download link."""
    generation = image.generation
    return {
        "id": image.id, "generation_id": image.generation_id, "index": image.index, "width": image.width,
        "height": image.height, "prompt": prompt_of(generation, image.index), "seed": generation.seed + image.index,
        "starred": image.is_starred, "public": image.is_public, "hidden": image.is_hidden,
        "held": image.is_held, "held_reason": image.held_reason,
        "created_at": utc(image.created_at), "download_url": url_for("api_images.image_file", image_id=image.id),
    }


def generation_dict(generation: Generation) -> dict:
    """A generation's parameters and live state; the preview comes from this API too."""
    state = generation_state(generation)
    if state["preview_url"]:
        state["preview_url"] = url_for("api_generations.preview", generation_id=generation.id)
    state["images"] = [image_dict(image) for image in generation.images] if state["images"] else []
    return {
        **state,
        "prompt": generation.prompt, "negative_prompt": generation.negative_prompt, "model": generation.model,
        "width": generation.width, "height": generation.height, "steps": generation.steps,
        "guidance": generation.guidance, "seed": generation.seed, "num_images": generation.num_images,
        "style": generation.style, "scheduler": generation.scheduler, "created_at": utc(generation.created_at),
        "loras": [{"name": name, "scale": scale} for name, scale in generation.loras or []],
    }


def created(generation: Generation) -> tuple[dict, int, dict]:
    """A 201 answer for a new generation: its representation, and its address in ``Location``."""
    return generation_dict(generation), 201, {"Location": url_for("api_generations.get", generation_id=generation.id)}


def page_dict(page, items: list[dict]) -> dict:
    """A Flask-SQLAlchemy page as ``{items, page, per_page, total, pages}``."""
    return {"items": items, "page": page.page, "per_page": page.per_page, "total": page.total or 0,
            "pages": page.pages}
