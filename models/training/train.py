"""Train the bundled model from scratch: VAE, decoder fine-tuning (guidance, then shapes), then text encoder + UNet;
export a diffusers folder.

Run: python -m models.training.train --out models/easel-tiny
     python -m models.training.train --decoder-only --out models/easel-tiny   (just the decoder phase, in place)
     python -m models.training.train --shapes-only --out models/easel-tiny    (just sharpen_shapes, in place)
Seeded and resumable: checkpoints go to --work (default .train/easel-tiny) every few hundred steps.
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
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from models.training import architecture as arch
from models.training.data import Scene, caption, foreground_masks, render_dataset
from models.training.export import export_pipeline, fix_modes
from models.training.tokenizer import build_tokenizer

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def parse_args() -> argparse.Namespace:
    """Command-line options; the defaults are the committed recipe."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("models/easel-tiny"))
    p.add_argument("--work", type=Path, default=Path(".train/easel-tiny"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--images", type=int, default=40_000)
    p.add_argument("--vae-steps", type=int, default=1500)
    p.add_argument("--vae-batch", type=int, default=32)
    p.add_argument("--vae-lr", type=float, default=5e-4)
    p.add_argument("--vae-from", type=Path, default=None,
                   help="reuse the VAE of an exported pipeline folder instead of training one")
    p.add_argument("--decoder-steps", type=int, default=1000,
                   help="decoder fine-tuning on overshot latents (0: skip, e.g. with --vae-from of a tuned VAE)")
    p.add_argument("--decoder-lr", type=float, default=2e-4)
    p.add_argument("--decoder-only", action="store_true",
                   help="only fine-tune the decoder of the pipeline in --out, once (UNet and text encoder kept)")
    p.add_argument("--decoder-overshoot", type=float, default=1.5,
                   help="largest overshoot k in z + k (z - mean) the decoder learns to undo")
    p.add_argument("--decoder-shift", type=float, default=0.2,
                   help="std of a per-channel colour drift added to those latents, in latent standard deviations")
    p.add_argument("--shape-steps", type=int, default=400,
                   help="decoder fine-tuning on outlines of shapes placed anywhere (0: skip; see sharpen_shapes)")
    p.add_argument("--shape-lr", type=float, default=3e-4)
    p.add_argument("--shape-scenes", type=int, default=4000)
    p.add_argument("--shape-object-weight", type=float, default=8.0, help="extra loss weight on the object's area")
    p.add_argument("--shape-outline-weight", type=float, default=24.0,
                   help="extra loss weight on a band about the object's outline")
    p.add_argument("--shapes-only", action="store_true",
                   help="only run sharpen_shapes on the decoder of the pipeline in --out, once")
    p.add_argument("--unet-steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--object-weight", type=float, default=8.0, help="extra loss weight on the object's area")
    p.add_argument("--caption-dropout", type=float, default=0.1)
    p.add_argument("--t-power", type=float, default=2.0,
                   help="timestep sampling t = T(1 - u^p): p > 1 favours high noise, where the layout is decided")
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--unet-minutes", type=float, default=0.0,
                   help="if > 0: after 100 UNet steps, cut --unet-steps to what fits this many minutes")
    p.add_argument("--deep-unet", action="store_true", help="the 4-level UNet experiment (architecture.py)")
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    return p.parse_args()


def lr_at(step: int, total: int, base: float, warmup: int = 200) -> float:
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


def load_data(args: argparse.Namespace) -> tuple[np.ndarray, list[Scene]]:
    """Render the training pictures once (cached in the work folder with their scenes)."""
    cache = args.work / f"data-{args.images}-{args.seed}.npz"
    if cache.exists():
        with np.load(cache) as npz:
            images, fields = npz["images"], npz["scenes"].tolist()
        return images, [Scene(*row) for row in fields]
    images, scenes = render_dataset(args.images, args.seed, processes=os.cpu_count() or 1)
    np.savez(cache, images=images, scenes=np.array([astuple(sc) for sc in scenes]))
    return images, scenes


def save_ckpt(path: Path, **state: object) -> None:
    """Write a checkpoint atomically."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def resume(args: argparse.Namespace, phase: str, model: torch.nn.Module, opt: torch.optim.Optimizer,
           device: str) -> int:
    """Load a phase's checkpoint (work/<phase>.pt), if any, into model and optimiser; the step to go on from."""
    ckpt = args.work / f"{phase}.pt"
    if not ckpt.exists():
        return 0
    state = torch.load(ckpt, map_location=device)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    log(args.work, f"{phase}: resumed at step {state['step']}")
    return state["step"]


def train_vae(args: argparse.Namespace, images: np.ndarray, device: str) -> AutoencoderKL:
    """Train the autoencoder (L1 + L2 + a small KL term) and return it."""
    torch.manual_seed(args.seed)
    vae = arch.build_vae().to(device)
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    ckpt, start = args.work / "vae.pt", resume(args, "vae", vae, opt, device)
    data = torch.from_numpy(images)
    t0 = time.time()
    for step in range(start, args.vae_steps):
        g = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        idx = torch.randint(0, len(data), (args.vae_batch,), generator=g)
        x = (data[idx].permute(0, 3, 1, 2).float() / 127.5 - 1).to(device)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.vae_steps, args.vae_lr, warmup=100)
        dist = vae.encode(x).latent_dist
        eps = torch.randn(dist.mean.shape, generator=g).to(device)
        z = dist.mean + dist.std * eps
        rec = vae.decode(z).sample
        kl = dist.kl().mean() / z[0].numel()
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x) + 1e-4 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if (step + 1) % 50 == 0:
            psnr = -10 * math.log10(max(F.mse_loss(rec, x).item() / 4, 1e-10))
            log(args.work, f"vae step {step + 1}/{args.vae_steps} loss {loss.item():.4f} psnr {psnr:.1f} dB "
                f"kl {kl.item():.3f} {(time.time() - t0) / (step + 1 - start):.3f}s/step")
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == args.vae_steps:
            save_ckpt(ckpt, model=vae.state_dict(), opt=opt.state_dict(), step=step + 1)
    return vae.eval()


