"""Write trained components as a standard StableDiffusionPipeline folder with readable file modes."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextModel, CLIPTokenizer

from models.training.architecture import build_noise_scheduler
from models.training.tokenizer import save_tokenizer

KEEP = {"README.md", "eval.json", "eval_grid.png", "training.json"}


def inference_scheduler() -> DDIMScheduler:
    """The folder's default sampler: DDIM on the training schedule (zero-SNR, v-prediction, trailing)."""
    return DDIMScheduler.from_config(build_noise_scheduler().config)


def fix_modes(folder: Path) -> None:
    """Make the folder world-readable (safetensors are written 0600)."""
    folder.chmod(0o755)
    for p in folder.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)


def export_pipeline(out: Path, vae: AutoencoderKL, text_encoder: CLIPTextModel, unet: UNet2DConditionModel,
                    tokenizer: CLIPTokenizer) -> None:
    """Save the pipeline; the UNet is stored in fp16 (loads as fp32) to keep the folder under 25 MB."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():  # drop stale weights, keep the card and evaluation files
        if old.name not in KEEP and old.is_dir():
            for f in sorted(old.rglob("*"), reverse=True):
                f.unlink() if f.is_file() else f.rmdir()
            old.rmdir()
    pipe = StableDiffusionPipeline(
        vae=vae.float(), text_encoder=text_encoder.float(), tokenizer=tokenizer, unet=unet.float(),
        scheduler=inference_scheduler(), safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(str(out), safe_serialization=True)
    save_tokenizer(tokenizer, out / "tokenizer")
    weights = out / "unet" / "diffusion_pytorch_model.safetensors"
    state = {k: v.to(torch.float16).contiguous() for k, v in load_file(weights).items()}
    save_file(state, weights, metadata={"format": "pt"})
    fix_modes(out)
