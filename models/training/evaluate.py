"""Score the bundled model on held-out prompts by image analysis; save a labelled grid and eval.json.

Run: python -m models.training.evaluate              (scores at catalog defaults and at 50 steps / 7.5)
     python -m models.training.evaluate --speed      (timings on this machine's CPU)
     python -m models.training.evaluate --precision  (bf16 against fp32: PSNR of same-seed pictures, scores, VAE)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from models.training.data import Scene, eval_caption, eval_scenes, render, render_dataset
from models.training.measure import Reading, read_image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
MEASURES = ("colour", "background", "position", "shape")


def score(readings: list[Reading], scenes: list[Scene]) -> dict[str, float]:
    """Fraction of pictures where each measure matches the scene."""
    return {m: round(sum(getattr(r, m) == getattr(s, m) for r, s in zip(readings, scenes, strict=True)) / len(scenes), 4)
            for m in MEASURES}


def check_measures(count: int = 1000) -> dict[str, dict[str, float]]:
    """How well the measures read the training renders and the held-out scenes' own renders."""
    images, scenes = render_dataset(count, seed=99)
    held = eval_scenes()
    rng = random.Random(5)
    return {"training_renders": score([read_image(a) for a in images], scenes),
            "held_out_renders": score([read_image(render(s, rng)) for s in held], held)}


def generate(pipe, scenes: list[Scene], steps: int, guidance: float, batch: int) -> list[Image.Image]:
    """Generate one image per scene, seeded by its index."""
    out: list[Image.Image] = []
    device = pipe.device
    for i in range(0, len(scenes), batch):
        chunk = scenes[i:i + batch]
        gens = [torch.Generator(device).manual_seed(i + k) for k in range(len(chunk))]
        out += pipe([eval_caption(s) for s in chunk], num_inference_steps=steps, guidance_scale=guidance,
                    generator=gens).images
    return out