@torch.no_grad()
def encode_latents(args: argparse.Namespace, vae: AutoencoderKL, images: np.ndarray, device: str) -> torch.Tensor:
    """Encode every training picture to its latent mean (cached)."""
    cache = args.work / "latents.pt"
    if cache.exists():
        return torch.load(cache)
    out = []
    for i in range(0, len(images), 256):
        x = torch.from_numpy(images[i:i + 256]).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(device)
        out.append(vae.encode(x).latent_dist.mean.cpu())
    latents = torch.cat(out)
    torch.save(latents, cache)
    return latents


def overshoot(z: torch.Tensor, mean: torch.Tensor, drift: float, most: float, g: torch.Generator) -> torch.Tensor:
    """Latents as guidance leaves them: z + k (z - mean) + shift, k up to ``most`` and uneven across channels, a
    per-channel drift of std ``drift``; the first quarter of the batch left as encoded, so plain decoding stays sharp."""
    n, channels = z.shape[0], z.shape[1]
    k = torch.rand(n, 1, 1, 1, generator=g) * most
    k = k * (0.5 + torch.rand(n, channels, 1, 1, generator=g))  # channels overshoot unevenly
    shift = drift * torch.randn(n, channels, 1, 1, generator=g)
    k[: n // 4], shift[: n // 4] = 0, 0
    return z + k.to(z.device) * (z - mean) + shift.to(z.device)


def harden_decoder(args: argparse.Namespace, vae: AutoencoderKL, images: np.ndarray, latents: torch.Tensor,
                   device: str) -> AutoencoderKL:
    """Fine-tune the decoder to map overshot latents back to their pictures; the encoder stays frozen.

    Classifier-free guidance at high scales (diffusers' default is 7.5) ends sampling with latents pushed
    20-100% past the data, away from the unconditional mean; the plain decoder turns those into other hues
    (orange -> red, black -> teal). Trained on z + k (z - mean) + shift, k up to --decoder-overshoot per
    channel and a small per-channel drift, it draws the palette colour instead. The encoder's latents, and
    so the UNet's training data, do not change.
    """
    torch.manual_seed(args.seed + 2)
    params = list(vae.post_quant_conv.parameters()) + list(vae.decoder.parameters())
    opt = torch.optim.AdamW(params, lr=args.decoder_lr, weight_decay=0.0)
    ckpt, start = args.work / "decoder.pt", resume(args, "decoder", vae, opt, device)
    vae.requires_grad_(False)
    for prm in params:
        prm.requires_grad_(True)
    mean = latents.mean(0).to(device)  # what the unconditional branch predicts from pure noise
    drift = args.decoder_shift * latents.std().item()
    data = torch.from_numpy(images)
    t0 = time.time()
    for step in range(start, args.decoder_steps):
        g = torch.Generator().manual_seed(args.seed * 1_000_003 + 900_000 + step)
        idx = torch.randint(0, len(data), (args.vae_batch,), generator=g)
        x = (data[idx].permute(0, 3, 1, 2).float() / 127.5 - 1).to(device)
        z = latents[idx].to(device)
        rec = vae.decode(overshoot(z, mean, drift, args.decoder_overshoot, g)).sample
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.decoder_steps, args.decoder_lr, warmup=50)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % 50 == 0:
            log(args.work, f"decoder step {step + 1}/{args.decoder_steps} loss {loss.item():.4f} "
                f"{(time.time() - t0) / (step + 1 - start):.3f}s/step")
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == args.decoder_steps:
            save_ckpt(ckpt, model=vae.state_dict(), opt=opt.state_dict(), step=step + 1)
    vae.requires_grad_(True)
    return vae.eval()


