"""Editing a picture on the web side (no torch): masks for inpainting, and the canvas and mask of an outpainting.

A mask is decoded like every upload (``webapp.uploads``: Pillow, bounded, never trusted), read as
white = repaint, black = keep (or, as OpenAI defines it, fully transparent = repaint), brought to the
generation's size with the same crop or fit as its starting image, and stored with the generation
(``users/<user>/<generation>/mask.png``, a key of ids) so it goes when the generation goes and "Reuse
settings" can bring it back. The worker's half is ``jobs/editing.py``.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

from PIL import Image as PILImage
from PIL import ImageFilter, ImageOps

from .storage import generation_prefix
from .tables import GenerationEdit
from .uploads import UploadRejected, _guarded, _open_checked, encode_png

DEFAULT_MASK_BLUR, MAX_MASK_BLUR = 4, 64
DEFAULT_PADDING, MAX_PADDING = 32, 256
INPAINT_AREAS = ("whole", "masked")  # the whole picture, or only the masked area (cropped with padding, pasted back)
# What the masked area starts from (A1111's inpainting_fill 0, 1, 2; its 3, "latent nothing", is not offered).
FILLS = ("fill", "original", "latent_noise")
A1111_FILLS = {0: "fill", 1: "original", 2: "latent_noise"}
EMPTY_MASK = "The mask marks nothing to repaint: paint (white) over the part of the picture to change."
MASK_BLUR_OUT_OF_RANGE = f"Use a mask blur from 0 to {MAX_MASK_BLUR} pixels."
INPAINT_AREA_UNKNOWN = "Choose whole (the whole picture) or masked (only the masked area)."
MAX_GROW = 4.0  # outpainting adds at most this many times the picture's side on each side
OUTPAINT_BLUR = 8  # how soft the colour that fills the new border starts


class MaskRejected(UploadRejected):
    """The mask cannot be used; the message is shown next to the ``mask`` field."""


@dataclass
class EditRequest:
    """An edit to store with a new generation: the mask at the generation's size and how to use it."""

    kind: str  # "inpaint" or "outpaint" (``Source``), or "hires"
    mask: PILImage.Image | None  # "L", 0 or 255, at the generation's size (None for a hires fix)
    mask_blur: int = DEFAULT_MASK_BLUR
    inpaint_area: str = "whole"
    padding: int = DEFAULT_PADDING
    fill: str = "original"
    grow: list[int] | None = field(default=None)
    hires: dict | None = None  # hr_scale, hr_upscaler, hr_strength, hr_steps

    def row(self, generation_id: str, mask_key: str | None) -> GenerationEdit:
        """The ``GenerationEdit`` row of this request."""
        return GenerationEdit(generation_id=generation_id, kind=self.kind, mask_key=mask_key, mask_blur=self.mask_blur,
                              inpaint_area=self.inpaint_area, padding=self.padding, fill=self.fill, grow=self.grow,
                              **(self.hires or {}))


@dataclass
class MaskInput:
    """A mask as an API sent it (decoded, any size) with its settings, before it meets the starting image."""

    picture: PILImage.Image
    mask_blur: int = DEFAULT_MASK_BLUR
    inpaint_area: str = "whole"
    padding: int = DEFAULT_PADDING
    fill: str = "original"
    invert: bool = False

    def problems(self) -> dict[str, str]:
        """Each setting out of range, by field name."""
        found = {}
        if not 0 <= self.mask_blur <= MAX_MASK_BLUR:
            found["mask_blur"] = MASK_BLUR_OUT_OF_RANGE
        if self.inpaint_area not in INPAINT_AREAS:
            found["inpaint_area"] = INPAINT_AREA_UNKNOWN
        if not 0 <= self.padding <= MAX_PADDING:
            found["inpaint_full_res_padding"] = f"Use a padding from 0 to {MAX_PADDING} pixels."
        if self.fill not in FILLS:
            found["inpainting_fill"] = f"Choose one of: {', '.join(FILLS)}."
        return found

    def fitted(self, start_size: tuple[int, int], size: tuple[int, int], resize_mode: str) -> EditRequest:
        """The edit for a generation of ``size`` from a start of ``start_size``.

        Raises:
            MaskRejected: nothing is left to repaint.
        """
        mask = fit_mask(self.picture, start_size, size, resize_mode, invert=self.invert)
        return EditRequest(kind="inpaint", mask=mask, mask_blur=self.mask_blur, inpaint_area=self.inpaint_area,
                           padding=self.padding, fill=self.fill)


def mask_key(user_id: int, generation_id: str) -> str:
    """The stored mask of a generation, among its other files."""
    return generation_prefix(user_id, generation_id) + "mask.png"


