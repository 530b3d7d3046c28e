"""Precision on the CPU: ``auto`` (bf16 where the CPU computes it) against ``fp32``, through Easel, in one run.

Two real workers side by side, one per precision, each serving two catalog entries: an SD 1.5-architecture
pipeline with random weights (built and saved here, no downloads; tests/support/sd15_random.py) and the
bundled easel-tiny. The entries point at the same files and differ only in ``precision``. Pictures are
asked for through the studio form and watched through the JSON API, alternating auto and fp32 (A B A B …)
so that load from elsewhere hits both alike; medians per image. Targets:

- SD 1.5 size, 128×128, 20 steps, guidance 7.5: auto ≥ 2.0× faster per image than fp32;
- easel-tiny at its catalog defaults: auto ≥ 1.5× faster per image than fp32, both with the defaults a fresh
  ``make run`` has (its UNet converted to OpenVINO, which then computes in the model's precision); a third worker
  with ``EASEL_OPENVINO=0`` gives fp32 eager PyTorch (what Easel ran before), reported beside them;
- the worker's peak resident memory with bf16 ≤ 60% of fp32's.

On a CPU without AVX-512 BF16 or AMX, auto is fp32: the benchmark says so, runs bf16 by name instead
(slow there, emulated), checks the memory target (bf16 weights are half the size on any CPU) and reports the
speed targets as skipped, "not measurable on this CPU (AVX2)", with the ratios it measured.

    make benchmark            # with the other benchmarks
    .venv/bin/python -m pytest tests/benchmarks/test_precision.py -s -o addopts="" -p no:cacheprovider

EASEL_BENCH_DIR keeps the built pipeline between runs; EASEL_BENCH_PRECISION_RUNS (default 3 pairs for SD 1.5,
3× as many for the tiny model), EASEL_BENCH_STEPS (20) and EASEL_BENCH_SIZE (128) change the work;
EASEL_BENCH_OUT writes the results as JSON.
"""
from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.support import ROOT, wait_for
from tests.support.sd15_random import build_sd15

pytestmark = [pytest.mark.benchmark,
              # random weights at real depth overflow to NaN, which PIL's conversion warns about; the work is the same
              pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")]

RUNS = int(os.environ.get("EASEL_BENCH_PRECISION_RUNS", "3"))
STEPS = int(os.environ.get("EASEL_BENCH_STEPS", "20"))
SIZE = int(os.environ.get("EASEL_BENCH_SIZE", "128"))
GUIDANCE = 7.5
PROMPT = "a watercolor painting of a lighthouse on a cliff at sunset"
TINY_PROMPT = "a small red star in the top left, blue background"
POLL = 0.25  # the progress page polls once a second; a tight loop here would take a core from the worker
TOKEN_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
TINY = ROOT / "models" / "easel-tiny"


def torch_capability() -> str:
    """PyTorch's name for the vector instructions it uses here (AVX2, AVX512, ...)."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def cpu_name() -> str:
    """lscpu's model name (the kernel's), else platform's."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or platform.machine()


@pytest.fixture(scope="module")
def sd15_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("EASEL_BENCH_DIR") or tmp_path_factory.mktemp("precision")) / "sd15-random"
    return build_sd15(folder)


def entry(name: str, path: Path, precision: str, size: int, steps: int, guidance: float) -> str:
    return f"""
[models.{name}]
kind = "sd"
path = "{path}"
precision = "{precision}"
default_width = {size}
default_height = {size}
default_steps = {steps}
default_guidance = {guidance}
sizes = [[{size}, {size}]]
max_steps = 50
job_timeout = 3600
"""