def sharpen_shapes(args: argparse.Namespace, vae: AutoencoderKL, device: str) -> AutoencoderKL:
    """Fine-tune the decoder so small shapes keep their outline (a small star decoded as a blob reads as a circle).

    Encoding the held-out renders and decoding them again read only a third of the small stars as stars: the
    decoder, trained on the whole picture's error, rounds off the points of a shape a few pixels across. Here it
    learns from renders of shapes placed anywhere at any size (the scribble control's scenes, whose exact
    silhouettes are free), with the loss weighted on the object (``--shape-object-weight``) and far more on a
    band about its outline (``--shape-outline-weight``), stars and small shapes drawn twice as often; the
    overshot latents of ``harden_decoder`` are kept in the mix so guidance stays safe. The encoder is frozen, so
    the latents, and the UNet and control trained on them, stay valid.
    """
    from models.training.scribbles import scribble_dataset

    renders, _, silhouettes, placed = scribble_dataset(args.shape_scenes, args.seed, held=False,
                                                       processes=os.cpu_count() or 1)  # the same scenes
    x_all = torch.from_numpy(renders).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        latents = torch.cat([vae.encode(x_all[i:i + 256].to(device)).latent_dist.mean.cpu()
                             for i in range(0, len(x_all), 256)])
    sil = torch.from_numpy(silhouettes).float()[:, None]
    grown = F.max_pool2d(sil, 3, 1, 1)
    outline = F.max_pool2d(sil, 5, 1, 2) + F.max_pool2d(-sil, 5, 1, 2)  # dilated minus eroded: about the edge
    chance = torch.tensor([(2.0 if p.shape == "star" else 1.0) * (2.0 if p.r < 0.15 else 1.0) for p in placed])
    mean, drift = latents.mean(0), args.decoder_shift * latents.std().item()
    params = list(vae.post_quant_conv.parameters()) + list(vae.decoder.parameters())
    vae.requires_grad_(False)
    for prm in params:
        prm.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=args.shape_lr, weight_decay=0.0)
    batch, t0 = args.vae_batch, time.time()
    for step in range(args.shape_steps):
        g = torch.Generator().manual_seed(args.seed * 1_000_003 + 555 + step)
        idx = torch.multinomial(chance, batch, replacement=True, generator=g)
        x, z = x_all[idx].to(device), latents[idx].to(device)
        weight = (1 + args.shape_object_weight * grown[idx] + args.shape_outline_weight * outline[idx]).to(device)
        latent = overshoot(z, mean.to(device), drift, args.decoder_overshoot, g)
        for group in opt.param_groups:  # a warm-up of 30 steps under a cosine from the first step to a tenth
            group["lr"] = args.shape_lr * min(1.0, (step + 1) / 30) * (
                0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.shape_steps)))
        rec = vae.decode(latent).sample
        loss = ((rec - x).abs() * weight).mean() / weight.mean() + ((rec - x) ** 2 * weight).mean() / weight.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % 50 == 0:
            log(args.work, f"shapes step {step + 1}/{args.shape_steps} loss {loss.item():.4f} "
                f"{(time.time() - t0) / (step + 1):.3f}s/step")
    vae.requires_grad_(True)
    return vae.eval()


