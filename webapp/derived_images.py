"""New images from an image: variations (its prompt and settings, new seeds, a low strength), upscales, and the
hires fix's second pass of an image already made.

One function each for the image page and the API; each is an ordinary generation (limits, quota, blocked
terms, the same queue and progress page) with the source image recorded as its parent.
"""
from __future__ import annotations

import math

from flask import current_app
from PIL import Image as PILImage

from models.catalog import ModelEntry, ModelError
from models.upscalers import FACTORS, load_upscalers

from . import services
from .editing import DEFAULT_HR_SCALE, DEFAULT_HR_STRENGTH, HiresRejected, hires_request
from .generation_rules import chosen_loras, loras_problem, steps_range
from .generations import GenerationRefused, create_generation
from .lifecycle import UPSCALE_TIMEOUT
from .prompting.picks import prompt_of
from .tables import Generation, Image, Source, User, denoising_steps

VARIATION_STRENGTH = 0.35  # low: variations stay close to the image they come from
MAX_UPSCALED_SIDE = 8192


class DerivedRefused(GenerationRefused):
    """The request cannot be made here: the model or upscaler is not available, or a choice is wrong."""


def model_size(generation: Generation) -> tuple[int, int]:
    """The size the model made (an upscale's generation records the enlarged size)."""
    factor = generation.upscale_factor or 1
    return generation.width // factor, generation.height // factor


def inherited(image: Image) -> dict:
    """The prompt and settings of the image's generation, for a new generation from it."""
    source = image.generation
    return {"prompt": source.prompt, "negative_prompt": source.negative_prompt, "style": source.style,
            "model": source.model, "steps": source.steps, "guidance": source.guidance,
            "scheduler": source.scheduler,  # the sampler it chose (None: the model's own), kept
            "parent_image_id": image.id, "init_image_key": image.storage_key}


def variation_loras(generation: Generation, entry: ModelEntry) -> list | None:
    """The generation's LoRAs (names and scales) for a variation of its image, all still usable with its model.

    Raises:
        DerivedRefused: one of them is no longer listed, available or made for the model (409): a variation
            without it would be a different picture, so none is made.
    """
    picks = [(name, scale) for name, scale in generation.loras or []]
    loras = services.loras()
    gone = next((name for name, _ in picks if name not in loras), None)
    problem = f"{gone} is no longer offered on this site." if gone else loras_problem(loras, entry, picks)
    if problem:
        raise DerivedRefused(f"A variation uses the same LoRAs as its image, and one of them cannot be used "
                             f"now: {problem}", status=409)
    return [[name, scale] for name, scale in picks] or None


def start_variation(user: User, image: Image, num_images: int, strength: float) -> Generation:
    """Enqueue ``num_images`` variations of ``image`` (the caller checked the person may see it).

    The model and LoRAs (names and scales) are the image's own.

    Raises:
        DerivedRefused: the image's model or one of its LoRAs is not available here (409); the strength
            changes nothing within the steps the model and LoRAs allow (400).
        GenerationRefused: over a limit, banned, or the queue is down.
    """
    entry = services.catalog().get(image.generation.model)
    if entry is None or entry.unavailable_reason():
        raise DerivedRefused(f"The model {image.generation.model} is not available on this site now.", status=409)
    loras = variation_loras(image.generation, entry)
    width, height = model_size(image.generation)
    params = {**inherited(image), "source": Source.VARIATION, "width": width, "height": height, "seed": None,
              "num_images": min(num_images, entry.max_images), "strength": strength, "resize_mode": "crop",
              "loras": loras}
    # at least one denoising step, within the model's limit (narrowed by its LoRAs': an LCM-LoRA's 8)
    _, high, label = steps_range(entry, chosen_loras(services.loras(), loras or []))
    params["steps"] = min(high, max(params["steps"], math.ceil(1 / strength)))
    if denoising_steps(params["steps"], strength) < 1:
        raise DerivedRefused(f"At strength {strength:g} a variation changes nothing in the {high} steps "
                             f"{label} allow; use a strength of at least {math.ceil(100 / high) / 100:g}.",
                             status=400)
    return create_generation(user, params, job_timeout=entry.job_timeout)


def upscaler_menu() -> list[dict]:
    """Every catalog upscaler with its label and, when it cannot be used here, the reason."""
    try:
        entries = load_upscalers(current_app.config["EASEL_CATALOG"])
    except ModelError as exc:
        return [{"name": "", "label": "Upscalers", "unavailable": str(exc)}]
    return [{"name": name, "label": entry.label, "scale": entry.scale, "unavailable": entry.unavailable_reason()}
            for name, entry in entries.items()]