def save_grid(images: list[Image.Image], scenes: list[Scene], readings: list[Reading], path: Path,
              cols: int = 8, rows: int = 4, cell: int = 128) -> None:
    """A labelled grid: each picture upscaled, its prompt below, ticks for what the analysis confirmed."""
    label_h = 40
    grid = Image.new("RGB", (cols * cell, rows * (cell + label_h)), "white")
    draw = ImageDraw.Draw(grid)
    for k, (img, sc, rd) in enumerate(list(zip(images, scenes, readings, strict=True))[: cols * rows]):
        x, y = (k % cols) * cell, (k // cols) * (cell + label_h)
        grid.paste(img.resize((cell, cell), Image.Resampling.LANCZOS), (x, y))
        words = eval_caption(sc).split(", ")[0].split()
        marks = "".join(("+" if getattr(rd, m) == getattr(sc, m) else "-") for m in MEASURES)
        lines = [" ".join(words[:3]), " ".join(words[3:]), f"on {sc.background}  [{marks}]"]
        for j, text in enumerate(lines):
            draw.text((x + 3, y + cell + 1 + j * 12), text, fill="black")
    grid.save(path)


def speed(pipe, steps: int, guidance: float) -> dict[str, float]:
    """CPU timings: one image at defaults, per denoising step, and images/s at batch 1 and 4."""
    prompt = "a red star in the top left, blue background"
    run = lambda n, s: pipe([prompt] * n, num_inference_steps=s, guidance_scale=guidance,  # noqa: E731
                            generator=torch.Generator().manual_seed(0))
    run(1, 2)
    one = statistics.median(_timed(lambda: run(1, steps)) for _ in range(5))
    few = statistics.median(_timed(lambda: run(1, 2)) for _ in range(5))
    four = statistics.median(_timed(lambda: run(4, steps)) for _ in range(3))
    per_step = (one - few) / (steps - 2)
    return {"seconds_per_image": round(one, 3), "seconds_per_step": round(per_step, 4),
            "images_per_second_batch1": round(1 / one, 2), "images_per_second_batch4": round(4 / four, 2),
            "steps": steps, "guidance": guidance, "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads()}


def psnr(a: Image.Image, b: Image.Image) -> float:
    """Peak signal-to-noise ratio of two 8-bit RGB pictures, in dB (99 when identical)."""
    import numpy as np

    mse = ((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2).mean()
    return 99.0 if mse == 0 else round(float(10 * np.log10(255 ** 2 / mse)), 2)


def vae_decode_check(vae32, easel_vae) -> dict[str, float | int]:
    """A smooth two-colour gradient through the VAE, decoded three ways against the fp32 decoder.

    ``bf16``: the decoder computing in bf16. ``easel``: easel_vae as a bf16 pipeline has it (its decoder's weights
    stored in bf16, its arithmetic fp32: ``models.fp32_decode``). Banding shows as fewer distinct levels along the
    gradient and as a lower PSNR against the fp32 decode.
    """
    import copy

    import numpy as np

    ramp = torch.linspace(-0.9, 0.9, 256)
    picture = torch.stack([ramp[None, :].expand(256, 256), ramp[:, None].expand(256, 256) * 0.5,
                           -ramp[None, :].expand(256, 256) * 0.7])[None]
    with torch.inference_mode():
        latents = vae32.encode(picture).latent_dist.mean
        decoded = {"fp32": vae32.decode(latents).sample,
                   "bf16": copy.deepcopy(vae32).to(torch.bfloat16).decode(latents.to(torch.bfloat16)).sample.float(),
                   "easel": easel_vae.decode(latents.to(torch.bfloat16)).sample.float()}
    pictures = {k: Image.fromarray(((v[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy())
                for k, v in decoded.items()}
    levels = {k: len(np.unique(np.asarray(v)[128, :, 0])) for k, v in pictures.items()}
    colours = {k: len(v.getcolors(maxcolors=1 << 20)) for k, v in pictures.items()}
    return {"psnr_bf16_vs_fp32": psnr(pictures["bf16"], pictures["fp32"]),
            "psnr_easel_vs_fp32": psnr(pictures["easel"], pictures["fp32"]),
            "red_levels_along_row_fp32": levels["fp32"], "red_levels_along_row_bf16": levels["bf16"],
            "red_levels_along_row_easel": levels["easel"],
            "distinct_colours_fp32": colours["fp32"], "distinct_colours_bf16": colours["bf16"],
            "distinct_colours_easel": colours["easel"]}


def precision_check(entry, scenes: list[Scene], batch: int) -> dict:
    """bf16 (auto's choice on a CPU with AVX-512 BF16 or AMX) against fp32 at the catalog defaults, same seeds."""
    from models.loader import load_pipeline

    steps, guidance = entry.default_steps, entry.default_guidance
    out: dict = {"steps": steps, "guidance": guidance, "prompts": len(scenes)}
    images, vaes = {}, {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        pipe = load_pipeline(entry, device="cpu", dtype=dtype)  # bf16: the UNet and text encoder, VAE decode in fp32
        vaes[name] = pipe.vae
        began = time.perf_counter()
        images[name] = generate(pipe, scenes, steps, guidance, batch)
        out[f"seconds_{name}"] = round(time.perf_counter() - began, 1)
        out[name] = score([read_image(im) for im in images[name]], scenes)
        if name == "bf16":
            out["vae_decode"] = vae_decode_check(vaes["fp32"], vaes["bf16"])
    values = sorted(psnr(a, b) for a, b in zip(images["fp32"], images["bf16"], strict=True))
    out["psnr_db"] = {"min": values[0], "median": statistics.median(values),
                      "mean": round(statistics.fmean(values), 2), "below_30": sum(v < 30 for v in values)}
    out["score_drop_points"] = {m: round(100 * (out["fp32"][m] - out["bf16"][m]), 2) for m in MEASURES}
    return out


def weights_digest(folder: Path) -> str:
    """A short fingerprint of a pipeline folder's weights, so results of older weights are not kept."""
    h = hashlib.sha256()
    for f in sorted(folder.glob("*/*.safetensors")):
        h.update(f.relative_to(folder).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def load_results(path: Path, digest: str) -> dict:
    """The folder's eval.json without the entries measured on other weights."""
    old = json.loads(path.read_text()) if path.exists() else {}
    results = {"weights": digest}
    if old.get("weights") == digest:  # same weights: keep what was measured (other settings, speed)
        results.update({k: v for k, v in old.items() if k != "weights"})
    return results


def _timed(fn) -> float:
    """Seconds one call takes."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    """Evaluate and record results in the model folder."""
    from models.catalog import get_entry
    from models.loader import load_pipeline

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="easel-tiny")
    p.add_argument("--device", default=None)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--speed", action="store_true", help="measure CPU speed instead of scores")
    p.add_argument("--precision", action="store_true", help="compare bf16 with fp32 instead of scoring")
    p.add_argument("--limit", type=int, default=252, help="score only the first N held-out prompts")
    p.add_argument("--default-only", action="store_true", help="score only the catalog default settings")
    p.add_argument("--extra", default="", help="more settings to score, e.g. '20:3,20:7.5'")
    args = p.parse_args()
    entry = get_entry(args.model)
    folder = entry.path
    results_path = folder / "eval.json"
    results = load_results(results_path, weights_digest(folder))
    if args.speed:
        torch.set_num_threads(os.cpu_count() or 1)
        pipe = load_pipeline(entry, device="cpu")
        results["speed_cpu"] = speed(pipe, entry.default_steps, entry.default_guidance)
        print(json.dumps(results["speed_cpu"], indent=2))
    elif args.precision:
        torch.set_num_threads(os.cpu_count() or 1)
        results["precision_cpu"] = precision_check(entry, eval_scenes()[: args.limit], args.batch)
        print(json.dumps(results["precision_cpu"], indent=2))
    else:
        pipe = load_pipeline(entry, device=args.device, dtype=torch.float32)  # score as the CPU runs it
        results["measure_check"] = check_measures()
        print("measure check", results["measure_check"], flush=True)
        scenes = eval_scenes()[: args.limit]
        settings = {"catalog_default": (entry.default_steps, entry.default_guidance)}
        if not args.default_only:
            settings["diffusers_default"] = (50, 7.5)
        for spec in filter(None, args.extra.split(",")):
            s, g = spec.split(":")
            settings[f"steps{s}_guidance{g}"] = (int(s), float(g))
        results.setdefault("scores", {})
        for name, (steps, guidance) in settings.items():
            t = time.time()
            images = generate(pipe, scenes, steps, guidance, args.batch)
            readings = [read_image(im) for im in images]
            results["scores"][name] = {"steps": steps, "guidance": guidance, "prompts": len(scenes),
                                       "device": str(pipe.device),
                                       "scheduler": type(pipe.scheduler).__name__, **score(readings, scenes)}
            print(name, results["scores"][name], f"{time.time() - t:.0f}s", flush=True)
            if name == "catalog_default":
                save_grid(images, scenes, readings, folder / "eval_grid.png")
    results_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for f in (results_path, folder / "eval_grid.png"):
        if f.exists():
            f.chmod(0o644)


if __name__ == "__main__":
    main()