def train_unet(args: argparse.Namespace, latents: torch.Tensor, masks: torch.Tensor, scenes: list[Scene],
               tokenizer: CLIPTokenizer, device: str) -> tuple[CLIPTextModel, UNet2DConditionModel]:
    """Train text encoder + UNet jointly on v-prediction with caption dropout; return the EMA copies."""
    torch.manual_seed(args.seed + 1)
    text_encoder = arch.build_text_encoder(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id).to(device)
    unet = arch.build_unet(deep=args.deep_unet).to(device)
    ema_te = arch.build_text_encoder(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id).to(device)
    ema_unet = arch.build_unet(deep=args.deep_unet).to(device)
    ema_te.load_state_dict(text_encoder.state_dict())
    ema_unet.load_state_dict(unet.state_dict())
    params = list(unet.parameters()) + list(text_encoder.parameters())
    ema_params = list(ema_unet.parameters()) + list(ema_te.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    sched = arch.build_noise_scheduler()
    alphas = sched.alphas_cumprod.to(device)
    ckpt, start = args.work / "unet.pt", 0
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device)
        for key, mod in (("unet", unet), ("te", text_encoder), ("ema_unet", ema_unet), ("ema_te", ema_te)):
            mod.load_state_dict(state[key])
        opt.load_state_dict(state["opt"])
        start = state["step"]
        log(args.work, f"unet: resumed at step {start}")
    t0 = time.time()
    step = start
    while step < args.unet_steps:
        if args.unet_minutes > 0 and step == start + 100:  # fit the schedule into the time budget
            per_step = (time.time() - t0) / 100
            fit = start + 100 + int((args.unet_minutes * 60 - (time.time() - t0)) / per_step)
            if fit < args.unet_steps:
                args.unet_steps = max(fit, start + 101)
                log(args.work, f"unet: {per_step:.3f}s/step, cutting to {args.unet_steps} steps")
        g = torch.Generator().manual_seed(args.seed * 1_000_003 + 500_000 + step)
        rng = random.Random(args.seed * 1_000_003 + step)
        idx = torch.randint(0, len(latents), (args.batch,), generator=g)
        captions = [caption(scenes[i], rng) if rng.random() >= args.caption_dropout else "" for i in idx.tolist()]
        ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length,
                        truncation=True, return_tensors="pt").input_ids.to(device)
        x0 = latents[idx].to(device) * args.scaling_factor
        noise = torch.randn(x0.shape, generator=g).to(device)
        n_t = sched.config.num_train_timesteps
        u = torch.rand(args.batch, generator=g)
        t = (n_t * (1 - u ** args.t_power)).long().clamp(0, n_t - 1).to(device)
        a = alphas[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        target = a.sqrt() * noise - (1 - a).sqrt() * x0  # v
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.unet_steps, args.lr)
        pred = unet(xt, t, text_encoder(ids).last_hidden_state).sample
        # The object covers a few percent of the picture; weighting its area makes shape and place count.
        weight = 1 + args.object_weight * masks[idx].to(device).unsqueeze(1)
        loss = (weight * (pred - target) ** 2).mean() / weight.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, params, 1 - decay)
        if (step + 1) % 50 == 0:
            log(args.work, f"unet step {step + 1}/{args.unet_steps} loss {loss.item():.4f} "
                f"{(time.time() - t0) / (step + 1 - start):.3f}s/step")
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == args.unet_steps:
            save_ckpt(ckpt, unet=unet.state_dict(), te=text_encoder.state_dict(), ema_unet=ema_unet.state_dict(),
                      ema_te=ema_te.state_dict(), opt=opt.state_dict(), step=step + 1)
        step += 1
    return ema_te.eval(), ema_unet.eval()


