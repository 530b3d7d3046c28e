"""Procedural training pictures for the bundled model: one shape on a plain background, with captions."""

from __future__ import annotations

import math
import multiprocessing
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 64
SUPERSAMPLE = 4

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "yellow": (250, 215, 30),
    "purple": (140, 45, 180),
    "orange": (250, 135, 10),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
SIZES: dict[str, float] = {"small": 0.11, "medium": 0.15, "large": 0.19}  # radius / image size
# Position name -> (column, row) in a 3x3 grid; column/row 0, 1, 2 = left/centre/right, top/middle/bottom.
POSITIONS: dict[str, tuple[int, int]] = {
    "top left": (0, 0), "top": (1, 0), "top right": (2, 0),
    "left": (0, 1), "center": (1, 1), "right": (2, 1),
    "bottom left": (0, 2), "bottom": (1, 2), "bottom right": (2, 2),
}
POSITION_PHRASES: dict[str, tuple[str, ...]] = {
    "top left": ("in the top left", "in the upper left corner", "at the top left"),
    "top": ("at the top", "at the top center", "near the top"),
    "top right": ("in the top right", "in the upper right corner", "at the top right"),
    "left": ("on the left", "at the left", "on the left side"),
    "center": ("in the center", "in the middle", "at the center"),
    "right": ("on the right", "at the right", "on the right side"),
    "bottom left": ("in the bottom left", "in the lower left corner", "at the bottom left"),
    "bottom": ("at the bottom", "at the bottom center", "near the bottom"),
    "bottom right": ("in the bottom right", "in the lower right corner", "at the bottom right"),
}
GRID_CENTRES = (0.2, 0.5, 0.8)


@dataclass(frozen=True)
class Scene:
    """What one picture shows."""

    shape: str
    colour: str
    background: str
    position: str
    size: str


def held_out(shape: str, colour: str, background: str) -> bool:
    """True for (shape, colour, background) triples never captioned in training (about one in eight)."""
    si, ci, bi = SHAPES.index(shape), list(COLOURS).index(colour), list(COLOURS).index(background)
    return (si * 3 + ci * 5 + bi * 7) % 8 == 0


def all_triples() -> list[tuple[str, str, str]]:
    """Every (shape, colour, background) triple with the object distinct from its background."""
    return [(s, c, b) for s in SHAPES for c in COLOURS for b in COLOURS if c != b]


def random_scene(rng: random.Random, held: bool = False) -> Scene:
    """Draw a scene uniformly from the training (or the held-out) triples."""
    triples = [t for t in all_triples() if held_out(*t) == held]
    shape, colour, background = rng.choice(triples)
    return Scene(shape, colour, background, rng.choice(list(POSITIONS)), rng.choice(list(SIZES)))


def shape_polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    """Vertices of a shape centred at (cx, cy) with radius r; None for a circle."""
    if shape == "circle":
        return None
    if shape == "square":
        h = r * 0.9
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "triangle":
        # Upright equilateral-ish triangle, its bounding box centred on (cx, cy).
        return [(cx, cy - r), (cx + r * 1.05, cy + r * 0.85), (cx - r * 1.05, cy + r * 0.85)]
    if shape == "star":
        pts = []
        for k in range(10):
            rad = r * 1.1 if k % 2 == 0 else r * 0.45
            ang = -math.pi / 2 + k * math.pi / 5
            pts.append((cx + rad * math.cos(ang), cy + rad * math.sin(ang) + r * 0.1))
        return pts
    raise ValueError(f"unknown shape {shape!r}")


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill: object) -> None:
    """Draw one filled shape."""
    poly = shape_polygon(shape, cx, cy, r)
    if poly is None:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon(poly, fill=fill)


def render(scene: Scene, rng: random.Random | None = None, size: int = IMAGE_SIZE) -> Image.Image:
    """Render a scene as an RGB image, antialiased by supersampling; rng adds a little jitter."""
    big = size * SUPERSAMPLE
    img = Image.new("RGB", (big, big), COLOURS[scene.background])
    col, row = POSITIONS[scene.position]
    jitter = (lambda: rng.uniform(-0.035, 0.035)) if rng else (lambda: 0.0)
    r = SIZES[scene.size] * (rng.uniform(0.92, 1.08) if rng else 1.0)
    # Keep the whole shape inside the frame (stars reach 1.2 r) so its outline stays whole.
    lo, hi = 1.2 * r + 0.02, 0.98 - 1.2 * r
    cx = min(max(GRID_CENTRES[col] + jitter(), lo), hi) * big
    cy = min(max(GRID_CENTRES[row] + jitter(), lo), hi) * big
    draw_shape(ImageDraw.Draw(img), scene.shape, cx, cy, r * big, COLOURS[scene.colour])
    return img.resize((size, size), Image.Resampling.LANCZOS)


