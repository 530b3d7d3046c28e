"""The upscale job's work: enlarge the parent image with a catalog upscaler, on the generation queue."""
from __future__ import annotations

import io

from flask import current_app
from PIL import Image as PILImage

from models import loader, upscalers
from webapp import progress, services
from webapp.tables import Generation


def make_upscaled(generation: Generation, gone: type[Exception], canceled: type[Exception]) -> list[PILImage.Image]:
    """The parent image enlarged ``upscale_factor`` times (one step of progress).

    Raises:
        gone: the parent image's file is no longer stored.
        canceled: the person canceled before it finished.
        ModelError: the upscaler is unknown or unavailable on this worker.
    """
    redis = services.redis()
    progress.start(redis, generation.id, 1)
    try:
        data = services.storage().open(generation.init_image_key)
    except FileNotFoundError as exc:
        raise gone() from exc
    with PILImage.open(io.BytesIO(data)) as parent:
        parent = parent.convert("RGB")
    config = current_app.config
    device = loader.pick_device(config["EASEL_DEVICE"])
    result = upscalers.upscale(parent, generation.upscaler, generation.upscale_factor,
                               catalog_path=config["EASEL_CATALOG"], device=device)
    if progress.record_step(redis, generation.id, 1):
        raise canceled()
    return [result]
