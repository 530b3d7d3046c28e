"""Choose and prepare the pipeline for a generation: device settings, LoRAs, supported arguments, out of memory.

The generation job asks this module for a ready pipeline and calls it through ``call``; the loader
(``models/loader.py``) keeps the warm pipelines, this module decides how each is set up on its device.
"""
from __future__ import annotations

import gc
import logging
import resource
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from flask import current_app

from models import loader
from models.capabilities import supported_kwargs
from models.catalog import LoraEntry
from models.lora import apply_loras
from webapp import services, worker_status

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

    from webapp.tables import Generation

log = logging.getLogger(__name__)

TILE_ABOVE_PIXELS = 1024 * 1024  # decode larger pictures tile by tile: the VAE's memory grows with the area
LOAD_SECONDS: dict[str, float] = {}  # seconds each model's last load took in this process (admin page)
OUT_OF_MEMORY = "The GPU ran out of memory"


@dataclass(frozen=True)
class DevicePlan:
    """How a pipeline runs on its device; chosen by ``plan_for`` from the device and the settings alone."""

    device: str
    offload: bool = False  # enable_model_cpu_offload: components visit the GPU one at a time (small GPUs)
    compile: bool = False  # torch.compile the denoiser (CUDA only; the first job pays the compile)
    attention_slicing: bool = False  # MPS: less memory per attention at little cost (diffusers' Mac advice)
    cuda: bool = False


def plan_for(device: str, offload: bool = False, compile: bool = False) -> DevicePlan:
    """The set-up for a device: CUDA may offload or compile (not both), MPS slices attention, CPU runs as loaded.

    The dtype (fp16/bf16 on CUDA, fp16 on MPS, fp32 on CPU) and PyTorch SDPA are the loader's choice.
    """
    if device.startswith("cuda"):
        # an offloaded model moves between devices on every call, which torch.compile would recompile for
        return DevicePlan(device=device, offload=offload, compile=compile and not offload, cuda=True)
    if device == "mps":
        return DevicePlan(device=device, attention_slicing=True)
    return DevicePlan(device=device)


def vae_modes(plan: DevicePlan, width: int, height: int, num_images: int) -> tuple[bool, bool]:
    """(tiling, slicing) of the VAE for one call: tile large pictures, slice batches, on GPUs only."""
    if not (plan.cuda or plan.device == "mps"):
        return False, False  # the CPU has the memory; tiles would only add seams and time
    return width * height > TILE_ABOVE_PIXELS, num_images > 1


def _denoiser_name(pipe: DiffusionPipeline) -> str | None:
    """The component that runs every step: the UNet, or the transformer (SD3 and later)."""
    return next((name for name in ("unet", "transformer") if getattr(pipe, name, None) is not None), None)


def prepare(pipe: DiffusionPipeline, plan: DevicePlan) -> None:
    """Apply a device plan to a freshly loaded pipeline, once."""
    if getattr(pipe, "_easel_plan", None) == plan:
        return
    if plan.offload:
        pipe.enable_model_cpu_offload(device=plan.device)
    if plan.compile and (name := _denoiser_name(pipe)):
        setattr(pipe, name, torch.compile(getattr(pipe, name)))
    if plan.attention_slicing:
        pipe.enable_attention_slicing()
    pipe._easel_plan = plan


def _plan() -> DevicePlan:
    config = current_app.config
    device = loader.pick_device(config["EASEL_DEVICE"])
    return plan_for(device, offload=config["EASEL_OFFLOAD"], compile=config["EASEL_COMPILE"])