def _check_upscale(factor: int, upscaler: str, width: int, height: int) -> None:
    """Refuse a factor other than 2 or 4, an unknown or unavailable upscaler, or too large a result."""
    if factor not in FACTORS:
        raise DerivedRefused("Choose ×2 or ×4.", status=400)
    choice = {item["name"]: item for item in upscaler_menu()}.get(upscaler)
    if choice is None or choice["unavailable"]:
        raise DerivedRefused(choice["unavailable"] if choice else "Choose one of the listed upscalers.", status=400)
    if max(width, height) > MAX_UPSCALED_SIDE:
        raise DerivedRefused(f"That would be {width}×{height}; the largest side this site makes is "
                             f"{MAX_UPSCALED_SIDE}.", status=400)


def start_upscale(user: User, image: Image, factor: int, upscaler: str) -> Generation:
    """Enqueue ``image`` enlarged ``factor`` times by ``upscaler`` (the caller checked the person may see it).

    Raises:
        DerivedRefused: a factor other than 2 or 4, an unknown or unavailable upscaler, or too large a result (400).
        GenerationRefused: over a limit, banned, or the queue is down.
    """
    width, height = image.width * factor, image.height * factor
    _check_upscale(factor, upscaler, width, height)
    source = image.generation
    params = {**inherited(image), "source": Source.UPSCALE, "width": width, "height": height,
              "seed": source.seed + image.index, "num_images": 1, "upscale_factor": factor, "upscaler": upscaler,
              "scheduler": None}  # the upscaler runs, no sampler
    entry = services.catalog().get(source.model)
    return create_generation(user, params, job_timeout=max(entry.job_timeout if entry else 0, UPSCALE_TIMEOUT))


def upscale_upload(user: User, picture: PILImage.Image, factor: int, upscaler: str, model: str) -> Generation:
    """Enqueue an uploaded picture enlarged ``factor`` times (the upload is kept like any other).

    ``model`` only fills the row's model column: an upscale runs no diffusion model.

    Raises:
        DerivedRefused, GenerationRefused: as ``start_upscale``.
    """
    width, height = picture.width * factor, picture.height * factor
    _check_upscale(factor, upscaler, width, height)
    params = {"source": Source.UPSCALE, "prompt": "", "negative_prompt": "", "style": "none", "model": model,
              "steps": 1, "guidance": 0.0, "seed": 0, "width": width, "height": height, "num_images": 1,
              "upscale_factor": factor, "upscaler": upscaler}
    return create_generation(user, params, job_timeout=UPSCALE_TIMEOUT, upload=picture)


def start_hires(user: User, image: Image, scale: float = DEFAULT_HR_SCALE,
                strength: float = DEFAULT_HR_STRENGTH) -> Generation:
    """Enqueue the hires fix's second pass of ``image`` (the caller checked the person may see it): the image
    enlarged ``scale`` times (Lanczos) as the starting image, then image-to-image at the larger size at
    ``strength`` with its own prompt, seed, model and LoRAs. The image is the new generation's parent ("hires of").

    Raises:
        DerivedRefused: the model or a LoRA is not available (409); the model does not make the larger size, or
            the scale or strength is out of range (400).
        GenerationRefused: over a limit, banned, or the queue is down.
    """
    source = image.generation
    entry = services.catalog().get(source.model)
    if entry is None or entry.unavailable_reason():
        raise DerivedRefused(f"The model {source.model} is not available on this site now.", status=409)
    loras = variation_loras(source, entry)
    try:
        (width, height), _ = hires_request(entry.sizes, image.width, image.height, scale, None, strength)
    except HiresRejected as exc:
        raise DerivedRefused(str(exc), status=400) from None
    params = {**inherited(image), "prompt": prompt_of(source, image.index), "source": Source.HIRES,
              "width": width, "height": height, "seed": source.seed + image.index, "num_images": 1,
              "strength": strength, "resize_mode": "crop", "loras": loras}
    _, high, _ = steps_range(entry, chosen_loras(services.loras(), loras or []))
    params["steps"] = min(high, max(params["steps"], math.ceil(1 / strength)))  # at least one denoising step
    return create_generation(user, params, job_timeout=entry.job_timeout)
