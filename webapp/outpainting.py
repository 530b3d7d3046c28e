"""Outpainting: an image continued beyond its border, as an ordinary generation (``POST /images/<id>/outpaint``).

The picture is placed on a larger canvas (``webapp.editing.outpaint_canvas``) scaled to a size its model
makes, the new border is the mask, and the worker inpaints it like any mask (``jobs/editing.py``). The
canvas is kept as an upload of the person's; the image it came from is the new generation's parent.
"""
from __future__ import annotations

import io

from PIL import Image as PILImage

from . import services
from .derived_images import DerivedRefused, inherited, variation_loras
from .editing import EditRequest, grow_pixels, grow_problem, nearest_size, outpaint_canvas
from .generations import create_generation
from .tables import Generation, Image, Source, User, denoising_steps

OUTPAINT_STRENGTH = 0.85  # the new border starts from the edge colours, blurred: a little of them shows through
SIDES = ("left", "right", "top", "bottom")


def start_outpaint(user: User, image: Image, grow: tuple[float, float, float, float],
                   strength: float = OUTPAINT_STRENGTH) -> Generation:
    """Enqueue ``image`` extended by ``grow`` (left, right, top, bottom: pixels, or below 1 a fraction of the
    picture's width or height); the caller checked the person may see it.

    Raises:
        DerivedRefused: nothing to extend, too much, or the image's model or LoRAs are not available (400/409).
        GenerationRefused: over a limit, banned, or the queue is down.
    """
    size = (image.width, image.height)
    if problem := grow_problem(grow, size):
        raise DerivedRefused(problem, status=400)
    entry = services.catalog().get(image.generation.model)
    if entry is None or entry.unavailable_reason():
        raise DerivedRefused(f"The model {image.generation.model} is not available on this site now.", status=409)
    loras = variation_loras(image.generation, entry)
    pixels = grow_pixels(grow, size)
    width, height = nearest_size(entry.sizes, size[0] + pixels[0] + pixels[1], size[1] + pixels[2] + pixels[3])
    with PILImage.open(io.BytesIO(services.storage().open(image.storage_key))) as stored:
        picture = stored.convert("RGB")
    canvas, mask = outpaint_canvas(picture, pixels, (width, height))
    params = {**inherited(image), "source": Source.OUTPAINT, "width": width, "height": height, "seed": None,
              "num_images": 1, "strength": strength, "resize_mode": "crop", "loras": loras}
    params["steps"] = max(params["steps"], 2)
    if denoising_steps(params["steps"], strength) < 1:
        raise DerivedRefused("The outpainting would change nothing in its steps.", status=400)
    edit = EditRequest(kind=Source.OUTPAINT, mask=mask, mask_blur=4, fill="original", grow=pixels)
    return create_generation(user, params, job_timeout=entry.job_timeout, upload=canvas, edit=edit)
