"""LoRA adapters on a warm pipeline: each file loaded once per pipeline, switched per request without a reload."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from models.catalog import LoraEntry, ModelError, ModelUnavailable, load_loras

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline
    from diffusers.schedulers.scheduling_utils import SchedulerMixin

MAX_LORAS = 3


def pipeline_kind(pipe: DiffusionPipeline) -> str:
    """The base architecture of a loaded pipeline (sd, sdxl, sd3), from its class."""
    name = type(pipe).__name__
    for prefix, kind in (("StableDiffusionXL", "sdxl"), ("StableDiffusion3", "sd3"), ("StableDiffusion", "sd")):
        if name.startswith(prefix):
            return kind
    return name


def loaded_adapters(pipe: DiffusionPipeline) -> set[str]:
    """Names of the adapters already loaded into the pipeline's components."""
    if not hasattr(pipe, "get_list_adapters"):
        return set()
    return {name for names in pipe.get_list_adapters().values() for name in names}


def _check(pipe: DiffusionPipeline, requested: Sequence[tuple[str, float | None]],
           catalog: dict[str, LoraEntry]) -> list[tuple[LoraEntry, float]]:
    """The catalog entries and scales for a request, refusing unknown, absent or unfitting adapters."""
    if len(requested) > MAX_LORAS:
        raise ModelError(f"at most {MAX_LORAS} LoRAs may be combined, {len(requested)} were asked for")
    kind = pipeline_kind(pipe)
    chosen = []
    for name, scale in requested:
        if name not in catalog:
            raise ModelError(f"unknown LoRA {name!r}; the catalog lists: {', '.join(catalog) or 'none'}")
        lora = catalog[name]
        if reason := lora.unavailable_reason():
            raise ModelUnavailable(reason)
        if kind not in lora.base_kinds:
            raise ModelError(f"LoRA {name!r} fits {', '.join(lora.base_kinds)} models, not this {kind} model")
        chosen.append((lora, lora.default_scale if scale is None else float(scale)))
    return chosen


def _set_scheduler(pipe: DiffusionPipeline, name: str | None, base: SchedulerMixin) -> None:
    """Use the named scheduler class (from the model's own config), or restore the model's own (base) when None."""
    import diffusers

    if name is None:
        pipe.scheduler = base
        return
    cls = getattr(diffusers, name, None)
    if cls is None:
        raise ModelError(f"unknown scheduler {name!r} in the LoRA catalog")
    if not isinstance(pipe.scheduler, cls):
        pipe.scheduler = cls.from_config(base.config)


def apply_loras(pipe: DiffusionPipeline, requested: Sequence[tuple[str, float | None]], *,
                base_scheduler: SchedulerMixin, catalog: dict[str, LoraEntry] | None = None,
                catalog_path: Path | str | None = None) -> list[LoraEntry]:
    """Activate exactly these (name, scale) adapters (scale None: the catalog default) on a warm pipeline.

    Each adapter file is read once per pipeline (`load_lora_weights(adapter_name=...)`); later requests
    only switch with `set_adapters`, and a request with none calls `disable_lora`. A LoRA that implies a
    scheduler (LCM) gets it; without one the model's own scheduler (``base_scheduler``, which the caller keeps
from before any LoRA) comes back. Returns the entries used,
    so the caller can apply their trigger words and step and guidance ranges.
    """
    catalog = catalog if catalog is not None else load_loras(catalog_path)
    chosen = _check(pipe, requested, catalog)
    loaded = loaded_adapters(pipe)
    for lora, _ in chosen:
        if lora.name not in loaded:
            with warnings.catch_warnings():  # peft warns on every adapter after the first: several are the point
                warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
                pipe.load_lora_weights(str(lora.path), adapter_name=lora.name)
    if chosen:
        pipe.enable_lora()
        pipe.set_adapters([lora.name for lora, _ in chosen], adapter_weights=[scale for _, scale in chosen])
    elif loaded:
        pipe.disable_lora()
    schedulers = {lora.scheduler for lora, _ in chosen if lora.scheduler}
    if len(schedulers) > 1:
        raise ModelError(f"these LoRAs need different schedulers ({', '.join(sorted(schedulers))})")
    _set_scheduler(pipe, schedulers.pop() if schedulers else None, base_scheduler)
    return [lora for lora, _ in chosen]
