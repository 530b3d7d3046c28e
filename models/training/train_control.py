"""Train the bundled scribble ControlNet for easel-tiny and export it as a diffusers folder (safetensors).

Run: python -m models.training.train_control --out models/controls/easel-scribble   (make train-control)
Continue from trained weights: --init models/controls/easel-scribble (with a lower rate; see the model card).
The base model (models/easel-tiny) stays frozen; the ControlNet starts as a copy of its UNet's encoder
(ControlNetModel.from_unet) with a small conditioning embedding. Control = the shape's outline drawn as a
scribble (scribbles.py), target = the render. Seeded and resumable: the dataset is cached and a checkpoint
is written to --work (default .train/easel-scribble) every --checkpoint-every steps.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from dataclasses import astuple
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextModel, CLIPTokenizer

from models.precision import cpu_bf16_capability
from models.training.architecture import build_noise_scheduler
from models.training.export import fix_modes
from models.training.scribbles import Placed, free_caption, scribble_dataset

os.environ.setdefault("HF_HUB_OFFLINE", "1")
CONDITIONING_CHANNELS = (16, 32, 64)  # two stride-2 convs: 64x64 control -> the 16x16 latent grid
# Parts of the ControlNet that do not come from the UNet: they learn at --new-lr, the copied encoder at --lr.
NEW_PARTS = ("controlnet_cond_embedding", "controlnet_down_blocks", "controlnet_mid_block")


def parse_args() -> argparse.Namespace:
    """Command-line options; the defaults are the committed recipe."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", type=Path, default=Path("models/easel-tiny"))
    p.add_argument("--out", type=Path, default=Path("models/controls/easel-scribble"))
    p.add_argument("--work", type=Path, default=Path(".train/easel-scribble"))
    p.add_argument("--init", type=Path, default=None,
                   help="continue from a trained ControlNet folder (fine-tune; a fresh optimiser, its own checkpoint "
                        "in --work) instead of a new copy of the UNet's encoder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--images", type=int, default=6000)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-4, help="the copied encoder's rate")
    p.add_argument("--new-lr", type=float, default=1e-3,
                   help="the rate of the parts that start from zero or scratch (zero convolutions, control encoder)")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--object-weight", type=float, default=8.0, help="extra loss weight on the object's area")
    p.add_argument("--caption-dropout", type=float, default=0.1)
    p.add_argument("--t-power", type=float, default=2.5, help="timesteps t = T(1 - u^p), biased to high noise")
    p.add_argument("--minutes", type=float, default=0.0,
                   help="if > 0: every 50 steps, fit the schedule (at most --steps) into this many minutes in all")
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="autocast for the forward passes; auto: bf16 on a CPU with AVX-512 BF16 or AMX, else fp32")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads; on a shared, busy 2-core machine one thread ran a step 5x faster than two")
    return p.parse_args()


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the base rate."""
    if step < warmup:
        return base * (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def log(work: Path, msg: str) -> None:
    """Print a line and append it to the run's log file."""
    line = f"{time.strftime('%H:%M:%S')} {msg}"
    print(line, flush=True)
    with open(work / "train.log", "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def build_controlnet(unet: UNet2DConditionModel) -> ControlNetModel:
    """The ControlNet: a copy of the UNet's encoder and middle, zero convolutions, a small control encoder."""
    return ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=CONDITIONING_CHANNELS)


@torch.no_grad()
def load_data(args: argparse.Namespace, vae: AutoencoderKL, device: str):
    """Render the scenes and scribbles, encode the renders to scaled latents (cached in the work folder)."""
    cache = args.work / f"data-{args.images}-{args.seed}.pt"
    if cache.exists():
        data = torch.load(cache)
        return data["latents"], data["scribbles"], data["masks"], [Placed(*row) for row in json.loads(data["placed"])]
    images, scribbles, sil, placed = scribble_dataset(args.images, args.seed, processes=os.cpu_count() or 1)
    out = []
    for i in range(0, len(images), 256):
        x = torch.from_numpy(images[i:i + 256]).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(device)
        out.append(vae.encode(x).latent_dist.mean.cpu() * vae.config.scaling_factor)
    latents = torch.cat(out)
    # Object area at latent resolution, grown by one cell (as train.py weights the loss).
    cov = torch.from_numpy(sil).float().view(-1, 16, 4, 16, 4).mean(dim=(2, 4))
    masks = F.max_pool2d(cov.unsqueeze(1), 3, stride=1, padding=1).squeeze(1)
    data = {"latents": latents, "scribbles": torch.from_numpy(scribbles), "masks": masks,
            "placed": json.dumps([astuple(p) for p in placed])}
    torch.save(data, cache)
    return latents, data["scribbles"], masks, placed


def export(out: Path, controlnet: ControlNetModel) -> None:
    """Save the ControlNet folder with fp16 weights (loads in any precision)."""
    out.mkdir(parents=True, exist_ok=True)
    controlnet.save_pretrained(str(out), safe_serialization=True)
    weights = out / "diffusion_pytorch_model.safetensors"
    state = {k: v.to(torch.float16).contiguous() for k, v in load_file(weights).items()}
    save_file(state, weights, metadata={"format": "pt"})
    config = out / "config.json"
    config.write_text(json.dumps({k: v for k, v in json.loads(config.read_text()).items() if k != "_name_or_path"},
                                 indent=2, sort_keys=True) + "\n", encoding="utf-8")
    fix_modes(out)


