"""``python -m tests.support.oom_worker``: a generation worker whose UNet runs out of memory above a batch size.

A CPU machine has no GPU to exhaust, so this stands in for a small one: any UNet call on more than
``TEST_OOM_ABOVE_BATCH`` latents (default 2) raises ``torch.OutOfMemoryError`` as CUDA would. The
rest is the real worker.
"""
from __future__ import annotations

import os

import torch
from diffusers import UNet2DConditionModel

from jobs.worker import exit_at_once, main

LIMIT = int(os.environ.get("TEST_OOM_ABOVE_BATCH", "2"))
_forward = UNet2DConditionModel.forward


def limited_forward(self, sample: torch.Tensor, *args, **kwargs):
    """The UNet's forward, refusing batches above LIMIT the way a full GPU does."""
    if sample.shape[0] > LIMIT:
        raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate 2.00 GiB (test limit: a batch of "
                                     f"{sample.shape[0]} > {LIMIT})")
    return _forward(self, sample, *args, **kwargs)


UNet2DConditionModel.forward = limited_forward

if __name__ == "__main__":
    main()
    exit_at_once()
