"""Scribble controls for the bundled model: a shape anywhere in the frame, its outline drawn as a scribble.

The renderer is the one the model was trained on (data.py): the same shapes, colours and backgrounds, but
the object may sit anywhere and at any size in the model's range. Its silhouette is exact, so the scribble
(the outline, wobbly, broken, with thick and thin strokes, sometimes traced twice) and the scene come free.
Scribbles are white strokes on black, as ControlNet scribble models take them.
"""

from __future__ import annotations

import math
import multiprocessing
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from models.training.data import (
    COLOURS,
    IMAGE_SIZE,
    POSITION_PHRASES,
    POSITIONS,
    SIZES,
    SUPERSAMPLE,
    all_triples,
    draw_shape,
    held_out,
    shape_polygon,
)

RADIUS_RANGE = (0.09, 0.23)  # radius / image size: a little past the model's small .. large


@dataclass(frozen=True)
class Placed:
    """One scene placed freely: shape, colours, centre (fraction of the frame) and radius (fraction)."""

    shape: str
    colour: str
    background: str
    cx: float
    cy: float
    r: float

    @property
    def size(self) -> str:
        """The size word nearest to the radius."""
        return min(SIZES, key=lambda k: abs(SIZES[k] - self.r))

    @property
    def position(self) -> str:
        """The 3x3 grid cell of the centre, as the captions name it."""
        cell = (min(int(self.cx * 3), 2), min(int(self.cy * 3), 2))
        return next(name for name, c in POSITIONS.items() if c == cell)


def random_placed(rng: random.Random, held: bool = False) -> Placed:
    """A training (or held-out) triple at a uniform place and size that keeps the whole shape in the frame."""
    shape, colour, background = rng.choice([t for t in all_triples() if held_out(*t) == held])
    r = rng.uniform(*RADIUS_RANGE)
    lo, hi = 1.2 * r + 0.02, 0.98 - 1.2 * r
    return Placed(shape, colour, background, rng.uniform(lo, hi), rng.uniform(lo, hi), r)


def render_placed(p: Placed, size: int = IMAGE_SIZE) -> Image.Image:
    """The picture the model should draw for this scene (antialiased like data.render)."""
    big = size * SUPERSAMPLE
    img = Image.new("RGB", (big, big), COLOURS[p.background])
    draw_shape(ImageDraw.Draw(img), p.shape, p.cx * big, p.cy * big, p.r * big, COLOURS[p.colour])
    return img.resize((size, size), Image.Resampling.LANCZOS)


def silhouette(p: Placed, size: int = IMAGE_SIZE) -> np.ndarray:
    """The shape's exact filled silhouette as a boolean mask."""
    big = size * SUPERSAMPLE
    img = Image.new("L", (big, big), 0)
    draw_shape(ImageDraw.Draw(img), p.shape, p.cx * big, p.cy * big, p.r * big, 255)
    return np.asarray(img.resize((size, size), Image.Resampling.BOX)) >= 128


def outline(p: Placed, scale: float) -> list[tuple[float, float]]:
    """The closed outline of the shape in pixels of a scale-sized frame, one point about every pixel."""
    cx, cy, r = p.cx * scale, p.cy * scale, p.r * scale
    poly = shape_polygon(p.shape, cx, cy, r)
    if poly is None:
        n = max(24, int(2 * math.pi * r / (scale / IMAGE_SIZE)))
        return [(cx + r * math.cos(2 * math.pi * k / n), cy + r * math.sin(2 * math.pi * k / n)) for k in range(n)]
    pts = []
    step = scale / IMAGE_SIZE
    for (x0, y0), (x1, y1) in zip(poly, poly[1:] + poly[:1], strict=True):
        n = max(2, int(math.hypot(x1 - x0, y1 - y0) / step))
        pts += [(x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n) for k in range(n)]
    return pts