def tune_exported_decoder(args: argparse.Namespace, images: np.ndarray, device: str, started: float) -> None:
    """--decoder-only / --shapes-only: fine-tune the decoder of the exported pipeline in --out, write the VAE back."""
    args.work = args.work / ("shapes-only" if args.shapes_only else "decoder-only")  # never a full run's files
    args.work.mkdir(exist_ok=True)
    vae = AutoencoderKL.from_pretrained(args.out, subfolder="vae").to(device).eval()
    if args.shapes_only:
        vae = sharpen_shapes(args, vae, device)
        part, keys = "shape fine-tuning of the decoder (--shapes-only)", (
            "shape_steps", "shape_lr", "shape_scenes", "shape_object_weight", "shape_outline_weight",
            "decoder_overshoot", "decoder_shift", "vae_batch")
    else:
        vae = harden_decoder(args, vae, images, encode_latents(args, vae, images, device), device)
        part, keys = "decoder fine-tuning (--decoder-only)", (
            "decoder_steps", "decoder_lr", "decoder_overshoot", "decoder_shift", "images")
    vae.cpu().save_pretrained(str(args.out / "vae"), safe_serialization=True)
    config = args.out / "vae" / "config.json"  # as a fresh export: no trace of where it was loaded from
    config.write_text(json.dumps({k: v for k, v in json.loads(config.read_text()).items() if k != "_name_or_path"},
                                 indent=2, sort_keys=True) + "\n", encoding="utf-8")
    fix_modes(args.out / "vae")
    record = args.out / "training.json"
    info = json.loads(record.read_text()) if record.exists() else {}
    info.setdefault("runs", []).append({
        "part": part, "device": device, "threads": torch.get_num_threads(),
        "minutes": round((time.time() - started) / 60, 1), "args": {k: str(getattr(args, k)) for k in keys}})
    record.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    record.chmod(0o644)
    log(args.work, f"decoder of {args.out} fine-tuned after {(time.time() - started) / 60:.1f} min")


def main() -> None:
    """Run the whole recipe end to end (resuming where a previous run stopped)."""
    args = parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    log(args.work, f"device {device}, threads {torch.get_num_threads()}, args {vars(args)}")
    if args.shapes_only:
        tune_exported_decoder(args, np.empty(0), device, started)
        return
    images, scenes = load_data(args)
    log(args.work, f"data: {len(images)} pictures")
    if args.decoder_only:
        tune_exported_decoder(args, images, device, started)
        return
    tokenizer = build_tokenizer()
    if args.vae_from is not None:
        vae = AutoencoderKL.from_pretrained(args.vae_from, subfolder="vae").to(device).eval()
        log(args.work, f"vae: reused from {args.vae_from}")
    else:
        vae = train_vae(args, images, device)
    latents = encode_latents(args, vae, images, device)
    args.scaling_factor = float(1.0 / latents.std())
    log(args.work, f"latents {tuple(latents.shape)}, scaling factor {args.scaling_factor:.4f}")
    if args.decoder_steps > 0:
        vae = harden_decoder(args, vae, images, latents, device)
    if args.shape_steps > 0:
        vae = sharpen_shapes(args, vae, device)
    masks = torch.from_numpy(foreground_masks(images, scenes)).float()
    text_encoder, unet = train_unet(args, latents, masks, scenes, tokenizer, device)
    vae.register_to_config(scaling_factor=args.scaling_factor)
    minutes = (time.time() - started) / 60
    export_pipeline(args.out, vae.cpu(), text_encoder.cpu(), unet.cpu(), tokenizer)
    info = {"device": device, "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
            "minutes_this_run": round(minutes, 1), "args": {k: str(v) for k, v in vars(args).items()}}
    (args.out / "training.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    (args.out / "training.json").chmod(0o644)
    log(args.work, f"exported to {args.out} after {minutes:.1f} min")


if __name__ == "__main__":
    main()
