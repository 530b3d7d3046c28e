"""Starting images people upload: decoded and checked with Pillow, re-encoded as PNG under a key of ids.

What a file is is decided by decoding it, never by its name or its declared type, and what is stored is
Pillow's re-encoding, never the bytes as sent. Anything Easel cannot use is refused with a message for the
form field, before a row or a file is written.
"""
from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image as PILImage
from PIL import ImageOps

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


def encode_png(image: PILImage.Image) -> bytes:
    """The re-encoded PNG that is stored (no metadata from the upload is kept)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def new_upload_id() -> str:
    """The id (and key part) of a new upload."""
    return new_id()