def scribble(p: Placed, rng: random.Random, size: int = IMAGE_SIZE) -> Image.Image:
    """The outline drawn by an unsteady hand: wobble, gaps, varying width, sometimes twice; white on black."""
    big = size * SUPERSAMPLE
    px = big / size  # one output pixel in the supersampled frame
    img = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(img)
    for _ in range(2 if rng.random() < 0.3 else 1):
        pts = outline(p, big)
        n = len(pts)
        # Low-frequency wobble along the outline, plus a small offset and stretch of the whole stroke.
        rad = p.r * big
        waves = [(rng.uniform(0.01, 0.06) * rad, rng.randint(2, 6), rng.uniform(0, 2 * math.pi)) for _ in range(3)]
        ox, oy = rng.uniform(-1, 1) * px, rng.uniform(-1, 1) * px
        sx, sy = rng.uniform(0.93, 1.07), rng.uniform(0.93, 1.07)
        cx, cy = p.cx * big, p.cy * big
        moved = []
        for k, (x, y) in enumerate(pts):
            nx, ny = x - cx, y - cy
            norm = math.hypot(nx, ny) or 1.0
            d = sum(a * math.sin(f * 2 * math.pi * k / n + ph) for a, f, ph in waves)
            moved.append((cx + nx * sx + d * nx / norm + ox, cy + ny * sy + d * ny / norm + oy))
        # Broken: a few gaps; the stroke's width changes from one piece to the next.
        start = rng.randrange(n)
        order = moved[start:] + moved[:start] + ([moved[start]] if rng.random() < 0.7 else [])
        gaps = rng.choice((0, 0, 1, 2, 3))
        cut = set()
        for _ in range(gaps):
            g0, glen = rng.randrange(len(order)), rng.randint(2, max(3, len(order) // 10))
            cut.update(range(g0, g0 + glen))
        width = rng.uniform(1.0, 2.6) * px
        piece: list[tuple[float, float]] = []
        for k, q in enumerate(order):
            if k in cut:
                if len(piece) > 1:
                    draw.line(piece, fill=255, width=max(1, round(width)), joint="curve")
                piece = []
                width = rng.uniform(1.0, 2.6) * px
                continue
            piece.append(q)
            if len(piece) > 8 and rng.random() < 0.04:  # width changes mid-stroke
                draw.line(piece, fill=255, width=max(1, round(width)), joint="curve")
                piece, width = [q], rng.uniform(1.0, 2.6) * px
        if len(piece) > 1:
            draw.line(piece, fill=255, width=max(1, round(width)), joint="curve")
    return img.resize((size, size), Image.Resampling.BOX)


CAPTION_TEMPLATES = (
    "{art} {size}{obj}, {bg} background",
    "{art} {size}{obj} on a {bg} background",
    "a {bg} background with {art} {size}{obj}",
    "{size}{obj}, {bg} background",
    "a picture of {art} {size}{obj} on {bg}",
    "{art} {size}{obj} on {bg}",
)


def free_caption(p: Placed, rng: random.Random, position_share: float = 0.25) -> str:
    """A caption naming the shape and colours; the position only in a quarter of them (where it is)."""
    size = p.size + " " if rng.random() < 0.5 else ""
    obj = f"{p.colour} {p.shape}"
    art = "an" if (size or obj)[0] in "aeiou" else "a"
    text = rng.choice(CAPTION_TEMPLATES).format(art=art, size=size, obj=obj, bg=p.background)
    if rng.random() < position_share:
        text += " " + rng.choice(POSITION_PHRASES[p.position])
    return text


def eval_prompt(p: Placed) -> str:
    """The fixed held-out prompt: size, colour, shape and background; no position."""
    return f"a {p.size} {p.colour} {p.shape}, {p.background} background"


CHUNK = 1000


def _chunk(job: tuple[int, int, int, bool]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Placed]]:
    seed, chunk, count, held = job
    rng = random.Random(seed * 100_019 + chunk + (7_777_777 if held else 0))
    placed = [random_placed(rng, held) for _ in range(count)]
    images = np.stack([np.asarray(render_placed(p)) for p in placed])
    scribbles = np.stack([np.asarray(scribble(p, rng)) for p in placed])
    masks = np.stack([silhouette(p) for p in placed])
    return images, scribbles, masks, placed


def scribble_dataset(count: int, seed: int, held: bool = False, processes: int = 1
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Placed]]:
    """count scenes (training or held-out triples): renders (N,64,64,3), scribbles (N,64,64), silhouettes."""
    jobs = [(seed, c, min(CHUNK, count - c * CHUNK), held) for c in range((count + CHUNK - 1) // CHUNK)]
    if processes > 1:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            parts = pool.map(_chunk, jobs)
    else:
        parts = [_chunk(j) for j in jobs]
    return (np.concatenate([q[0] for q in parts]), np.concatenate([q[1] for q in parts]),
            np.concatenate([q[2] for q in parts]), [p for q in parts for p in q[3]])
