"""Load catalog models into diffusers pipelines from local safetensors only, and keep a bounded few warm.

Workers and tests only: this imports torch and diffusers lazily, inside the functions.
"""

from __future__ import annotations

import gc
import json
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from models import allocator
from models.catalog import PIPELINE_CLASSES, ModelEntry, ModelError, ModelUnavailable, get_entry, hf_snapshot
from models.precision import choose as choose_precision
from models.precision import dtype_of, name_of

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


def pick_dtype(device: str, precision: str | None = None, configured: str | None = None) -> torch.dtype:
    """The dtype for a catalog precision (default auto) and a worker's EASEL_PRECISION on a device.

    Auto: bf16 (or fp16) on CUDA, fp16 on MPS, bf16 on a CPU with AVX-512 BF16 or AMX, else fp32.
    """
    return dtype_of(choose_precision(precision, configured, device))


def precision_of(pipe: DiffusionPipeline) -> str:
    """fp32, bf16 or fp16: what a loaded pipeline's denoiser (UNet or transformer) computes in."""
    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    return name_of(denoiser.dtype if denoiser is not None else pipe.dtype)


def decode_in_fp32(pipe: DiffusionPipeline) -> None:
    """Make the VAE's decoder (and its post-quantisation conv) compute in fp32 beside a bf16 pipeline.

    A bf16 decoder bands smooth gradients (docs/precision.md has the measurement). Its weights stay in bf16,
    read as fp32 layer by layer (``models.fp32_decode``), so the arithmetic is fp32's at half the memory. Its
    inputs are cast by a forward pre-hook, so any pipeline's ``vae.decode`` works unchanged; called again after
    ``from_pipe`` (which casts every component), it puts the storage back in bf16.
    """
    vae = getattr(pipe, "vae", None)
    if vae is None:
        return
    from models.fp32_decode import store_bf16_compute_fp32

    for part in (getattr(vae, name, None) for name in FP32_DECODE):
        if part is not None:
            store_bf16_compute_fp32(part)


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


