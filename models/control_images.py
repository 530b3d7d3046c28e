"""Built-in control-image preprocessors, needing no downloaded weights (Pillow, NumPy and OpenCV; no torch).

- ``none``: the picture is the control (a ready-made edge map, scribble or depth map).
- ``canny``: OpenCV's Canny edges, white on black.
- ``scribble``: a drawing or a photo as thin white strokes on black, as scribble ControlNets take them: the
  ink (whatever stands out from the picture's border colour) is reduced to its outline band, thinned to
  one-pixel lines and drawn again at a steady width.

Every preprocessor takes and returns an RGB picture of the same size; call it at the generation's size.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from models.controls import PREPROCESSORS


def _thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean mask to one-pixel lines (vectorised; a few dozen passes at most)."""
    img = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for first in (True, False):
            p = img
            n = [np.roll(np.roll(p, dy, 0), dx, 1) for dy, dx in
                 ((1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1))]  # P2..P9 clockwise
            count = sum(n)
            seq = [*n, n[0]]
            transitions = sum(((seq[k] == 0) & (seq[k + 1] == 1)).astype(np.uint8) for k in range(8))
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            if first:
                cond = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                cond = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            remove = (p == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & cond
            if remove.any():
                img = img & ~remove.astype(np.uint8) & 1
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


def line_width(size: tuple[int, int]) -> int:
    """The stroke width the scribble preprocessor draws at: 2 px at 64x64, about 3 % of the side above."""
    return max(2, round(min(size) * 0.03))


def scribble(image: Image.Image) -> Image.Image:
    """A drawing (dark on light or light on dark) or a photo as white strokes on black."""
    import cv2  # here, not at import: the web process loads OpenCV only when it preprocesses a control image

    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    gray = rgb[..., 0]
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    background = np.median(border, axis=0)
    diff = np.abs(rgb - background).max(axis=2).clip(0, 255).astype(np.uint8)  # colour, not just brightness
    level, _ = cv2.threshold(diff, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink = diff > max(level, 40)
    band = max(1, round(min(gray.shape) * 0.03))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    inner = cv2.erode(ink.astype(np.uint8), kernel).astype(bool)
    lines = _thin(ink & ~inner)  # strokes stay strokes; a filled shape becomes its outline
    width = line_width(image.size)
    drawn = cv2.dilate(lines.astype(np.uint8) * 255,
                       cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width)))
    return Image.fromarray(drawn).convert("RGB")


def canny(image: Image.Image, low: int = 100, high: int = 200) -> Image.Image:
    """OpenCV's Canny edges of the picture (any of its colour channels), white on black."""
    import cv2

    rgb = np.asarray(image.convert("RGB"))
    edges = np.max([cv2.Canny(np.ascontiguousarray(rgb[..., c]), low, high) for c in range(3)], axis=0)
    return Image.fromarray(edges).convert("RGB")


def preprocess(image: Image.Image, preprocessor: str) -> Image.Image:
    """The control image a preprocessor makes of a picture (same size, RGB).

    Raises:
        ValueError: an unknown preprocessor.
    """
    if preprocessor == "none":
        return image.convert("RGB")
    if preprocessor == "scribble":
        return scribble(image)
    if preprocessor == "canny":
        return canny(image)
    raise ValueError(f"unknown preprocessor {preprocessor!r}; built in: {', '.join(PREPROCESSORS)}")
