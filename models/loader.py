"""Load a catalog model into a diffusers pipeline once, on the best device (workers and tests only)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from models.catalog import ModelEntry, ModelError, ModelUnavailable, get_entry, hf_snapshot, load_catalog

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline

LOAD_COUNT = 0  # real loads in this process; a worker uses it to prove it loads only once
_CACHE: dict[tuple[str, str], DiffusionPipeline] = {}
_LOCK = threading.Lock()


def pick_device(preference: str = "auto") -> str:
    """The device to run on: ``preference`` is auto|cpu|cuda|mps (``EASEL_DEVICE``); auto prefers CUDA."""
    import torch

    choice = (preference or "auto").lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {choice!r} was asked for but CUDA is not available")
    if choice not in ("cpu", "mps") and not choice.startswith("cuda"):
        raise ModelError(f"unknown device {choice!r}; use auto, cpu, cuda or mps")
    return choice


def pick_dtype(device: str) -> torch.dtype:
    """bf16 (or fp16) on CUDA, fp16 on MPS, fp32 on CPU."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float16 if device == "mps" else torch.float32


def _source(entry: ModelEntry) -> str:
    """The local folder (or cached hub id) from_pretrained should read."""
    if entry.path is not None and (entry.path / "model_index.json").is_file():
        return str(entry.path)
    if entry.hf_id and hf_snapshot(entry.hf_id) is not None:
        return entry.hf_id
    raise ModelUnavailable(entry.unavailable_reason() or f"model {entry.name!r} has no local files")


def load_pipeline(entry: ModelEntry, device: str | None = None, dtype: torch.dtype | None = None) -> DiffusionPipeline:
    """Load an entry's pipeline from local files only, on device (default pick_device()), ready to call."""
    global LOAD_COUNT
    import diffusers

    reason = entry.unavailable_reason()
    if reason:
        raise ModelUnavailable(reason)
    device = pick_device(device or "auto")
    dtype = dtype or pick_dtype(device)
    common = {"dtype": dtype, "local_files_only": True}
    try:
        if entry.kind == "sd-single-file":
            pipe = diffusers.StableDiffusionPipeline.from_single_file(
                str(entry.path), config=entry.hf_id, safety_checker=None, requires_safety_checker=False, **common)
        elif entry.kind == "sdxl":
            pipe = diffusers.StableDiffusionXLPipeline.from_pretrained(_source(entry), **common)
        else:
            pipe = diffusers.StableDiffusionPipeline.from_pretrained(
                _source(entry), safety_checker=None, requires_safety_checker=False, **common)
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"model {entry.name!r} could not be loaded from local files: {exc}") from exc
    if entry.scheduler:
        scheduler_cls = getattr(diffusers, entry.scheduler, None)
        if scheduler_cls is None:
            raise ModelError(f"model {entry.name!r}: unknown scheduler {entry.scheduler!r} in the catalog")
        if not isinstance(pipe.scheduler, scheduler_cls):
            pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config)
    if device.startswith("cuda"):
        from diffusers.models.attention_processor import AttnProcessor2_0

        pipe.unet.set_attn_processor(AttnProcessor2_0())
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(device)
    LOAD_COUNT += 1
    return pipe


def get_pipeline(name: str, device: str = "auto", catalog_path: str | None = None) -> DiffusionPipeline:
    """The pipeline for a catalog name, loaded on first use and then reused."""
    entry = get_entry(name, load_catalog(catalog_path))
    device = pick_device(device)
    with _LOCK:
        key = (entry.name, device)
        if key not in _CACHE:
            _CACHE[key] = load_pipeline(entry, device)
        return _CACHE[key]


def img2img_from(pipe: DiffusionPipeline) -> DiffusionPipeline:
    """An image-to-image pipeline sharing the loaded weights (no second load)."""
    from diffusers import AutoPipelineForImage2Image

    img2img = AutoPipelineForImage2Image.from_pipe(pipe)
    img2img.set_progress_bar_config(disable=True)
    return img2img