FP32_DECODE = ("post_quant_conv", "decoder")  # the VAE parts that compute in fp32 beside bf16
WEIGHT_FILE = re.compile(r"(diffusion_pytorch_model|model)(-\d+-of-\d+)?\.safetensors")  # no variants (.fp16)
SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
                      "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def _streamed(path: Path, dtype: torch.dtype, wanted: set[str]) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors named in wanted, floating ones converted to dtype one at a time.

    Plain reads, not a memory map: the fp32 file never becomes resident as a whole, so a worker's peak
    memory is the converted weights plus one tensor (a mapped file's touched pages count as resident).
    """
    import torch

    found: dict[str, torch.Tensor] = {}
    with open(path, "rb") as fh:
        size = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(size))
        start = 8 + size
        for name, spec in header.items():
            if name == "__metadata__" or name not in wanted or spec["dtype"] not in SAFETENSORS_DTYPES:
                continue
            begin, end = spec["data_offsets"]
            fh.seek(start + begin)
            buffer = bytearray(end - begin)
            fh.readinto(buffer)
            stored = getattr(torch, SAFETENSORS_DTYPES[spec["dtype"]])
            tensor = (torch.frombuffer(buffer, dtype=stored) if buffer else torch.empty(0, dtype=stored))
            tensor = tensor.reshape(spec["shape"])
            if tensor.is_floating_point():
                found[name] = tensor.to(dtype)
            else:
                found[name] = tensor.clone()
    return found


def _convert_streaming(pipe: DiffusionPipeline, folder: str, dtype: torch.dtype) -> None:
    """Give each component of an fp32-loaded folder pipeline its weights in dtype, read from the files tensor by tensor.

    diffusers maps fp32 safetensors lazily; casting in place would touch (and keep resident) every mapped
    page beside the converted copy, which made a bf16 worker's peak memory larger than an fp32 one's.
    """
    import torch

    from models.mapped_weights import keep_mapped

    left = keep_mapped(pipe, dtype)  # the VAE's encoder and the token tables stay mapped, in fp32
    for name, module in pipe.components.items():
        if not isinstance(module, torch.nn.Module):
            continue
        files = sorted(f for f in (Path(folder) / name).glob("*.safetensors") if WEIGHT_FILE.fullmatch(f.name))
        wanted = set(module.state_dict()) - left.get(name, set())
        for path in files:  # the VAE's decoder too: it computes in fp32 from bf16 weights (decode_in_fp32)
            module.load_state_dict(_streamed(path, dtype, wanted), strict=False, assign=True)
    _cast_loaded(pipe, dtype)  # what the files did not hold (buffers made at init), T5's fp32 "wo"
    gc.collect()


def _cast_loaded(pipe: DiffusionPipeline, dtype: torch.dtype) -> None:
    """Give each component of an fp32-loaded pipeline dtype as ``_convert_streaming`` does; the modules a model
    keeps in fp32 stay so."""
    import torch

    for module in pipe.components.values():
        if not isinstance(module, torch.nn.Module):
            continue
        kept = getattr(module, "_keep_in_fp32_modules", None) or ()
        for name, child in module.named_children():  # not module.to(dtype), which diffusers warns about for every model
            if name not in kept:  # a kept module cast and back would be read whole (models/mapped_weights.py)
                child.to(dtype)
        for sub_name, sub in module.named_modules():
            if any(k in sub_name.split(".") for k in kept):
                sub.float()


def _from_files(entry: ModelEntry, dtype: torch.dtype, stream: bool = False) -> DiffusionPipeline:
    """Read the entry's weights: a single safetensors file with local configs, or a diffusers folder.

    With stream (bf16 on the CPU), a folder is loaded lazily in fp32, then converted tensor by tensor.
    """
    import diffusers
    import torch

    local = {"dtype": dtype, "local_files_only": True}
    if entry.single_file:
        cls = getattr(diffusers, PIPELINE_CLASSES[entry.architecture])
        extra = {"safety_checker": None, "requires_safety_checker": False} if entry.kind == "sd-single-file" else {}
        # config= a local folder: diffusers reads every component config from it and never asks the Hub
        if dtype == torch.float32 or dtype == torch.float16:
            return cls.from_single_file(str(entry.path), config=entry.config_source(), **extra, **local)
        # bf16: read in fp32 and cast as a folder's weights are, so the same weights give the same picture
        pipe = cls.from_single_file(str(entry.path), config=entry.config_source(), **extra,
                                    **{**local, "dtype": torch.float32})
        _cast_loaded(pipe, dtype)
        return pipe
    source = _source(entry)
    cls = diffusers.AutoPipelineForText2Image if entry.kind == "auto" else getattr(
        diffusers, PIPELINE_CLASSES[entry.architecture])
    if not stream or dtype == torch.float32:
        return cls.from_pretrained(source, use_safetensors=True, **_left_out(source), **local)
    pipe = cls.from_pretrained(source, use_safetensors=True, **_left_out(source), **{**local, "dtype": torch.float32})
    _convert_streaming(pipe, source, dtype)
    return pipe


def load_pipeline(entry: ModelEntry, device: str | None = None, dtype: torch.dtype | None = None,
                  configured_precision: str | None = None) -> DiffusionPipeline:
    """Load an entry's pipeline from local safetensors only, on device (default pick_device()), ready to call.

    The dtype, unless given, follows the entry's precision or the worker's EASEL_PRECISION (configured_precision).
    """
    global LOAD_COUNT
    reason = entry.unavailable_reason()
    if reason:
        raise ModelUnavailable(reason)
    device = pick_device(device or "auto")
    dtype = dtype or pick_dtype(device, entry.precision, configured_precision)
    with allocator.loading():  # the read buffers a load frees go back to the system (models/allocator.py)
        pipe = _load(entry, device, dtype)
    LOAD_COUNT += 1
    return pipe


def _load(entry: ModelEntry, device: str, dtype: torch.dtype) -> DiffusionPipeline:
    """load_pipeline's work: the files read, the scheduler set, the pipeline on its device in its precision."""
    import diffusers

    try:
        pipe = _from_files(entry, dtype, stream=device == "cpu")
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
    if precision_of(pipe) == "bf16":
        decode_in_fp32(pipe)
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
                 configured_device: str | None = None, catalog: dict[str, ModelEntry] | None = None,
                 configured_precision: str | None = None) -> DiffusionPipeline:
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
        _LOADED[key] = load_pipeline(entry, device, configured_precision=configured_precision)
        return _LOADED[key]


def loaded_models() -> list[tuple[str, str]]:
    """(name, device) of the warm pipelines, least recently used first."""
    with _LOCK:
        return list(_LOADED)


def loaded_precision(name: str, device: str) -> str | None:
    """fp32, bf16 or fp16 of a warm pipeline, or None when it is not loaded."""
    with _LOCK:
        pipe = _LOADED.get((name, device))
    return precision_of(pipe) if pipe is not None else None


def img2img_from(pipe: DiffusionPipeline) -> DiffusionPipeline:
    """An image-to-image pipeline sharing the loaded weights (no second load)."""
    from diffusers import AutoPipelineForImage2Image

    img2img = AutoPipelineForImage2Image.from_pipe(pipe)
    img2img.set_progress_bar_config(disable=True)
    if precision_of(img2img) == "bf16":
        decode_in_fp32(img2img)
    return img2img
