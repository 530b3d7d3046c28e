"""Timelapses: one cheap latent preview per step, kept small until the animated WebP is written.

The frames are the latent-to-colour previews (``jobs.preview``) at latent resolution, a few hundred
bytes each, so a run holds steps × images of those; they are scaled to the output size only while the
animation is encoded, and dropped with the recorder.
"""
from __future__ import annotations

import io

import torch
from PIL import Image as PILImage

from .preview import LatentPreviewer

STEP_MS = 100  # each denoising step on screen
FINAL_MS = 2000  # the finished picture stays before the loop starts again


class TimelapseRecorder:
    """Collects one small frame per step for each image of the batch."""

    def __init__(self, count: int, previewer: LatentPreviewer):
        self.previewer = previewer
        self.frames: list[list[PILImage.Image]] = [[] for _ in range(count)]

    def add(self, latents: torch.Tensor) -> None:
        """Record this step's latents (one frame per image of the batch)."""
        for index, frames in enumerate(self.frames):
            frames.append(self.previewer(latents[index:index + 1]))

    def encode(self, index: int, final: PILImage.Image) -> bytes:
        """The animated WebP of image ``index``: its step frames at the output's size, then the final image."""
        size = final.size
        steps = [frame.resize(size, PILImage.Resampling.BILINEAR) for frame in self.frames[index]]
        buffer = io.BytesIO()
        final = final.convert("RGB")
        first, rest = (steps[0], [*steps[1:], final]) if steps else (final, [])
        first.save(buffer, format="WEBP", save_all=True, append_images=rest, loop=0, quality=80, method=4,
                   duration=[STEP_MS] * len(steps) + [FINAL_MS], minimize_size=False, allow_mixed=False)
        return buffer.getvalue()
