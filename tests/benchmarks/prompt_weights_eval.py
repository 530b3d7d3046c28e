"""Do prompt weights work on the bundled model? ``(red:1.5)`` against ``(red:0.5)`` on held-out prompts.

For each held-out evaluation scene of ``models.training.data`` (shape, background and place never seen
together in training) the object is made red, and the same seed draws it twice: once with ``(red:1.5)`` and
once with ``(red:0.5)``, through Easel's own embeddings (``jobs.prompting``). The object's measured redness is
the sum, over the pixels that differ from the prompt's background colour, of how far red exceeds the larger of
green and blue, per pixel of the picture: it grows with a redder or a larger red object. A prompt counts as
"the right way" when the up-weighted picture measures redder than the down-weighted one.

    .venv/bin/python -m tests.benchmarks.prompt_weights_eval [--prompts 84] [--steps 20] [--guidance 2.0]

Prints a JSON summary (docs/prompts.md quotes it).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np
import torch

from jobs.prompting import PromptEncoder
from models.training.data import COLOURS, POSITION_PHRASES, eval_scenes
from models.training.measure import OBJECT_THRESHOLD

HIGH, LOW = 1.5, 0.5


def redness(image, background: str) -> float:
    """Red above the larger of green and blue, summed over the object's pixels, per pixel of the picture."""
    arr = np.asarray(image.convert("RGB")).astype(np.float32)
    dist = np.sqrt(((arr - np.array(COLOURS[background], dtype=np.float32)) ** 2).sum(axis=2))
    excess = np.clip(arr[..., 0] - np.maximum(arr[..., 1], arr[..., 2]), 0, None)
    return float((excess * (dist > OBJECT_THRESHOLD)).sum() / excess.size)


def prompt(scene, weight: float) -> str:
    return (f"a {scene.size} (red:{weight:g}) {scene.shape} {POSITION_PHRASES[scene.position][0]}, "
            f"{scene.background} background")


def main() -> None:
    from diffusers import StableDiffusionPipeline

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=84)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=12)
    args = parser.parse_args()
    pipe = StableDiffusionPipeline.from_pretrained("models/easel-tiny", local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    encoder = PromptEncoder(pipe)
    scenes = [replace(scene, colour="red") for scene in eval_scenes() if scene.background != "red"][:args.prompts]
    began = time.perf_counter()
    rows = []
    for first in range(0, len(scenes), args.batch):
        batch = scenes[first:first + args.batch]
        measured = {}
        for weight in (HIGH, LOW):
            kwargs = encoder.encode([prompt(scene, weight) for scene in batch], None)
            generators = [torch.Generator("cpu").manual_seed(1000 + first + index) for index in range(len(batch))]
            images = pipe(**kwargs, num_inference_steps=args.steps, guidance_scale=args.guidance,
                          generator=generators).images
            measured[weight] = [redness(image, scene.background) for image, scene in zip(images, batch, strict=True)]
        rows += [(scene, high, low) for scene, high, low in zip(batch, measured[HIGH], measured[LOW], strict=True)]
    right = sum(high > low for _, high, low in rows)
    print(json.dumps({
        "prompts": len(rows), "right_way": right, "share": round(right / len(rows), 4),
        "mean_redness_high": round(float(np.mean([h for _, h, _ in rows])), 2),
        "mean_redness_low": round(float(np.mean([low for _, _, low in rows])), 2),
        "steps": args.steps, "guidance": args.guidance, "seconds": round(time.perf_counter() - began, 1),
        "example": prompt(rows[0][0], HIGH),
    }, indent=2))


if __name__ == "__main__":
    main()
