"""What a control image costs per picture: the bundled model at its catalog defaults (64×64, 20 steps, guidance
2.0) with and without the bundled scribble ControlNet, through the worker's own path (``jobs.pipelines``: the warm
pipeline, and the control pipeline made from it), alternating with and without (A B A B …) so that load from
elsewhere hits both alike; medians, the first round dropped. Run with ``make benchmark``.

EASEL_BENCH_RUNS (default 9) changes the rounds; EASEL_BENCH_OUT writes the results as JSON.
"""
from __future__ import annotations

import json
import os
import statistics
import time

import pytest
from PIL import Image as PILImage

from tests.webapp.api.test_controls import scribble_png

pytestmark = pytest.mark.benchmark

RUNS = int(os.environ.get("EASEL_BENCH_RUNS", "9"))
PROMPT = "a red star, blue background"


def test_control_cost_per_image(app, tmp_path):
    import io

    from jobs import control, pipelines
    from jobs.generate import configure_threads
    from models import loader
    from webapp import services
    from webapp.controls import store
    from webapp.tables import Generation

    with app.app_context():
        threads = configure_threads()
        entry = services.catalog()["easel-tiny"]
        warm = pipelines.STATE.warm("easel-tiny")
        control_entry = control._catalog()["easel-scribble"]
        from models.control_images import preprocess
        from webapp.controls import PreparedControl

        image = preprocess(PILImage.open(io.BytesIO(scribble_png())).convert("RGB").resize((64, 64)), "scribble")
        recorded = store(1, "bench", [PreparedControl(control_entry, 1.0, "scribble", image)])

        def one(seed: int, controls: list | None) -> float:
            generation = Generation(  # a real row's object, never stored: what the worker reads of it
                id=f"g{seed}", user_id=1, model="easel-tiny", prompt=PROMPT, negative_prompt="", style="none", loras=None,
                num_images=1, seed=seed, steps=entry.default_steps, guidance=entry.default_guidance, width=64,
                height=64, controls=controls)
            began = time.perf_counter()
            images, _ = pipelines.generate(warm, [generation], {}, lambda pipe, step, t, kwargs: kwargs)
            assert images[0].size == (64, 64)
            return time.perf_counter() - began

        loads = loader.LOAD_COUNT
        plain, controlled = [], []
        for seed in range(RUNS + 1):
            plain.append(one(seed, None))
            controlled.append(one(seed, recorded))
        assert loader.LOAD_COUNT == loads and control.LOAD_COUNT == 1  # no second load of the base; one control
    without, with_control = statistics.median(plain[1:]), statistics.median(controlled[1:])
    results = {"runs": RUNS, "threads": threads, "precision": loader.precision_of(warm.pipe),
               "without_control_ms": round(without * 1000, 1), "with_control_ms": round(with_control * 1000, 1),
               "ratio": round(with_control / without, 3),
               "first_round_ms": {"without": round(plain[0] * 1000, 1), "with": round(controlled[0] * 1000, 1)}}
    print(json.dumps(results, indent=2))
    if out := os.environ.get("EASEL_BENCH_OUT"):
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)
    assert with_control > 0 and without > 0