def caption(scene: Scene, rng: random.Random) -> str:
    """One natural caption for a scene, picked among several phrasings."""
    pos = rng.choice(POSITION_PHRASES[scene.position])
    size = scene.size + " " if rng.random() < 0.5 else ""
    obj = f"{scene.colour} {scene.shape}"
    bg = scene.background
    art = "an" if (size or obj)[0] in "aeiou" else "a"
    templates = (
        f"{art} {size}{obj} {pos}, {bg} background",
        f"{art} {size}{obj} {pos} on a {bg} background",
        f"{art} {size}{obj} on a {bg} background, {pos}",
        f"a {bg} background with {art} {size}{obj} {pos}",
        f"{size}{obj} {pos}, {bg} background",
        f"a picture of {art} {size}{obj} {pos} on {bg}",
        f"{art} {size}{obj} on {bg}, {pos}",
    )
    return rng.choice(templates)


def eval_caption(scene: Scene) -> str:
    """The fixed caption used for evaluation prompts."""
    pos = POSITION_PHRASES[scene.position][0]
    return f"a {scene.size} {scene.colour} {scene.shape} {pos}, {scene.background} background"


def eval_scenes(count: int = 252, seed: int = 1234) -> list[Scene]:
    """Held-out evaluation scenes: every held-out triple at every position, sizes drawn by seed."""
    rng = random.Random(seed)
    triples = [t for t in all_triples() if held_out(*t)]
    scenes = [Scene(s, c, b, p, rng.choice(list(SIZES))) for s, c, b in triples for p in POSITIONS]
    rng.shuffle(scenes)
    return scenes[:count]


def caption_corpus() -> list[str]:
    """Every word the captions can use (for learning the tokenizer), with rough frequencies."""
    rng = random.Random(0)
    scenes = [Scene(s, c, b, p, z) for s, c, b in all_triples() for p in POSITIONS for z in SIZES]
    return [caption(sc, rng) for sc in scenes] + [eval_caption(sc) for sc in scenes[::7]]


CHUNK = 1000


def _render_chunk(job: tuple[int, int, int]) -> tuple[np.ndarray, list[Scene]]:
    """Render one chunk of the dataset from its own seed."""
    seed, chunk, count = job
    rng = random.Random(seed * 100_003 + chunk)
    scenes = [random_scene(rng) for _ in range(count)]
    arr = np.empty((count, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for i, sc in enumerate(scenes):
        arr[i] = np.asarray(render(sc, rng))
    return arr, scenes


def render_dataset(count: int, seed: int, processes: int = 1) -> tuple[np.ndarray, list[Scene]]:
    """Render count training scenes as a uint8 array (N, H, W, 3) with their scenes, deterministically.

    Chunks have their own seeds, so the result is the same however many processes render it.
    """
    jobs = [(seed, c, min(CHUNK, count - c * CHUNK)) for c in range((count + CHUNK - 1) // CHUNK)]
    if processes > 1:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            parts = pool.map(_render_chunk, jobs)
    else:
        parts = [_render_chunk(j) for j in jobs]
    return np.concatenate([p[0] for p in parts]), [sc for p in parts for sc in p[1]]


def foreground_masks(images: np.ndarray, scenes: list[Scene], factor: int = 4) -> np.ndarray:
    """Per-picture object coverage at latent resolution (N, H/f, W/f) in [0, 1], grown by one cell."""
    bg = np.array([COLOURS[sc.background] for sc in scenes], dtype=np.float32)[:, None, None, :]
    fg = (np.abs(images.astype(np.float32) - bg).sum(axis=3) > 60).astype(np.float32)
    n, h, w = fg.shape
    cov = fg.reshape(n, h // factor, factor, w // factor, factor).mean(axis=(2, 4))
    grown = np.pad(cov, ((0, 0), (1, 1), (1, 1)))
    return np.max([grown[:, dy:dy + cov.shape[1], dx:dx + cov.shape[2]] for dy in range(3) for dx in range(3)], axis=0)
