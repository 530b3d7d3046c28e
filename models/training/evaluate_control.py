"""Score the bundled scribble ControlNet on held-out scribbles: does the object land where, and in the shape,
the scribble draws it, and are the prompt's colours kept? The same prompts and seeds without the control show
what chance gives.

Run: python -m models.training.evaluate_control            (writes eval.json and eval_grid.png beside the weights)
Held out: the (shape, colour, background) triples the base model never saw (data.held_out), scribbles drawn from
another seed than training's, prompts that name no position ("a small red star, blue background").
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from models.training.data import COLOURS
from models.training.measure import OBJECT_THRESHOLD, classify_shape, largest_component, read_image
from models.training.scribbles import Placed, eval_prompt, scribble_dataset

os.environ.setdefault("HF_HUB_OFFLINE", "1")
CENTROID_PX = 8.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", type=Path, default=Path("models/easel-tiny"))
    p.add_argument("--control", type=Path, default=Path("models/controls/easel-scribble"))
    p.add_argument("--count", type=int, default=96)
    p.add_argument("--seed", type=int, default=4321)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=2.0)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--control-only", type=Path, default=None,
                   help="only the pictures with the control, their scores written to this JSON file (other scales)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (one is faster on a busy shared machine)")
    return p.parse_args()


def object_mask(image: Image.Image) -> np.ndarray:
    """The object's pixels as measure.read_image finds them (largest region far from the border colour)."""
    arr = np.asarray(image.convert("RGB")).astype(np.float32)
    background = read_image(image).background
    dist = np.sqrt(((arr - np.array(COLOURS[background], dtype=np.float32)) ** 2).sum(axis=2))
    return largest_component(dist > OBJECT_THRESHOLD)


def centroid(mask: np.ndarray) -> tuple[float, float] | None:
    ys, xs = np.nonzero(mask)
    return (float(xs.mean()), float(ys.mean())) if len(xs) else None


def measure(images: list[Image.Image], placed: list[Placed], silhouettes: np.ndarray) -> dict:
    """Fractions: centroid within 8 px of the scribble's shape, shape, object colour, background; mean IoU;
    the shape read right per wanted shape (right/scenes)."""
    hits = {"centroid": 0, "shape": 0, "colour": 0, "background": 0}
    ious, dists = [], []
    by_shape: dict[str, list[int]] = {}  # wanted shape -> [read right, scenes]
    for image, p, sil in zip(images, placed, silhouettes, strict=True):
        reading = read_image(image)
        mask = object_mask(image)
        found, wanted = centroid(mask), centroid(sil)
        dist = float(np.hypot(found[0] - wanted[0], found[1] - wanted[1])) if found else float("inf")
        dists.append(dist)
        hits["centroid"] += dist <= CENTROID_PX
        right = (classify_shape(mask) if mask.sum() >= 6 else None) == p.shape
        hits["shape"] += right
        tally = by_shape.setdefault(p.shape, [0, 0])
        tally[0], tally[1] = tally[0] + right, tally[1] + 1
        hits["colour"] += reading.colour == p.colour
        hits["background"] += reading.background == p.background
        ious.append(float((mask & sil).sum() / max((mask | sil).sum(), 1)))
    n = len(images)
    return {**{k: round(v / n, 4) for k, v in hits.items()}, "mean_iou": round(float(np.mean(ious)), 4),
            "median_centroid_distance_px": round(float(np.median(dists)), 2),
            "shape_by_shape": {k: f"{r}/{m}" for k, (r, m) in sorted(by_shape.items())}}


def generate(pipe, prompts: list[str], batch: int, steps: int, guidance: float, **extra) -> list[Image.Image]:
    out: list[Image.Image] = []
    for i in range(0, len(prompts), batch):
        chunk = prompts[i:i + batch]
        kwargs = {k: v[i:i + batch] if isinstance(v, list) else v for k, v in extra.items()}
        gens = [torch.Generator().manual_seed(i + k) for k in range(len(chunk))]
        out += pipe(chunk, num_inference_steps=steps, guidance_scale=guidance, generator=gens, **kwargs).images
    return out


def save_grid(scribbles: np.ndarray, without: list[Image.Image], with_control: list[Image.Image], path: Path,
              count: int = 16, cell: int = 96) -> None:
    """Three rows per block: the scribble, the picture without the control, with it."""
    grid = Image.new("RGB", (count * cell, 3 * cell), "white")
    for k in range(min(count, len(without))):
        grid.paste(Image.fromarray(scribbles[k]).convert("RGB").resize((cell, cell), Image.Resampling.NEAREST),
                   (k * cell, 0))
        grid.paste(without[k].resize((cell, cell), Image.Resampling.NEAREST), (k * cell, cell))
        grid.paste(with_control[k].resize((cell, cell), Image.Resampling.NEAREST), (k * cell, 2 * cell))
    ImageDraw.Draw(grid).text((2, 2), "scribble / without / with", fill="white")
    grid.save(path)


def main() -> None:
    args = parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline, StableDiffusionPipeline

    _, scribbles, silhouettes, placed = scribble_dataset(args.count, args.seed, held=True)
    prompts = [eval_prompt(p) for p in placed]
    pipe = StableDiffusionPipeline.from_pretrained(args.base, local_files_only=True, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    controlnet = ControlNetModel.from_pretrained(args.control, torch_dtype=torch.float32, use_safetensors=True)
    controlled = StableDiffusionControlNetPipeline.from_pipe(pipe, controlnet=controlnet)
    controlled.set_progress_bar_config(disable=True)
    controls = [Image.fromarray(s).convert("RGB") for s in scribbles]
    if args.control_only is not None:
        pictures = generate(controlled, prompts, args.batch, args.steps, args.guidance, image=controls,
                            controlnet_conditioning_scale=args.scale)
        found = {"prompts": args.count, "steps": args.steps, "guidance": args.guidance, "scale": args.scale,
                 "with_control": measure(pictures, placed, silhouettes)}
        args.control_only.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(found, indent=2))
        return
    t0 = time.time()
    without = generate(pipe, prompts, args.batch, args.steps, args.guidance)
    t1 = time.time()
    with_control = generate(controlled, prompts, args.batch, args.steps, args.guidance, image=controls,
                            controlnet_conditioning_scale=args.scale)
    t2 = time.time()
    weights = args.control / "diffusion_pytorch_model.safetensors"
    result = {
        "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "prompts": args.count, "seed": args.seed, "steps": args.steps, "guidance": args.guidance,
        "scale": args.scale, "held_out": "triples never seen in training; scribbles from another seed",
        "centroid_px": CENTROID_PX, "without_control": measure(without, placed, silhouettes),
        "with_control": measure(with_control, placed, silhouettes),
        "seconds": {"without": round(t1 - t0, 1), "with": round(t2 - t1, 1)},
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}, threads "
                   f"{torch.get_num_threads()}, fp32",
        "example_prompt": prompts[0],
    }
    (args.control / "eval.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    save_grid(scribbles, without, with_control, args.control / "eval_grid.png")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
