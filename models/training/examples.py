"""Render the landing page's examples with the bundled model: a few 64x64 WebP files and their prompts.

Run: python -m models.training.examples   (or ``make examples``); commit what it writes in static/examples/.
The same prompts and seeds give the same pictures, so running it again changes nothing unless the model did.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from models.catalog import get_entry
from models.loader import load_pipeline

os.environ.setdefault("HF_HUB_OFFLINE", "1")
OUT = Path(__file__).resolve().parent.parent.parent / "static" / "examples"
# Prompts the bundled model knows (shapes, colours, places, backgrounds), each with a seed that draws it well.
EXAMPLES = [
    ("a red circle in the center, blue background", 11),
    ("a yellow star in the top left, purple background", 12),
    ("a green square in the bottom right, white background", 13),
    ("a blue triangle in the center, yellow background", 14),
    ("a white circle in the top right, black background", 15),
    ("a purple square in the bottom left, green background", 16),
]
STEPS, GUIDANCE = 20, 3.0


def render_examples(out: Path = OUT) -> list[dict]:
    """Render every example into ``out`` as ``example-N.webp`` and write ``examples.json`` (file, prompt, seed)."""
    pipe = load_pipeline(get_entry("easel-tiny"), device="cpu")
    out.mkdir(parents=True, exist_ok=True)
    listing = []
    for number, (prompt, seed) in enumerate(EXAMPLES, start=1):
        image = pipe(prompt, num_inference_steps=STEPS, guidance_scale=GUIDANCE,
                     generator=torch.Generator("cpu").manual_seed(seed)).images[0]
        name = f"example-{number}.webp"
        image.save(out / name, "WEBP", lossless=True)
        listing.append({"file": name, "prompt": prompt, "seed": seed, "steps": STEPS, "guidance": GUIDANCE})
    (out / "examples.json").write_text(json.dumps(listing, indent=2) + "\n")
    return listing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    for item in render_examples(parser.parse_args().out):
        print(item["file"], item["prompt"])


if __name__ == "__main__":
    main()