def pipeline_for(name: str) -> DiffusionPipeline:
    """The warm pipeline of a catalog model, loaded within this worker's bounds on first use and prepared."""
    config = current_app.config
    plan = _plan()
    loads = loader.LOAD_COUNT
    began = time.perf_counter()
    pipe = loader.get_pipeline(name, device=plan.device, max_loaded=config["EASEL_MAX_LOADED_MODELS"],
                               memory_headroom=config["EASEL_GPU_HEADROOM_MB"] << 20,
                               catalog_path=config["EASEL_CATALOG"],
                               configured_precision=config["EASEL_PRECISION"])
    if loader.LOAD_COUNT != loads:
        LOAD_SECONDS[name] = round(time.perf_counter() - began, 2)
        log.info("loaded %s on %s in %s in %.1f s", name, plan.device, loader.precision_of(pipe),
                 LOAD_SECONDS[name])
    prepare(pipe, plan)
    return pipe


def precision_of(name: str) -> str | None:
    """fp32, bf16 or fp16: what this worker's warm pipeline of a model computes in (None when not loaded)."""
    return loader.loaded_precision(name, _plan().device)


def ready(generation: Generation) -> tuple[DiffusionPipeline, str, list[LoraEntry]]:
    """The pipeline with exactly the generation's LoRAs active, and the prompt with their trigger words."""
    pipe = pipeline_for(generation.model)
    requested = [(name, scale) for name, scale in (generation.loras or [])]
    used = apply_loras(pipe, requested, catalog_path=current_app.config["EASEL_CATALOG"])
    return pipe, with_trigger_words(generation.prompt, used), used


def with_trigger_words(prompt: str, loras: list[LoraEntry]) -> str:
    """The prompt followed by each LoRA trigger word it does not already contain."""
    missing = [word for lora in loras for word in lora.trigger_words if word.lower() not in prompt.lower()]
    return ", ".join([prompt, *missing]) if missing else prompt


def call(pipe: DiffusionPipeline, **kwargs: Any) -> Any:
    """Call the pipeline with the arguments it accepts; out of memory frees what it can and says so.

    Arguments the pipeline lacks (a negative prompt, guidance) are dropped. A ``torch.OutOfMemoryError``
    is raised again only after leaving the failed call's frames, so their tensors can be freed first
    and the worker is ready for the next job.
    """
    plan = getattr(pipe, "_easel_plan", None) or DevicePlan(device="cpu")
    tiling, slicing = vae_modes(plan, kwargs.get("width") or 0, kwargs.get("height") or 0,
                                kwargs.get("num_images_per_prompt") or 1)
    vae = getattr(pipe, "vae", None)
    if vae is not None and hasattr(vae, "enable_tiling"):
        (vae.enable_tiling if tiling else vae.disable_tiling)()
        (vae.enable_slicing if slicing else vae.disable_slicing)()
    try:
        return pipe(**supported_kwargs(pipe, kwargs))
    except torch.OutOfMemoryError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else ""
    free_memory(plan.device)
    raise torch.OutOfMemoryError(f"{OUT_OF_MEMORY} ({detail})" if detail else OUT_OF_MEMORY)


def free_memory(device: str) -> None:
    """Return the memory of a failed call: Python's garbage, and CUDA's cached blocks."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def memory_bytes(device: str) -> dict[str, int]:
    """This process's peak resident memory, and on CUDA the memory torch holds there."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    found = {"peak_rss": peak}
    if device.startswith("cuda"):
        found["cuda_allocated"] = torch.cuda.memory_allocated()
        found["cuda_reserved"] = torch.cuda.memory_reserved()
    return found


def publish(worker_name: str, serves: list[str]) -> None:
    """Tell the admin pages which models this worker serves and holds warm, their load times and memory."""
    plan = _plan()
    loaded = [{"name": name, "device": device, "load_seconds": LOAD_SECONDS.get(name),
               "precision": loader.loaded_precision(name, device)}
              for name, device in loader.loaded_models()]
    worker_status.publish(services.redis(), worker_name, {
        "serves": serves, "loaded": loaded, "device": plan.device, "memory": memory_bytes(plan.device),
        "max_loaded": current_app.config["EASEL_MAX_LOADED_MODELS"], "loads": loader.LOAD_COUNT})
