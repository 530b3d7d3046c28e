"""Load catalog models into diffusers pipelines from local safetensors only, and keep a bounded few warm.

Workers and tests only: this imports torch and diffusers lazily, inside the functions.
"""

from __future__ import annotations

import gc
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from models.catalog import PIPELINE_CLASSES, ModelEntry, ModelError, ModelUnavailable, get_entry, hf_snapshot

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline

LOAD_COUNT = 0  # real loads in this process; a worker uses it to prove it loads only once
DEFAULT_MAX_LOADED = 2  # pipelines kept warm per process (EASEL_MAX_LOADED_MODELS in the issue)
_LOADED: OrderedDict[tuple[str, str], DiffusionPipeline] = OrderedDict()  # least recently used first
_LOCK = threading.Lock()


def pick_device(preference: str = "auto", configured: str | None = None) -> str:
    """The device to run on: preference, or when "auto" the configured one (EASEL_DEVICE); auto prefers CUDA."""
    import torch

    choice = (configured or "auto") if preference == "auto" else preference
    choice = choice.lower()
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
    """The local folder (or cached hub snapshot) from_pretrained should read."""
    if entry.path is not None and (entry.path / "model_index.json").is_file():
        return str(entry.path)
    if entry.hf_id and (snapshot := hf_snapshot(entry.hf_id, entry.hf_cache)) is not None:
        return str(snapshot)
    raise ModelUnavailable(entry.unavailable_reason() or f"model {entry.name!r} has no local files")


def _left_out(folder: str) -> dict[str, None]:
    """Components a folder's model_index.json leaves empty (SD3 without T5, SD without a safety checker)."""
    index = json.loads((Path(folder) / "model_index.json").read_text(encoding="utf-8"))
    empty = {key: None for key, value in index.items() if not key.startswith("_") and value == [None, None]}
    if "safety_checker" in index:  # Easel shows every image; the checker costs memory and time
        empty.update(safety_checker=None, requires_safety_checker=False)
    return empty


def _from_files(entry: ModelEntry, dtype: torch.dtype) -> DiffusionPipeline:
    """Read the entry's weights: a single safetensors file with local configs, or a diffusers folder."""
    import diffusers

    local = {"dtype": dtype, "local_files_only": True}
    if entry.single_file:
        cls = getattr(diffusers, PIPELINE_CLASSES[entry.architecture])
        extra = {"safety_checker": None, "requires_safety_checker": False} if entry.kind == "sd-single-file" else {}
        # config= a local folder: diffusers reads every component config from it and never asks the Hub
        return cls.from_single_file(str(entry.path), config=entry.config_source(), **extra, **local)
    source = _source(entry)
    cls = diffusers.AutoPipelineForText2Image if entry.kind == "auto" else getattr(
        diffusers, PIPELINE_CLASSES[entry.architecture])
    return cls.from_pretrained(source, use_safetensors=True, **_left_out(source), **local)


def load_pipeline(entry: ModelEntry, device: str | None = None, dtype: torch.dtype | None = None) -> DiffusionPipeline:
    """Load an entry's pipeline from local safetensors only, on device (default pick_device()), ready to call."""
    global LOAD_COUNT
    import diffusers

    reason = entry.unavailable_reason()
    if reason:
        raise ModelUnavailable(reason)
    device = pick_device(device or "auto")
    dtype = dtype or pick_dtype(device)
    try:
        pipe = _from_files(entry, dtype)
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"model {entry.name!r} could not be loaded from local safetensors files "
                               f"(pickled .bin/.ckpt weights are refused): {exc}") from exc
    if entry.scheduler:
        scheduler_cls = getattr(diffusers, entry.scheduler, None)
        if scheduler_cls is None:
            raise ModelError(f"model {entry.name!r}: unknown scheduler {entry.scheduler!r} in the catalog")
        if not isinstance(pipe.scheduler, scheduler_cls):
            pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config)
    if device.startswith("cuda") and getattr(pipe, "unet", None) is not None:
        from diffusers.models.attention_processor import AttnProcessor2_0

        pipe.unet.set_attn_processor(AttnProcessor2_0())
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(device)
    LOAD_COUNT += 1
    return pipe


def _free(device: str) -> None:
    """Return an evicted pipeline's memory: Python's, and CUDA's cached blocks."""
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def _cuda_free_bytes(device: str) -> int:
    """Free memory on a CUDA device."""
    import torch

    return torch.cuda.mem_get_info(torch.device(device))[0]


def _evict_lru() -> None:
    """Drop the least recently used pipeline (the lock is held)."""
    (_, device), pipe = _LOADED.popitem(last=False)
    del pipe
    _free(device)


def get_pipeline(name: str | None = None, device: str | None = None, max_loaded: int = DEFAULT_MAX_LOADED,
                 memory_headroom: int = 0, catalog_path: Path | str | None = None,
                 configured_device: str | None = None, catalog: dict[str, ModelEntry] | None = None) -> DiffusionPipeline:
    """The pipeline for a catalog name (default model when None), loaded on first use and kept warm.

    At most max_loaded pipelines stay loaded, the least recently used going first; on CUDA, older ones
    are also dropped until memory_headroom bytes are free before a new one loads.
    """
    entry = get_entry(name, catalog=catalog, catalog_path=catalog_path)
    device = pick_device(device or "auto", configured_device)
    key = (entry.name, device)
    with _LOCK:
        if key in _LOADED:
            _LOADED.move_to_end(key)
            return _LOADED[key]
        while _LOADED and len(_LOADED) >= max(1, max_loaded):
            _evict_lru()
        if device.startswith("cuda") and memory_headroom:
            while _LOADED and _cuda_free_bytes(device) < memory_headroom:
                _evict_lru()
        _LOADED[key] = load_pipeline(entry, device)
        return _LOADED[key]


def loaded_models() -> list[tuple[str, str]]:
    """(name, device) of the warm pipelines, least recently used first."""
    with _LOCK:
        return list(_LOADED)


def img2img_from(pipe: DiffusionPipeline) -> DiffusionPipeline:
    """An image-to-image pipeline sharing the loaded weights (no second load)."""
    from diffusers import AutoPipelineForImage2Image

    img2img = AutoPipelineForImage2Image.from_pipe(pipe)
    img2img.set_progress_bar_config(disable=True)
    return img2img
