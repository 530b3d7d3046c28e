"""Image analysis that reads back what a picture shows: object colour, background, position, shape."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from models.training.data import COLOURS, POSITIONS, SHAPES, shape_polygon

_PALETTE_NAMES = list(COLOURS)
_PALETTE = np.array([COLOURS[n] for n in _PALETTE_NAMES], dtype=np.float32)
_CELL_NAMES = {cell: name for name, cell in POSITIONS.items()}
OBJECT_THRESHOLD = 80.0  # RGB distance from the background that counts as "object"


@dataclass(frozen=True)
class Reading:
    """What the analysis saw in one picture (None where it could not tell)."""

    colour: str | None
    background: str
    position: str | None
    shape: str | None


def nearest_colour(rgb: np.ndarray) -> str:
    """Name of the palette colour nearest to one RGB value."""
    d = ((_PALETTE - rgb.astype(np.float32)) ** 2).sum(axis=1)
    return _PALETTE_NAMES[int(d.argmin())]


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a boolean mask."""
    h, w = mask.shape
    seen = np.zeros_like(mask)
    best: list[tuple[int, int]] = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        stack, comp = [(int(y0), int(x0))], []
        seen[y0, x0] = True
        while stack:
            y, x = stack.pop()
            comp.append((y, x))
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        if len(comp) > len(best):
            best = comp
    out = np.zeros_like(mask)
    if best:
        ys, xs = zip(*best, strict=True)
        out[list(ys), list(xs)] = True
    return out


def _template(shape: str, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """A shape stretched to fill a bounding box, as a boolean mask."""
    ss = 4
    x0, y0, x1, y1 = box
    img = Image.new("L", (size * ss, size * ss), 0)
    draw = ImageDraw.Draw(img)
    bx0, by0, bx1, by1 = x0 * ss, y0 * ss, (x1 + 1) * ss, (y1 + 1) * ss
    poly = shape_polygon(shape, 0.0, 0.0, 1.0)
    if poly is None:
        draw.ellipse([bx0, by0, bx1, by1], fill=255)
    else:
        px, py = [p[0] for p in poly], [p[1] for p in poly]
        mx, my = min(px), min(py)
        sx, sy = (bx1 - bx0) / (max(px) - mx), (by1 - by0) / (max(py) - my)
        draw.polygon([(bx0 + (x - mx) * sx, by0 + (y - my) * sy) for x, y in poly], fill=255)
    return np.asarray(img.resize((size, size), Image.Resampling.BOX)) >= 128


def classify_shape(mask: np.ndarray) -> str | None:
    """The shape whose template, stretched to the mask's bounding box, overlaps it best (IoU)."""
    ys, xs = np.nonzero(mask)
    if len(ys) < 6:
        return None
    box = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
    scores = {}
    for shape in SHAPES:
        t = _template(shape, box, mask.shape[0])
        scores[shape] = (t & mask).sum() / max((t | mask).sum(), 1)
    return max(scores, key=scores.get)


def read_image(image: Image.Image | np.ndarray) -> Reading:
    """Analyse one picture of a single shape on a plain background."""
    arr = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image).astype(np.float32)
    h, w, _ = arr.shape
    border = np.concatenate([arr[:2].reshape(-1, 3), arr[-2:].reshape(-1, 3),
                             arr[:, :2].reshape(-1, 3), arr[:, -2:].reshape(-1, 3)])
    labels = [nearest_colour(p) for p in border[:: max(1, len(border) // 128)]]
    background = max(set(labels), key=labels.count)
    dist = np.sqrt(((arr - np.array(COLOURS[background], dtype=np.float32)) ** 2).sum(axis=2))
    mask = largest_component(dist > OBJECT_THRESHOLD)
    if mask.sum() < 6:
        return Reading(None, background, None, None)
    colour = nearest_colour(np.median(arr[mask], axis=0))
    ys, xs = np.nonzero(mask)
    cell = (min(int(xs.mean() / w * 3), 2), min(int(ys.mean() / h * 3), 2))
    return Reading(colour, background, _CELL_NAMES[cell], classify_shape(mask))