@pytest.fixture
def deployment_env(sd15_folder: Path, tmp_path: Path) -> dict[str, str]:
    """One catalog: each model twice, once per precision compared (and the bundled one once more, eager)."""
    from models.catalog import get_entry
    from models.openvino_unet import needs_optimizing, optimize
    from models.precision import resolve

    bundled = get_entry("easel-tiny", catalog_path=ROOT / "models" / "catalog.toml")
    if needs_optimizing(bundled, tmp_path):  # as `make run` does on a CPU (webapp/launch.py)
        optimize(bundled, tmp_path)
    fast = "auto" if resolve("auto", "cpu") != "fp32" else "bf16"
    catalog = tmp_path / "catalog.toml"
    catalog.write_text("".join(
        entry(f"sd15-{p}", sd15_folder, p, SIZE, STEPS, GUIDANCE) + entry(f"tiny-{p}", TINY, p, 64, 20, 2.0)
        for p in (fast, "fp32")) + entry("tiny-eager", TINY, "fp32", 64, 20, 2.0), encoding="utf-8")
    return {"EASEL_CATALOG": str(catalog), "EASEL_MODEL": f"tiny-{fast}", "EASEL_DEVICE": "cpu",
            "EASEL_BENCH_FAST": fast}


def session_for(base: str) -> requests.Session:
    session = requests.Session()
    token = TOKEN_RE.search(session.get(base + "/auth/login", timeout=10).text).group(1)
    session.post(base + "/auth/login", data={"email": "bench@example.com", "password": "correct horse",
                                             "csrf_token": token}, timeout=10)
    return session


def easel_once(base: str, session: requests.Session, model: str, prompt: str, size: int, steps: int,
               guidance: float, seed: int) -> tuple[float, str | None]:
    """POST the studio form, poll the JSON API until the picture is done: (seconds, recorded precision)."""
    token = TOKEN_RE.search(session.get(base + "/", timeout=10).text).group(1)
    began = time.perf_counter()
    response = session.post(base + "/generations", allow_redirects=False, timeout=10, data={
        "prompt": prompt, "negative_prompt": "", "model": model, "width": size, "height": size, "steps": steps,
        "guidance": guidance, "seed": seed, "num_images": 1, "style": "none", "csrf_token": token})
    assert response.status_code == 303, response.text[:500]
    api = base + "/api" + response.headers["Location"]
    while (state := session.get(api, timeout=10).json())["status"] not in {"succeeded", "failed", "canceled"}:
        time.sleep(POLL if size > 64 else 0.02)
    elapsed = time.perf_counter() - began
    assert state["status"] == "succeeded", state
    page = session.get(base + "/images/" + state["images"][0]["id"], timeout=10).text
    found = re.search(r'<td id="precision">(\w+)</td>', page)
    return elapsed, found.group(1) if found else None


