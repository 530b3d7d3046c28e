"""Train the bundled x4 upscaler (a Real-ESRGAN Compact net) on renders of easel-tiny's world.

Targets are 256x256 renders of the scenes the bundled model learnt (models/training/data.py); inputs are
the same pictures at 64x64 (the bundled model's size), made three ways: Lanczos (how the training
pictures were made), bicubic, and Lanczos followed by a round trip through the bundled model's own VAE,
whose decoder paints every picture the model makes. Training scenes use only the training triples; the
evaluation uses the held-out triples, which neither this net nor the bundled model ever saw.

    python -m models.training.train_upscaler --out models/upscalers/easel-compact-x4
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

from models.training.data import COLOURS, eval_scenes, random_scene, render
from models.upscalers import import_spandrel

HR_SIZE, LR_SIZE, SCALE = 256, 64, 4
KINDS = ("lanczos", "bicubic", "vae")
KIND_WEIGHTS = (0.6, 0.2, 0.2)


def parse_args() -> argparse.Namespace:
    """Command-line options; the defaults are what made the shipped file."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("models/upscalers/easel-compact-x4"))
    p.add_argument("--vae", type=Path, default=Path("models/easel-tiny/vae"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--images", type=int, default=1200, help="training renders")
    p.add_argument("--eval-images", type=int, default=32, help="held-out renders")
    p.add_argument("--num-feat", type=int, default=32)
    p.add_argument("--num-conv", type=int, default=8)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=32, help="input patch side; targets are 4x that")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--minutes", type=float, default=8.0, help="wall-time budget for the training loop")
    p.add_argument("--max-steps", type=int, default=100_000)
    return p.parse_args()


def downscale(hr: np.ndarray, resample: Image.Resampling) -> np.ndarray:
    """(N, 256, 256, 3) uint8 to (N, 64, 64, 3) with one Pillow filter."""
    return np.stack([np.asarray(Image.fromarray(im).resize((LR_SIZE, LR_SIZE), resample)) for im in hr])


@torch.no_grad()
def vae_round_trip(lr: np.ndarray, vae_dir: Path, batch: int = 64) -> np.ndarray:
    """Encode and decode 64x64 pictures with the bundled VAE, giving them its decoder's look."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(str(vae_dir)).eval()
    out = []
    for i in range(0, len(lr), batch):
        x = torch.from_numpy(lr[i:i + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1
        y = vae.decode(vae.encode(x).latent_dist.mode()).sample
        out.append(((y.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def make_pairs(scenes: list, rng: random.Random | None, vae_dir: Path) -> dict[str, np.ndarray]:
    """High-resolution targets and their three kinds of low-resolution inputs."""
    hr = np.stack([np.asarray(render(sc, rng, size=HR_SIZE)) for sc in scenes])
    lanczos = downscale(hr, Image.Resampling.LANCZOS)
    return {"hr": hr, "lanczos": lanczos, "bicubic": downscale(hr, Image.Resampling.BICUBIC),
            "vae": vae_round_trip(lanczos, vae_dir)}


def object_boxes(hr: np.ndarray, scenes: list) -> np.ndarray:
    """Per picture, the input-pixel box (top, left, bottom, right) around the shape, to crop where edges are."""
    bg = np.array([COLOURS[sc.background] for sc in scenes], dtype=np.int16)[:, None, None, :]
    fg = np.abs(hr.astype(np.int16) - bg).sum(axis=3) > 30
    boxes = []
    for mask in fg:
        ys, xs = np.nonzero(mask)
        boxes.append((ys.min() // SCALE, xs.min() // SCALE, ys.max() // SCALE, xs.max() // SCALE) if len(ys)
                     else (0, 0, LR_SIZE - 1, LR_SIZE - 1))
    return np.array(boxes)


def sample_batch(data: dict[str, np.ndarray], boxes: np.ndarray, size: int, patch: int,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random input/target crops, mostly over the shape's outline, with flips and quarter turns."""
    xs, ys = [], []
    for _ in range(size):
        i = rng.integers(len(boxes))
        kind = KINDS[rng.choice(len(KINDS), p=KIND_WEIGHTS)]
        top, left, bottom, right = boxes[i]
        cy = rng.integers(top, bottom + 1) if rng.random() < 0.85 else rng.integers(LR_SIZE)
        cx = rng.integers(left, right + 1) if rng.random() < 0.85 else rng.integers(LR_SIZE)
        y0 = int(np.clip(cy - patch // 2, 0, LR_SIZE - patch))
        x0 = int(np.clip(cx - patch // 2, 0, LR_SIZE - patch))
        lr = data[kind][i, y0:y0 + patch, x0:x0 + patch]
        hr = data["hr"][i, y0 * SCALE:(y0 + patch) * SCALE, x0 * SCALE:(x0 + patch) * SCALE]
        turns, flip = int(rng.integers(4)), bool(rng.integers(2))
        lr, hr = np.rot90(lr, turns), np.rot90(hr, turns)
        if flip:
            lr, hr = lr[:, ::-1], hr[:, ::-1]
        xs.append(np.ascontiguousarray(lr))
        ys.append(np.ascontiguousarray(hr))
    to_tensor = lambda a: torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    return to_tensor(xs), to_tensor(ys)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 pictures."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity (Gaussian window 11, sigma 1.5, per RGB channel, averaged) of uint8 pictures."""
    g = torch.exp(-((torch.arange(11) - 5.0) ** 2) / (2 * 1.5 ** 2))
    window = (g[:, None] * g[None, :] / g.sum() ** 2).expand(3, 1, 11, 11)
    x, y = (torch.from_numpy(v.astype(np.float32)).permute(2, 0, 1)[None] for v in (a, b))
    blur = lambda t: F.conv2d(t, window, groups=3)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(s.mean())


@torch.inference_mode()
def evaluate(model: torch.nn.Module, data: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Mean PSNR/SSIM on held-out renders for the net, Lanczos and bicubic, per kind of input."""
    results: dict[str, dict[str, float]] = {}
    model.eval()
    for kind in ("lanczos", "vae"):
        scores: dict[str, list[tuple[float, float]]] = {"net": [], "lanczos": [], "bicubic": []}
        for lr, hr in zip(data[kind], data["hr"], strict=True):
            x = torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255
            net = (model(x).clamp(0, 1)[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
            image = Image.fromarray(lr)
            for name, out in (("net", net),
                              ("lanczos", np.asarray(image.resize((HR_SIZE, HR_SIZE), Image.Resampling.LANCZOS))),
                              ("bicubic", np.asarray(image.resize((HR_SIZE, HR_SIZE), Image.Resampling.BICUBIC)))):
                scores[name].append((psnr(out, hr), ssim(out, hr)))
        for name, vals in scores.items():
            results[f"{kind}-input/{name}"] = {"psnr": round(float(np.mean([v[0] for v in vals])), 2),
                                                "ssim": round(float(np.mean([v[1] for v in vals])), 4)}
    model.train()
    return results


@torch.inference_mode()
def seconds_per_image(model: torch.nn.Module, repeats: int = 10) -> float:
    """Wall time of one 64x64 -> 256x256 upscale on one CPU thread."""
    x = torch.rand(1, 3, LR_SIZE, LR_SIZE)
    model.eval()
    model(x)
    start = time.perf_counter()
    for _ in range(repeats):
        model(x)
    return (time.perf_counter() - start) / repeats


def main() -> None:
    """Render, train within the time budget, evaluate on held-out renders and save the safetensors file."""
    args = parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    rng = random.Random(args.seed)
    train_scenes = [random_scene(rng) for _ in range(args.images)]
    train = make_pairs(train_scenes, rng, args.vae)
    boxes = object_boxes(train["hr"], train_scenes)
    held = make_pairs(eval_scenes(args.eval_images, seed=args.seed + 1234), None, args.vae)
    prepared = time.perf_counter() - started
    print(f"rendered {args.images} training and {args.eval_images} held-out pictures in {prepared:.0f}s", flush=True)

    compact = import_spandrel().architectures.Compact.Compact
    model = compact(num_in_ch=3, num_out_ch=3, num_feat=args.num_feat, num_conv=args.num_conv, upscale=SCALE)
    # Start as plain nearest upscaling (the net adds a residual to it), so training only ever improves on it.
    torch.nn.init.zeros_(model.body[-1].weight)
    torch.nn.init.zeros_(model.body[-1].bias)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    np_rng = np.random.default_rng(args.seed)
    budget, step, loop_start = args.minutes * 60, 0, time.perf_counter()
    while step < args.max_steps and (elapsed := time.perf_counter() - loop_start) < budget:
        for group in optimiser.param_groups:  # cosine decay over the wall-time budget
            group["lr"] = args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * elapsed / budget)))
        x, y = sample_batch(train, boxes, args.batch, args.patch, np_rng)
        # MSE, not L1: L1's gradient is as strong on the flat background as on the edges, which held the
        # net at nearest upscaling; MSE puts the weight on the edges, where the pixels are wrong.
        loss = F.mse_loss(model(x), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        step += 1
        if step % 200 == 0:
            print(f"step {step} loss {loss.item():.4f} {elapsed / 60:.1f} min", flush=True)
    trained = time.perf_counter() - loop_start

    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    descriptor = import_spandrel().ModelLoader().load_from_file(weights)  # the file must be what spandrel sees
    assert descriptor.architecture.id == "Compact" and descriptor.scale == SCALE, descriptor.architecture
    scores = evaluate(model, held)
    report = {
        "architecture": "Compact (SRVGGNetCompact, spandrel 0.4.2)", "num_feat": args.num_feat,
        "num_conv": args.num_conv, "parameters": sum(p.numel() for p in model.parameters()),
        "file_bytes": weights.stat().st_size, "steps": step, "batch": args.batch, "patch": args.patch,
        "train_images": args.images, "eval_images": args.eval_images, "seed": args.seed,
        "prepare_seconds": round(prepared), "train_seconds": round(trained),
        "seconds_per_64_to_256": round(seconds_per_image(model), 4), "held_out": scores,
    }
    (args.out / "training.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
