"""Inpainting, outpainting and the hires fix in the worker: the inpainting twin, the mask, the paste-back, two passes.

The twin comes from ``AutoPipelineForInpainting.from_pipe`` on the warm pipeline: the same weights, no second
load. A checkpoint with a plain 4-channel UNet (the bundled model) inpaints by latent blending, as diffusers
does; a 9-channel inpainting UNet (an inpainting checkpoint in the catalog) is used as such, and such a
checkpoint makes text-to-image and image-to-image pictures as an inpainting of the whole picture (A1111's
way; ``jobs.pipelines.generate``). After the call each picture is pasted back onto the
starting image through the blurred mask, narrowed to the mask itself, so every pixel outside the mask keeps
its original value exactly and the seam is softened inside it. The web side is ``webapp/editing.py``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image as PILImage
from PIL import ImageChops, ImageFilter

from models import loader
from webapp import services
from webapp.editing import stored_mask

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

    from webapp.tables import Generation, GenerationEdit

FILL_BLUR = 16  # how far the surrounding colours spread into an area that starts "filled"


class MaskGone(FileNotFoundError):
    """The generation's stored mask is no longer there."""


def inpaint_from(pipe: DiffusionPipeline) -> DiffusionPipeline:
    """An inpainting pipeline sharing the loaded weights (no second load)."""
    from diffusers import AutoPipelineForInpainting

    twin = AutoPipelineForInpainting.from_pipe(pipe)
    twin.set_progress_bar_config(disable=True)
    if loader.precision_of(pipe) == "bf16":
        loader.decode_in_fp32(twin)
    return twin


def inpainting_unet(pipe: DiffusionPipeline) -> bool:
    """Whether the pipeline's UNet is an inpainting checkpoint's: 9 input channels (latents, mask, masked picture)."""
    unet = getattr(pipe, "unet", None)
    return unet is not None and getattr(unet.config, "in_channels", 4) == 9


def whole_mask(size: tuple[int, int]) -> PILImage.Image:
    """A mask over the whole picture: how an inpainting checkpoint makes a picture from words or from a start."""
    return PILImage.new("L", size, 255)


def grey(size: tuple[int, int]) -> PILImage.Image:
    """The neutral start of an inpainting checkpoint's text-to-image (repainted at full strength)."""
    return PILImage.new("RGB", size, (127, 127, 127))


def load_mask(generation: Generation) -> PILImage.Image:
    """The generation's stored mask ("L", 255 = repaint, at its size).

    Raises:
        MaskGone: the file was deleted.
    """
    try:
        data = services.storage().open(generation.edit.mask_key)
    except FileNotFoundError as exc:
        raise MaskGone(generation.edit.mask_key) from exc
    mask = stored_mask(data)
    size = (generation.width, generation.height)
    return mask if mask.size == size else mask.resize(size, PILImage.Resampling.NEAREST)


def soft_mask(mask: PILImage.Image, blur: int) -> PILImage.Image:
    """The paste-back mask: the mask blurred by ``blur`` pixels, but never beyond the mask itself."""
    if blur <= 0:
        return mask
    return ImageChops.darker(mask.filter(ImageFilter.GaussianBlur(blur)), mask)


def filled(start: PILImage.Image, mask: PILImage.Image) -> PILImage.Image:
    """The start with its masked area replaced by the surrounding colours, blurred (A1111's "fill")."""
    pixels = np.asarray(start.convert("RGB"), np.float32)
    inside = np.asarray(mask) > 0
    mean = pixels[~inside].mean(axis=0) if (~inside).any() else pixels.reshape(-1, 3).mean(axis=0)
    flat = pixels.copy()
    flat[inside] = mean
    spread = PILImage.fromarray(flat.round().astype(np.uint8)).filter(ImageFilter.GaussianBlur(FILL_BLUR))
    return PILImage.composite(spread, start.convert("RGB"), mask)


@dataclass
class Edit:
    """One edit generation's inputs to the call, and what it pastes back onto."""

    start: PILImage.Image  # the starting image at the generation's size
    mask: PILImage.Image  # 0/255
    settings: GenerationEdit

    def call_kwargs(self) -> dict[str, Any]:
        """The inpainting pipeline's own arguments: the mask, and the crop of an "only masked" area."""
        kwargs: dict[str, Any] = {"mask_image": self.mask, "width": self.start.width, "height": self.start.height}
        if self.settings.inpaint_area == "masked":
            kwargs["padding_mask_crop"] = self.settings.padding
        return kwargs

    def image(self) -> PILImage.Image:
        """The picture the call starts from: the start, or with the masked area filled."""
        return filled(self.start, self.mask) if self.settings.fill == "fill" else self.start

    def paste_back(self, picture: PILImage.Image) -> PILImage.Image:
        """The call's picture inside the (softened) mask, the original start outside it, pixel for pixel."""
        picture = picture.convert("RGB")
        if picture.size != self.start.size:
            picture = picture.resize(self.start.size, PILImage.Resampling.LANCZOS)
        return PILImage.composite(picture, self.start.convert("RGB"), soft_mask(self.mask, self.settings.mask_blur))


def edit_of(generation: Generation, start: PILImage.Image) -> Edit:
    """The edit of a generation that has one, with its mask read from storage."""
    return Edit(start=start, mask=load_mask(generation), settings=generation.edit)


RESAMPLING = {"lanczos": PILImage.Resampling.LANCZOS, "nearest": PILImage.Resampling.NEAREST,
              "bilinear": PILImage.Resampling.BILINEAR, "bicubic": PILImage.Resampling.BICUBIC}


def enlarge(picture: PILImage.Image, size: tuple[int, int], upscaler: str | None) -> PILImage.Image:
    """A hires fix's first picture at the larger size, by its upscaler (``webapp.editing.HR_UPSCALERS``)."""
    return picture.convert("RGB").resize(size, RESAMPLING.get(upscaler or "lanczos", PILImage.Resampling.LANCZOS))


def base_size(generation: Generation) -> tuple[int, int]:
    """The size a hires fix's first pass makes (the generation records the larger one)."""
    scale = generation.edit.hr_scale
    return round(generation.width / scale), round(generation.height / scale)


class AfterFirstPass:
    """The second pass's ``callback_on_step_end``: its steps counted after the first pass's, one progress bar."""

    def __init__(self, callback: Callable, offset: int):
        self.callback, self.offset = callback, offset

    def __call__(self, pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        return self.callback(pipe, step + self.offset, timestep, callback_kwargs)


def parameters(settings: GenerationEdit) -> dict[str, Any]:
    """What the stored PNG says of the edit (its ``easel`` text chunk)."""
    if settings.kind == "hires":
        return {"hires": {"scale": settings.hr_scale, "upscaler": settings.hr_upscaler,
                          "strength": settings.hr_strength, "steps": settings.hr_steps}}
    found: dict[str, Any] = {"edit": settings.kind, "mask_blur": settings.mask_blur,
                             "inpaint_area": settings.inpaint_area, "inpainting_fill": settings.fill}
    if settings.inpaint_area == "masked":
        found["padding"] = settings.padding
    if settings.grow:
        found["outpaint"] = dict(zip(("left", "right", "top", "bottom"), settings.grow, strict=True))
    return found