def main() -> None:
    """Train (resuming where a previous run stopped) and export."""
    args = parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cpu" and args.threads > 0:
        torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    log(args.work, f"device {device}, threads {torch.get_num_threads()}, args {vars(args)}")
    torch.manual_seed(args.seed)
    vae = AutoencoderKL.from_pretrained(args.base, subfolder="vae").to(device).eval()
    unet = UNet2DConditionModel.from_pretrained(args.base, subfolder="unet", torch_dtype=torch.float32).to(device)
    text_encoder = CLIPTextModel.from_pretrained(args.base, subfolder="text_encoder").to(device).eval()
    tokenizer = CLIPTokenizer.from_pretrained(args.base, subfolder="tokenizer")
    for frozen in (vae, unet, text_encoder):
        frozen.requires_grad_(False)
    unet.eval()
    latents, scribbles, masks, placed = load_data(args, vae, device)
    del vae
    log(args.work, f"data: {len(latents)} scenes, {(time.time() - started) / 60:.1f} min")
    if args.init is not None:
        # A fine-tune: the weights of a trained ControlNet (fp16 on disk) in fp32, a fresh optimiser and schedule.
        controlnet = ControlNetModel.from_pretrained(args.init, torch_dtype=torch.float32, use_safetensors=True)
        controlnet = controlnet.to(device).train()
        log(args.work, f"init from {args.init}")
    else:
        controlnet = build_controlnet(unet).to(device).train()
    params = [p for p in controlnet.parameters() if p.requires_grad]
    log(args.work, f"controlnet: {sum(p.numel() for p in params):,} parameters")
    new = NEW_PARTS
    fresh = [p for n, p in controlnet.named_parameters() if n.startswith(new)]
    copied = [p for n, p in controlnet.named_parameters() if not n.startswith(new)]
    opt = torch.optim.AdamW([{"params": copied, "base": args.lr}, {"params": fresh, "base": args.new_lr}],
                            lr=args.lr, weight_decay=0.0)
    # A fine-tune keeps its own checkpoint, so it never resumes (or overwrites) the run it starts from.
    ckpt = args.work / ("controlnet.pt" if args.init is None else f"finetune-{args.init.name}.pt")
    start, total = 0, args.steps
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device)
        controlnet.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start, total = state["step"], state["total"]
        started = state.get("started", started)  # the time budget counts from the first run's start
        log(args.work, f"resumed at step {start} of {total}")
    sched = build_noise_scheduler()
    alphas = sched.alphas_cumprod.to(device)
    n_t = sched.config.num_train_timesteps
    bf16 = args.precision == "bf16" or (args.precision == "auto" and device == "cpu" and cpu_bf16_capability() is not None)
    log(args.work, f"autocast bf16: {bf16}")
    t0, step = time.time(), start
    window = t0
    while step < total:
        if args.minutes > 0 and step > start and step % 50 == 0:
            # Fit the schedule into the time budget from the last 50 steps' speed (a shared machine's load
            # changes): the cosine schedule stretches or shrinks with it, never past --steps.
            per_step = (time.time() - window) / 50
            fit = min(args.steps, step + max(1, int((args.minutes * 60 - (time.time() - started)) / per_step)))
            if fit != total:
                total = fit
                log(args.work, f"{per_step:.3f}s/step, {total} steps fit the budget")
            window = time.time()
        g = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        rng = random.Random(args.seed * 1_000_003 + step)
        idx = torch.randint(0, len(latents), (args.batch,), generator=g)
        captions = [free_caption(placed[i], rng) if rng.random() >= args.caption_dropout else ""
                    for i in idx.tolist()]
        ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length,
                        truncation=True, return_tensors="pt").input_ids.to(device)
        with torch.no_grad():
            text = text_encoder(ids).last_hidden_state
        x0 = latents[idx].to(device)
        cond = scribbles[idx].float().div(255).unsqueeze(1).expand(-1, 3, -1, -1).to(device)
        noise = torch.randn(x0.shape, generator=g).to(device)
        u = torch.rand(args.batch, generator=g)
        t = (n_t * (1 - u ** args.t_power)).long().clamp(0, n_t - 1).to(device)
        a = alphas[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        target = a.sqrt() * noise - (1 - a).sqrt() * x0  # v
        for group in opt.param_groups:
            group["lr"] = lr_at(step, total, group["base"], args.warmup)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            down, mid = controlnet(xt, t, text, controlnet_cond=cond, return_dict=False)
            pred = unet(xt, t, text, down_block_additional_residuals=down,
                        mid_block_additional_residual=mid).sample.float()
        weight = 1 + args.object_weight * masks[idx].to(device).unsqueeze(1)
        loss = (weight * (pred - target) ** 2).mean() / weight.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if step % 10 == 0:
            log(args.work, f"step {step}/{total} loss {loss.item():.4f} {(time.time() - t0) / (step - start):.3f}s/step")
        if step % args.checkpoint_every == 0 or step == total:
            tmp = ckpt.with_suffix(".tmp")
            torch.save({"model": controlnet.state_dict(), "opt": opt.state_dict(), "step": step, "total": total,
                        "started": started}, tmp)
            tmp.replace(ckpt)
    minutes = (time.time() - started) / 60
    export(args.out, controlnet.cpu().eval())
    info = {"device": device, "threads": torch.get_num_threads(), "steps": total, "minutes_this_run": round(minutes, 1),
            "resumed_from_step": start, "args": {k: str(v) for k, v in vars(args).items()}}
    record = args.out / "training.json"
    runs = json.loads(record.read_text()).get("runs", []) if record.exists() else []
    record.write_text(json.dumps({"runs": [*runs, info]}, indent=2) + "\n", encoding="utf-8")
    record.chmod(0o644)
    log(args.work, f"exported to {args.out} after {minutes:.1f} min")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
