"""Starting images people upload: decoded and checked with Pillow, re-encoded as PNG under a key of ids.

What a file is is decided by decoding it, never by its name or its declared type, and what is stored is
Pillow's re-encoding, never the bytes as sent. Anything Easel cannot use is refused with a message for the
form field, before a row or a file is written.
"""
from __future__ import annotations

import io
import json
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image as PILImage
from PIL import ImageOps, PngImagePlugin

from .tables import new_id

FORMATS = ("PNG", "JPEG", "WEBP")
RESIZE_MODES = {"crop": "Crop to fill", "fit": "Fit inside (bars at the edges)"}
_WARNINGS_LOCK = threading.Lock()  # catch_warnings swaps process-wide state: one upload at a time swaps it


class UploadRejected(ValueError):
    """The upload cannot be used; the message is shown next to the field."""


def upload_key(user_id: int, upload_id: str) -> str:
    """The stored PNG of an upload."""
    return f"users/{int(user_id)}/uploads/{upload_id}.png"


DAMAGED = "This image file is damaged or incomplete."
BOMB = "This file claims an enormous size (a decompression bomb), so it was refused."
NOT_AN_IMAGE = "This is not a PNG, JPEG or WebP image."


@contextmanager
def _guarded() -> Iterator[None]:
    """Pillow's bomb warning as an error for this call only, and every failure of decoding untrusted bytes
    (in ``open``, ``load``, EXIF or conversion: a truncated JPEG or WebP, a PNG text chunk that inflates past
    Pillow's limit, a corrupt header) as ``UploadRejected``."""
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        try:
            yield
        except UploadRejected:
            raise
        except (PILImage.DecompressionBombWarning, PILImage.DecompressionBombError) as exc:
            raise UploadRejected(BOMB) from exc
        except PILImage.UnidentifiedImageError as exc:
            raise UploadRejected(NOT_AN_IMAGE) from exc
        except MemoryError as exc:
            raise UploadRejected(BOMB) from exc
        except Exception as exc:  # any error of a decoder on bytes from outside means "damaged"
            raise UploadRejected(DAMAGED) from exc


def _open_checked(data: bytes, max_pixels: int) -> PILImage.Image:
    """Open and fully decode (call inside ``_guarded``)."""
    image = PILImage.open(io.BytesIO(data), formats=FORMATS)
    if image.width * image.height > max_pixels:
        raise UploadRejected(f"This image has {image.width}×{image.height} pixels; the limit is "
                             f"{max_pixels / 1_000_000:g} megapixels. Make it smaller and try again.")
    if getattr(image, "is_animated", False) or getattr(image, "n_frames", 1) > 1:
        raise UploadRejected("Animated images are not accepted; upload a single still picture.")
    image.load()
    return image


def read_text_chunks(data: bytes) -> dict[str, str]:
    """The text an image carries (PNG text chunks; no pixels are decoded).

    Raises:
        UploadRejected: empty, not PNG/JPEG/WebP, a bomb header, a text chunk past Pillow's limit, damaged.
    """
    if not data:
        raise UploadRejected("The file is empty.")
    with _guarded():
        image = PILImage.open(io.BytesIO(data), formats=FORMATS)
        return {key: value for key, value in image.info.items() if isinstance(value, str)}


def to_rgb(image: PILImage.Image) -> PILImage.Image:
    """Any decoded mode as 8-bit RGB: 16-bit scaled down, CMYK converted, transparency laid on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    elif image.mode == "F":
        image = image.point(lambda value: value * 255).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PILImage.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def decode_upload(data: bytes, max_pixels: int) -> PILImage.Image:
    """The uploaded bytes as an upright RGB picture.

    Raises:
        UploadRejected: empty, not PNG/JPEG/WebP, too many pixels, a decompression bomb, animated, damaged.
    """
    if not data:
        raise UploadRejected("The file is empty.")
    with _guarded():
        image = _open_checked(data, max_pixels)
        return to_rgb(ImageOps.exif_transpose(image))


def fit_to(image: PILImage.Image, size: tuple[int, int], mode: str) -> PILImage.Image:
    """The picture at exactly ``size``: ``crop`` fills it (cutting the edges), ``fit`` shows all of it (bars)."""
    if image.size == size:
        return image
    if mode == "fit":
        return ImageOps.pad(image, size, PILImage.Resampling.LANCZOS, color=(0, 0, 0))
    return ImageOps.fit(image, size, PILImage.Resampling.LANCZOS)


# Every character str.splitlines() breaks on, written as an escape: a prompt cannot add lines to ``parameters``.
LINE_BREAKS = {ord(c): f"\\u{ord(c):04x}" for c in "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"} | {
    ord("\n"): "\\n", ord("\r"): "\\r"}


def one_line(text: str) -> str:
    """``text`` with its line breaks escaped (``\\n``, ``\\r``, ``\\u2028``…), so it stays on one line."""
    return text.translate(LINE_BREAKS)


def encode_png(image: PILImage.Image, parameters: dict | None = None) -> bytes:
    """The PNG that is stored; a generated image's carries its parameters in text chunks: ``parameters``
    (readable, one line per part, the text the model saw first) and ``easel`` (JSON). An upload's carries
    nothing (no metadata from the upload is kept)."""
    buffer = io.BytesIO()
    if parameters is None:
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", (
        f"{one_line(parameters.get('model_prompt') or parameters['prompt'])}\n"
        f"Negative prompt: {one_line(parameters['negative_prompt'])}\n"
        f"Steps: {parameters['steps']}, "
        + (f"Sampler: {parameters['scheduler']}, " if parameters.get("scheduler") else "")  # A1111's place for it
        + f"CFG scale: {parameters['guidance']}, Seed: {parameters['seed']}, "
        f"Size: {parameters['width']}x{parameters['height']}, Model: {parameters['model']}, Style: {parameters['style']}"
        + (f", Denoising strength: {parameters['strength']}" if parameters.get("strength") is not None else "")
        + (f", Precision: {parameters['precision']}" if parameters.get("precision") else "")
        + "".join(f", ControlNet {index}: \"Module: {unit['preprocessor']}, Model: {unit['name']}, "
                  f"Weight: {unit['scale']}\"" for index, unit in enumerate(parameters.get("controls") or []))))
    info.add_itxt("easel", json.dumps(parameters, ensure_ascii=False))
    image.save(buffer, format="PNG", pnginfo=info, optimize=False, compress_level=6)
    return buffer.getvalue()


def new_upload_id() -> str:
    """The id (and key part) of a new upload."""
    return new_id()
