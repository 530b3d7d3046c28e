"""Uploads: decided by decoding; every bad file refused with a message, odd but usable ones converted."""
from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image as PILImage

from webapp.uploads import UploadRejected, decode_upload, fit_to

LIMIT = 16_000_000


def encoded(image: PILImage.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def bomb_png(width: int, height: int) -> bytes:
    """A small file that declares a huge 1-bit picture of zeros (a decompression bomb)."""
    rows = zlib.compress(b"\x00" * (1 + (width + 7) // 8) * height, 9)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def animated(fmt: str) -> bytes:
    frames = [PILImage.new("RGB", (16, 16), colour) for colour in ("red", "blue")]
    return encoded(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def bad_files() -> dict[str, tuple[bytes, str]]:
    """Every kind of bad upload, built here, with a word its message must contain."""
    good_png = encoded(PILImage.new("RGB", (64, 64), "red"), "PNG")
    return {
        "not-an-image": (b"hello, this is text\n" * 20, "not a PNG"),
        "zero-bytes": (b"", "empty"),
        "truncated": (good_png[: len(good_png) // 2], "damaged"),
        "bomb": (bomb_png(10_000, 10_000), "decompression bomb"),
        "too-many-pixels": (bomb_png(5_000, 4_000), "megapixels"),
        "animated-gif": (animated("GIF"), "not a PNG"),
        "apng": (animated("PNG"), "Animated"),
        "animated-webp": (animated("WEBP"), "Animated"),
        "gif-named-png": (encoded(PILImage.new("RGB", (8, 8)), "GIF"), "not a PNG"),
        "bmp": (encoded(PILImage.new("RGB", (8, 8)), "BMP"), "not a PNG"),
        "html-named-png": (b"<html><script>alert(1)</script></html>", "not a PNG"),
    }


BAD = bad_files()


@pytest.mark.parametrize("name", list(BAD))
def test_bad_uploads_are_refused_with_a_message(name):
    data, words = BAD[name]
    with pytest.raises(UploadRejected, match=words):
        decode_upload(data, LIMIT)


def test_cmyk_16_bit_and_transparent_uploads_become_rgb():
    cmyk = decode_upload(encoded(PILImage.new("CMYK", (20, 10), (0, 255, 255, 0)), "JPEG"), LIMIT)
    assert cmyk.mode == "RGB" and cmyk.size == (20, 10) and cmyk.getpixel((5, 5))[0] > 200  # red stays red
    sixteen = decode_upload(encoded(PILImage.new("I;16", (10, 10), 40000), "PNG"), LIMIT)
    assert sixteen.mode == "RGB" and abs(sixteen.getpixel((1, 1))[0] - 40000 // 256) <= 1  # scaled, not clipped
    clear = decode_upload(encoded(PILImage.new("RGBA", (10, 10), (0, 0, 0, 0)), "PNG"), LIMIT)
    assert clear.getpixel((1, 1)) == (255, 255, 255)
    webp = decode_upload(encoded(PILImage.new("RGB", (12, 12), "blue"), "WEBP", lossless=True), LIMIT)
    assert webp.getpixel((3, 3)) == (0, 0, 255)


def rgb16_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one), filled with one colour."""
    pixel = b"".join(struct.pack(">H", value) for value in rgb)
    rows = zlib.compress((b"\x00" + pixel * width) * height)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def test_16_bit_rgb_and_palette_pngs_become_rgb():
    deep = decode_upload(rgb16_png(8, 6, (65535, 32768, 0)), LIMIT)
    assert deep.mode == "RGB" and deep.size == (8, 6) and deep.getpixel((2, 2)) == (255, 128, 0)
    palette = PILImage.new("P", (10, 10), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    assert decode_upload(encoded(palette, "PNG"), LIMIT).getpixel((3, 3)) == (255, 0, 0)
    palette.info["transparency"] = 1
    assert decode_upload(encoded(palette, "PNG", transparency=1), LIMIT).getpixel((3, 3)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = encoded(PILImage.new("RGB", (40, 20), "green"), "JPEG", exif=exif)
    assert decode_upload(data, LIMIT).size == (20, 40)


def test_fit_and_crop_reach_the_model_size():
    wide = PILImage.new("RGB", (200, 100), "white")
    cropped, fitted = fit_to(wide, (64, 64), "crop"), fit_to(wide, (64, 64), "fit")
    assert cropped.size == fitted.size == (64, 64)
    assert cropped.getpixel((32, 2)) == (255, 255, 255)  # filled to the edge
    assert fitted.getpixel((32, 2)) == (0, 0, 0)  # bars above and below


def test_the_bomb_warning_is_an_error_here_only():
    """Refused even where warnings are ignored, and the process's filters are left as they were."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = list(warnings.filters)
        with pytest.raises(UploadRejected, match="decompression bomb"):
            decode_upload(bomb_png(10_000, 10_000), LIMIT * 10)
        assert warnings.filters == before
