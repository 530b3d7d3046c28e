"""Variations: new images from an image, with its prompt and settings, new seeds, at a (low) strength.

One function for the image page and the API; an ordinary generation (limits, quota, blocked terms).
"""
from __future__ import annotations

import math

from . import services
from .generations import GenerationRefused, create_generation
from .tables import Generation, Image, Source, User

VARIATION_STRENGTH = 0.35  # low: variations stay close to the image they come from


class VariationRefused(GenerationRefused):
    """The image's model cannot run here now."""


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


def start_variation(user: User, image: Image, num_images: int, strength: float) -> Generation:
    """Enqueue ``num_images`` variations of ``image`` (the caller checked the person may see it).

    Raises:
        VariationRefused: the image's model is not available here (409).
        GenerationRefused: over a limit, banned, or the queue is down.
    """
    entry = services.catalog().get(image.generation.model)
    if entry is None or entry.unavailable_reason():
        raise VariationRefused(f"The model {image.generation.model} is not available on this site now.", status=409)
    width, height = model_size(image.generation)
    params = {**inherited(image), "source": Source.VARIATION, "width": width, "height": height, "seed": None,
              "num_images": min(num_images, entry.max_images), "strength": strength, "resize_mode": "crop"}
    # at least one denoising step, within the model's limit
    params["steps"] = min(entry.max_steps, max(params["steps"], math.ceil(1 / strength)))
    return create_generation(user, params, job_timeout=entry.job_timeout)