def decode_mask(data: bytes, max_pixels: int, transparent_edits: bool = False) -> PILImage.Image:
    """The mask's bytes as an "L" picture, 255 where to repaint.

    Args:
        data: PNG, JPEG or WebP bytes.
        max_pixels: the upload limit.
        transparent_edits: OpenAI's meaning: fully transparent pixels are repainted, all others kept.
            Otherwise white (light) is repainted and black kept; transparent pixels count as black.

    Raises:
        MaskRejected: empty, not an image, too large, a bomb, damaged.
    """
    if not data:
        raise MaskRejected("The mask file is empty.")
    try:
        with _guarded():
            image = ImageOps.exif_transpose(_open_checked(data, max_pixels))
            if transparent_edits:
                if "A" not in image.getbands() and "transparency" not in image.info:
                    raise MaskRejected("The mask has no transparency: its fully transparent pixels mark where to "
                                       "edit (send a PNG with an alpha channel).")
                alpha = image.convert("RGBA").getchannel("A")
                return alpha.point(lambda value: 255 if value == 0 else 0)
            if "A" in image.getbands() or "transparency" in image.info:
                rgba = image.convert("RGBA")
                image = PILImage.alpha_composite(PILImage.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
            return image.convert("L")
    except MaskRejected:
        raise
    except UploadRejected as exc:
        raise MaskRejected(str(exc)) from None


def fit_mask(mask: PILImage.Image, start_size: tuple[int, int], size: tuple[int, int], resize_mode: str,
             invert: bool = False) -> PILImage.Image:
    """The mask over the starting image as the worker sees it: stretched to the start's size, then cropped or
    fitted to ``size`` as the start is (``webapp.uploads.fit_to``), as 0/255.

    Raises:
        MaskRejected: nothing is left to repaint.
    """
    mask = mask.convert("L")
    if invert:
        mask = ImageOps.invert(mask)
    if mask.size != start_size:
        mask = mask.resize(start_size, PILImage.Resampling.BILINEAR)
    if start_size != size:
        if resize_mode == "fit":
            mask = ImageOps.pad(mask, size, PILImage.Resampling.BILINEAR, color=0)
        else:
            mask = ImageOps.fit(mask, size, PILImage.Resampling.BILINEAR)
    mask = mask.point(lambda value: 255 if value >= 128 else 0)
    if mask.getbbox() is None:
        raise MaskRejected(EMPTY_MASK)
    return mask


def stored_mask(data: bytes) -> PILImage.Image:
    """A mask Easel stored (already at its generation's size)."""
    with PILImage.open(io.BytesIO(data)) as picture:
        return picture.convert("L")


def save_mask(storage, user_id: int, generation_id: str, mask: PILImage.Image) -> str:
    """Store the mask with the generation's files; its key."""
    key = mask_key(user_id, generation_id)
    storage.save(key, encode_png(mask), "image/png")
    return key


def grow_problem(grow: tuple[float, float, float, float], size: tuple[int, int]) -> str | None:
    """Outpainting adds something, within ``MAX_GROW`` times the picture on each side."""
    if any(value < 0 for value in grow):
        return "Sides are 0 or more."
    pixels = grow_pixels(grow, size)
    if not any(pixels):
        return "Choose at least one side to extend (left, right, top or bottom)."
    if max(pixels[0], pixels[1]) > MAX_GROW * size[0] or max(pixels[2], pixels[3]) > MAX_GROW * size[1]:
        return f"Extend each side by at most {MAX_GROW:g} times the picture."
    return None


def grow_pixels(grow: tuple[float, float, float, float], size: tuple[int, int]) -> list[int]:
    """Left, right, top, bottom in pixels: a value below 1 is a fraction of the picture's width or height."""
    width, height = size
    return [round(value * (width if index < 2 else height)) if value < 1 else round(value)
            for index, value in enumerate(grow)]


def nearest_size(sizes: list, width: int, height: int) -> tuple[int, int]:
    """The model size closest in shape to ``width``×``height``, then in area."""
    return min(((int(w), int(h)) for w, h in sizes),
               key=lambda s: (abs(s[0] / s[1] - width / height), abs(s[0] * s[1] - width * height)))


def outpaint_canvas(picture: PILImage.Image, pixels: list[int], size: tuple[int, int]
                    ) -> tuple[PILImage.Image, PILImage.Image]:
    """The picture on a larger canvas scaled to fit ``size``, and its mask (the new border, white).

    The border starts as the picture's edge colours stretched outwards and blurred, so the model continues
    the picture instead of painting into black; any bars left by the model's shape are border too.
    """
    left, right, top, bottom = pixels
    grown = (picture.width + left + right, picture.height + top + bottom)
    # the picture stretched over the whole canvas, blurred: each new border starts from its nearest edge's colours
    canvas = picture.convert("RGB").resize(grown, PILImage.Resampling.BILINEAR)
    canvas = canvas.filter(ImageFilter.GaussianBlur(OUTPAINT_BLUR))
    canvas.paste(picture.convert("RGB"), (left, top))
    mask = PILImage.new("L", grown, 255)
    mask.paste(0, (left, top, left + picture.width, top + picture.height))
    scale = min(size[0] / grown[0], size[1] / grown[1])
    fitted = (max(1, round(grown[0] * scale)), max(1, round(grown[1] * scale)))
    canvas = canvas.resize(fitted, PILImage.Resampling.LANCZOS)
    mask = mask.resize(fitted, PILImage.Resampling.BILINEAR).point(lambda value: 255 if value >= 128 else 0)
    if fitted != size:
        offset = ((size[0] - fitted[0]) // 2, (size[1] - fitted[1]) // 2)
        padded = canvas.resize(size, PILImage.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(OUTPAINT_BLUR))
        padded.paste(canvas, offset)
        full = PILImage.new("L", size, 255)
        full.paste(mask, offset)
        canvas, mask = padded, full
    return canvas, mask



# Hires fix (A1111's enable_hr): made at the asked size, enlarged, then image-to-image at the larger size.
DEFAULT_HR_SCALE, DEFAULT_HR_STRENGTH = 2.0, 0.4
# Pixel upscalers the worker applies between the passes; A1111's latent modes are served by bilinear pixels.
HR_UPSCALERS = {"lanczos": "lanczos", "nearest": "nearest", "bilinear": "bilinear", "bicubic": "bicubic",
                "none": "lanczos", "latent": "bilinear", "latent (antialiased)": "bilinear",
                "latent (bicubic)": "bicubic", "latent (bicubic antialiased)": "bicubic",
                "latent (nearest)": "nearest", "latent (nearest-exact)": "nearest"}


class HiresRejected(ValueError):
    """A hires fix that cannot be made; ``field`` names the setting."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def hires_request(sizes: list, width: int, height: int, scale: float | None = None, upscaler: str | None = None,
                  strength: float | None = None, steps: int | None = None) -> tuple[tuple[int, int], EditRequest]:
    """The larger size and the edit of a hires fix of a ``width``×``height`` picture.

    Args:
        sizes: the model's allowed sizes: the larger size must be one of them.
        scale, upscaler, strength, steps: None for the defaults (×2, lanczos, 0.4, the first pass's steps).

    Raises:
        HiresRejected: a scale below 1 or past 4, an unknown upscaler, a strength out of range, or a larger size the
            model does not make.
    """
    scale = DEFAULT_HR_SCALE if scale is None else float(scale)
    strength = DEFAULT_HR_STRENGTH if strength is None else float(strength)
    if not 1 < scale <= 4:
        raise HiresRejected("hr_scale", "Use a hires scale above 1 and at most 4.")
    method = HR_UPSCALERS.get((upscaler or "lanczos").strip().lower())
    if method is None:
        raise HiresRejected("hr_upscaler", f"Choose a hires upscaler: {', '.join(sorted(set(HR_UPSCALERS.values())))}.")
    if not 0.05 <= strength <= 1:
        raise HiresRejected("hr_strength", "Use a hires strength (denoising_strength) from 0.05 to 1.")
    if steps is not None and not 0 <= steps <= 150:
        raise HiresRejected("hr_steps", "Use 0 to 150 second-pass steps (0: as many as the first).")
    larger = (round(width * scale), round(height * scale))
    if larger not in {(int(w), int(h)) for w, h in sizes}:
        offered = ", ".join(f"{w}×{h}" for w, h in sizes)
        raise HiresRejected("hr_scale", f"The model does not make {larger[0]}×{larger[1]} (it makes {offered}), "
                                        f"so a hires fix ×{scale:g} from {width}×{height} is not offered.")
    return larger, EditRequest(kind="hires", mask=None, hires={
        "hr_scale": scale, "hr_upscaler": method, "hr_strength": strength, "hr_steps": steps or None})


def hires_offered(sizes: list) -> bool:
    """Whether a model's sizes include one that is another's double (the studio offers the hires fix then)."""
    allowed = {(int(w), int(h)) for w, h in sizes}
    return any((w * 2, h * 2) in allowed for w, h in allowed)


def hires_scales(sizes: list, width: int, height: int) -> list[float]:
    """The hires scales (above 1, at most 4) that take a ``width``×``height`` picture to one of the model's sizes."""
    found = {round(w / width, 4) for w, h in sizes if w * height == h * width and width < w <= 4 * width}
    return sorted(found)
