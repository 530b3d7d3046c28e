"""What the safety check costs per picture: nudenet's detector on the tiny model's own pictures (64×64) and on
the same pictures enlarged to 512×512 (the detector resizes every picture to 320×320, so size matters little),
beside the time the tiny model takes to make one. Run with ``make benchmark``.
"""
from __future__ import annotations

import json
import os
import statistics
import time

import pytest

pytestmark = pytest.mark.benchmark

RUNS = int(os.environ.get("EASEL_BENCH_RUNS", "9"))
PROMPT = "a small red star in the top left, blue background"


def test_safety_check_cost_per_image(app):
    import torch
    from PIL import Image as PILImage

    from jobs.generate import configure_threads
    from models import loader
    from models.catalog import get_entry
    from webapp import safety

    entry = get_entry("easel-tiny")
    with app.app_context():
        configure_threads()
        pipe = loader.load_pipeline(entry)
        began = time.perf_counter()
        safety._nude_detector()  # loaded once per worker process
        load_s = time.perf_counter() - began
        made, small, large = [], [], []
        for seed in range(RUNS + 1):  # the first round warms caches and is dropped
            began = time.perf_counter()
            picture = pipe(PROMPT, num_inference_steps=entry.default_steps, guidance_scale=entry.default_guidance,
                           width=64, height=64, generator=torch.Generator("cpu").manual_seed(seed)).images[0]
            made.append(time.perf_counter() - began)
            for size, times in ((64, small), (512, large)):
                sized = picture.resize((size, size), PILImage.Resampling.LANCZOS)
                began = time.perf_counter()
                verdict = safety.check(sized)
                times.append(time.perf_counter() - began)
                assert verdict.labels is not None and not verdict.held  # it really looked, and found nothing
    results = {"runs": RUNS, "detector_load_s": round(load_s, 3),
               "check_64px_median_ms": round(statistics.median(small[1:]) * 1000, 1),
               "check_512px_median_ms": round(statistics.median(large[1:]) * 1000, 1),
               "tiny_generation_median_ms": round(statistics.median(made[1:]) * 1000, 1),
               "threads": torch.get_num_threads(), "cpus": os.cpu_count()}
    print("\n" + json.dumps(results, indent=2))
    if out := os.environ.get("EASEL_BENCH_OUT"):
        with open(out, "w") as fh:
            json.dump(results, fh, indent=2)
    assert results["check_512px_median_ms"] < 2000, results  # a check stays well under a real model's seconds
