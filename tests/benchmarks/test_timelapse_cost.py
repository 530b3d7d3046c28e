"""What a timelapse costs: the same generation with and without one, measured in one run (target ≤ 10%).

Both sides run the worker's own progress callback; the timelapse side also keeps a latent preview
per step and encodes the animated WebP, as the worker does beside the PNG. Runs are interleaved so
that load from elsewhere hits both alike. Run with ``make benchmark``.
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


def once(pipe, steps: int, guidance: float, seed: int, timelapse: bool) -> float:
    import torch

    from jobs.generate import ProgressReporter
    from jobs.preview import LatentPreviewer
    from jobs.timelapse import TimelapseRecorder

    began = time.perf_counter()
    previewer = LatentPreviewer(pipe.vae)
    recorder = TimelapseRecorder(1, previewer) if timelapse else None
    result = pipe(PROMPT, num_inference_steps=steps, guidance_scale=guidance, width=64, height=64,
                  generator=torch.Generator("cpu").manual_seed(seed),
                  callback_on_step_end=ProgressReporter(f"bench-{seed}", steps, previewer, recorder))
    if recorder is not None:
        data = recorder.encode(0, result.images[0])
        assert data[:4] == b"RIFF"
    return time.perf_counter() - began


def test_timelapse_costs_at_most_ten_percent(app):
    from jobs.generate import configure_threads
    from models import loader
    from models.catalog import get_entry

    entry = get_entry("easel-tiny")
    steps, guidance = entry.default_steps, entry.default_guidance
    with app.app_context():
        configure_threads()
        pipe = loader.load_pipeline(entry)
        times: dict[str, list[float]] = {"plain": [], "timelapse": []}
        for seed in range(RUNS + 1):  # the first round warms caches and is dropped
            order = (False, True) if seed % 2 else (True, False)  # neither side always runs second
            for timelapse in order:
                times["timelapse" if timelapse else "plain"].append(once(pipe, steps, guidance, seed, timelapse))
    plain, timelapse = (statistics.median(times[k][1:]) for k in ("plain", "timelapse"))
    paired = statistics.median(t / p for t, p in zip(times["timelapse"][1:], times["plain"][1:], strict=True))
    results = {"steps": steps, "runs": RUNS, "plain_median_s": round(plain, 4),
               "timelapse_median_s": round(timelapse, 4), "timelapse_cost": round(paired - 1, 4)}
    print("\n" + json.dumps(results, indent=2))
    if out := os.environ.get("EASEL_BENCH_OUT"):
        with open(out, "w") as fh:
            json.dump(results, fh, indent=2)
    assert results["timelapse_cost"] <= 0.10, results
