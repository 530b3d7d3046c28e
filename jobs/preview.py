"""Cheap live previews: latents → RGB through a linear map fitted once per VAE.

Decoding with the VAE at every few steps costs as much as several denoising steps. Instead, each
worker fits a least-squares map from the VAE's latent channels to colours (encoding a few
synthetic colour pictures once), then turns the step's latents into a small picture with one
matrix product: the "latent approximation" preview that art sites show while a picture forms.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image as PILImage

FIT_IMAGES = 24
FIT_SIZE = 64
FIT_CHUNK = 4


def synthetic_pictures(count: int = FIT_IMAGES, size: int = FIT_SIZE, seed: int = 0) -> torch.Tensor:
    """Flat colours, blocks and gradients in [-1, 1], shape (count, 3, size, size): enough to span the colours."""
    rng = np.random.default_rng(seed)
    pictures = np.empty((count, size, size, 3), dtype=np.float32)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    for n in range(count):
        a, b = rng.random(3, dtype=np.float32), rng.random(3, dtype=np.float32)
        t = ramp[None, :, None] if n % 2 else ramp[:, None, None]
        pictures[n] = a * (1 - t) + b * t
        for _ in range(3):
            x, y = rng.integers(0, size - size // 4, 2)
            w, h = rng.integers(size // 8, size // 2, 2)
            pictures[n, y:y + h, x:x + w] = rng.random(3, dtype=np.float32)
    return torch.from_numpy(pictures * 2 - 1).permute(0, 3, 1, 2)


class LatentPreviewer:
    """Turns latents into a small RGB picture; fitted once for one VAE."""

    def __init__(self, vae):
        with torch.no_grad():
            images = synthetic_pictures().to(vae.device, vae.dtype)
            # a few pictures at a time: the encoder's activations for all of them at once would raise the worker's
            # peak memory by more than a real picture does (an SD 1.5 VAE: 0.15 GiB)
            latents = torch.cat([vae.encode(part).latent_dist.mean for part in images.split(FIT_CHUNK)])
            latents = latents * vae.config.scaling_factor
            target = F.adaptive_avg_pool2d(images.float(), latents.shape[-2:])
            channels = latents.shape[1]
            x = latents.float().permute(0, 2, 3, 1).reshape(-1, channels)
            x = torch.cat([x, torch.ones(len(x), 1, device=x.device)], dim=1)
            y = target.permute(0, 2, 3, 1).reshape(-1, 3)
            self.weights = torch.linalg.lstsq(x.cpu(), y.cpu()).solution  # (channels + 1, 3)

    def __call__(self, latents: torch.Tensor) -> PILImage.Image:
        """The first latent of the batch as a picture (latent resolution; scale it for display)."""
        z = latents[0].detach().float().cpu().permute(1, 2, 0)
        rgb = torch.cat([z, torch.ones(*z.shape[:2], 1)], dim=2) @ self.weights
        array = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
        return PILImage.fromarray(array)
