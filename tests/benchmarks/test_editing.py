"""Inpainting on the bundled model's world (jobs/editing.py): how often it repaints, what it keeps, what it costs.

Quality: held-out renders (``models.training.data``: shape, colour, background triples never captioned in
training); the shape's own area, widened a little, is the mask, and the prompt names the same scene in a new
colour. A hit is a repainted picture whose object ``models.training.measure`` reads as the new colour (target ≥ 90%);
the unmasked area must stay within 2/255 of the original on average (paste-back makes it 0).

Cost: inpainting against image-to-image at the same strength and steps on the same start, interleaved, paired
medians of the whole call including the paste-back (target: no slower than ±10%). Run with ``make benchmark``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import statistics
import time

import numpy as np
import pytest

pytestmark = pytest.mark.benchmark

SCENES = int(os.environ.get("EASEL_BENCH_SCENES", "40"))
RUNS = int(os.environ.get("EASEL_BENCH_RUNS", "9"))
STEPS, STRENGTH, GUIDANCE = 20, 0.75, 3.0


def object_mask(picture, background: str):
    """The object's pixels (far from the background colour), widened by 4 pixels: what a person would paint."""
    from PIL import Image as PILImage
    from PIL import ImageFilter

    from models.training.data import COLOURS
    from models.training.measure import OBJECT_THRESHOLD

    pixels = np.asarray(picture, np.float32)
    far = np.sqrt(((pixels - np.array(COLOURS[background], np.float32)) ** 2).sum(axis=2)) > OBJECT_THRESHOLD
    return PILImage.fromarray((far * 255).astype(np.uint8)).filter(ImageFilter.MaxFilter(9))


def inpaint(warm, start, mask, prompt: str, seed: int, strength: float, blur: int = 4):
    import torch

    from jobs.editing import Edit
    from webapp.tables import GenerationEdit

    edit = Edit(start=start, mask=mask, settings=GenerationEdit(kind="inpaint", mask_blur=blur, inpaint_area="whole",
                                                                padding=32, fill="original"))
    result = warm.inpaint()(prompt, image=edit.image(), strength=strength, num_inference_steps=STEPS,
                            guidance_scale=GUIDANCE, generator=torch.Generator("cpu").manual_seed(seed),
                            **edit.call_kwargs())
    return edit.paste_back(result.images[0])


def _warm(app):
    from jobs.generate import configure_threads
    from jobs.pipelines import STATE

    app.config["EASEL_DEVICE"] = "cpu"
    configure_threads()
    return STATE.warm("easel-tiny")


def _report(results: dict, name: str) -> None:
    print("\n" + json.dumps(results, indent=2))
    if out := os.environ.get("EASEL_BENCH_OUT"):
        with open(f"{out}.{name}.json", "w") as fh:
            json.dump(results, fh, indent=2)


def test_inpainting_repaints_the_mask_and_keeps_the_rest(app):
    from models.training.data import COLOURS, eval_caption, random_scene, render
    from models.training.measure import read_image

    with app.app_context():
        warm = _warm(app)
        rng = random.Random(2026)
        hits, kept = 0, []
        for index in range(SCENES):
            scene = random_scene(rng, held=True)
            start = render(scene)
            mask = object_mask(start, scene.background)
            colour = rng.choice([c for c in COLOURS if c not in (scene.colour, scene.background)])
            picture = inpaint(warm, start, mask, eval_caption(dataclasses.replace(scene, colour=colour)), index, 1.0)
            hits += read_image(picture).colour == colour
            outside = np.asarray(mask) == 0
            kept.append(float(np.abs(np.asarray(picture, np.float32)[outside]
                                     - np.asarray(start, np.float32)[outside]).mean()))
    results = {"scenes": SCENES, "steps": STEPS, "hit_rate": round(hits / SCENES, 3),
               "unmasked_mean_difference": round(statistics.mean(kept), 4)}
    _report(results, "quality")
    assert results["hit_rate"] >= 0.9, results
    assert results["unmasked_mean_difference"] <= 2.0, results


def test_inpainting_costs_what_image_to_image_does(app):
    import torch

    from models.training.data import eval_caption, random_scene, render

    with app.app_context():
        warm = _warm(app)
        scene = random_scene(random.Random(7), held=True)
        start, prompt = render(scene), eval_caption(scene)
        mask = object_mask(start, scene.background)
        times: dict[str, list[float]] = {"img2img": [], "inpaint": []}
        img2img = warm.img2img()
        for seed in range(RUNS + 1):  # the first round warms caches and is dropped
            for kind in (("img2img", "inpaint") if seed % 2 else ("inpaint", "img2img")):
                began = time.perf_counter()
                if kind == "inpaint":
                    inpaint(warm, start, mask, prompt, seed, STRENGTH)
                else:
                    img2img(prompt, image=start, strength=STRENGTH, num_inference_steps=STEPS, guidance_scale=GUIDANCE,
                            generator=torch.Generator("cpu").manual_seed(seed))
                times[kind].append(time.perf_counter() - began)
    img2img_s, inpaint_s = (statistics.median(times[kind][1:]) for kind in ("img2img", "inpaint"))
    paired = statistics.median(i / p for i, p in zip(times["inpaint"][1:], times["img2img"][1:], strict=True))
    results = {"runs": RUNS, "steps": STEPS, "strength": STRENGTH, "img2img_median_s": round(img2img_s, 4),
               "inpaint_median_s": round(inpaint_s, 4), "medians_ratio": round(inpaint_s / img2img_s, 3),
               "paired_median_ratio": round(paired, 3)}
    _report(results, "cost")
    assert results["medians_ratio"] <= 1.10, results