def test_precision_speed_and_memory(app, live_server, make_user, workers, redis_url) -> None:
    from redis import Redis

    from models.precision import cpu_bf16_capability, resolve
    from webapp import worker_status

    fast = os.environ["EASEL_BENCH_FAST"]
    capability = cpu_bf16_capability()
    if capability is None:
        print(f"\nThis CPU ({torch_capability()}) has neither AVX-512 BF16 nor AMX (torch.cpu.get_capabilities()): "
              "auto is fp32 here. Comparing bf16 by name (emulated, expect it slower) with fp32: the speed targets "
              "are not measurable on this CPU (reported as skipped), the memory target is checked.")
    app.config.update(MAX_ACTIVE_PER_USER=100, DAILY_IMAGE_QUOTA=10_000)
    make_user("bench@example.com")
    procs = {p: workers.start(models=f"sd15-{p},tiny-{p}", extra_env={"EASEL_MAX_LOADED_MODELS": "2"})
             for p in (fast, "fp32")}
    eager = workers.start(models="tiny-eager", extra_env={"EASEL_OPENVINO": "0"})
    for proc in [*procs.values(), eager]:
        wait_for(lambda proc=proc: "Listening on" in proc.log_path.read_text(), timeout=1800,
                 message="the worker to load")
    session = session_for(live_server)

    def sd15(p: str, seed: int, steps: int = STEPS) -> tuple[float, str | None]:
        return easel_once(live_server, session, f"sd15-{p}", PROMPT, SIZE, steps, GUIDANCE, seed)

    def tiny(p: str, seed: int) -> tuple[float, str | None]:
        return easel_once(live_server, session, f"tiny-{p}", TINY_PROMPT, 64, 20, 2.0, seed)

    for p in procs:  # each worker's first pictures (oneDNN's kernels for these shapes) are not timed
        sd15(p, 0, steps=1), tiny(p, 0)
    tiny("eager", 0)
    times: dict[str, list[float]] = {f"{kind}_{p}": [] for kind in ("sd15", "tiny") for p in procs}
    times["tiny_eager"] = []
    recorded: dict[str, set] = {p: set() for p in procs}
    for seed in range(1, RUNS + 1):
        for p in (fast, "fp32") if seed % 2 else ("fp32", fast):  # A B, then B A: neither always goes first
            elapsed, precision = sd15(p, seed)
            times[f"sd15_{p}"].append(elapsed)
            recorded[p].add(precision)
        for n in range(3):
            for p in (fast, "fp32", "eager") if n % 2 else ("eager", "fp32", fast):
                elapsed, precision = tiny(p, seed * 10 + n)
                times[f"tiny_{p}"].append(elapsed)
                recorded.setdefault(p, set()).add(precision)
    reports = worker_status.read(Redis.from_url(redis_url), [proc.worker_name for proc in procs.values()])
    peak = {p: reports[proc.worker_name]["memory"]["peak_rss"] for p, proc in procs.items()}
    med = {key: statistics.median(values) for key, values in times.items()}
    results = {
        "cpu": cpu_name(), "cpus": os.cpu_count(), "torch_capability": torch_capability(), "bf16_capability": capability,
        "auto_resolves_to": resolve("auto", "cpu"), "compared": [fast, "fp32"],
        "recorded_precisions": {p: sorted(map(str, v)) for p, v in recorded.items()},
        "sd15": {"size": SIZE, "steps": STEPS, "guidance": GUIDANCE, "pairs": RUNS,
                 f"{fast}_median_s": round(med[f"sd15_{fast}"], 2), "fp32_median_s": round(med["sd15_fp32"], 2),
                 "speedup": round(med["sd15_fp32"] / med[f"sd15_{fast}"], 2)},
        "tiny": {"size": 64, "steps": 20, "guidance": 2.0, "pairs": 3 * RUNS,
                 f"{fast}_median_s": round(med[f"tiny_{fast}"], 3), "fp32_median_s": round(med["tiny_fp32"], 3),
                 "speedup": round(med["tiny_fp32"] / med[f"tiny_{fast}"], 2),
                 "fp32_eager_median_s": round(med["tiny_eager"], 3),
                 "speedup_over_fp32_eager": round(med["tiny_eager"] / med[f"tiny_{fast}"], 2)},
        "peak_rss_gib": {p: round(v / 2**30, 2) for p, v in peak.items()},
        "peak_rss_ratio": round(peak[fast] / peak["fp32"], 3),
        "raw_s": {key: [round(v, 3) for v in values] for key, values in times.items()},
    }
    print("\n" + json.dumps(results, indent=2))
    print(f"\nSD 1.5 size {SIZE}x{SIZE}, {STEPS} steps: {fast} is {results['sd15']['speedup']}x as fast as fp32 "
          f"per image (target >= 2.0); easel-tiny: {results['tiny']['speedup']}x (target >= 1.5; "
          f"{results['tiny']['speedup_over_fp32_eager']}x fp32 eager PyTorch's speed); "
          f"peak RSS {fast}/fp32 = {results['peak_rss_ratio']} (target <= 0.60)")
    if out := os.environ.get("EASEL_BENCH_OUT"):
        Path(out).write_text(json.dumps(results, indent=2))
    # each picture says its precision
    assert recorded == {fast: {resolve(fast, "cpu")}, "fp32": {"fp32"}, "eager": {"fp32"}}, recorded
    targets = [("peak RSS <= 60%", results["peak_rss_ratio"] <= 0.60)]  # memory: the same on any CPU
    if capability is not None:
        targets += [("sd15 >= 2.0x", results["sd15"]["speedup"] >= 2.0),
                    ("tiny >= 1.5x", results["tiny"]["speedup"] >= 1.5)]
    failed = [name for name, ok in targets if not ok]
    assert not failed, f"targets missed: {failed}; {results}"
    if capability is None:
        pytest.skip(f"bf16 speed targets (sd15 >= 2.0x, tiny >= 1.5x) not measurable on this CPU "
                    f"({torch_capability()}: no AVX-512 BF16 or AMX, bf16 is emulated); measured: sd15 "
                    f"{results['sd15']['speedup']}x, tiny {results['tiny']['speedup']}x; the memory target was checked")
