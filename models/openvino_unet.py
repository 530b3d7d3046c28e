"""A model's UNet run by OpenVINO on the CPU: converted once (``flask models optimize NAME``), used by workers.

``convert`` traces a folder model's fp32 UNet with ``openvino.convert_model`` and saves the IR (``unet.xml``
and ``unet.bin``) in ``openvino/`` beside the model, or under the instance folder when the model's folder
cannot be written. ``OpenVINOUNet`` presents the interface a diffusers pipeline calls
(``unet(sample, t, encoder_hidden_states=..., return_dict=False)[0]``, ``config``, ``dtype``, ``device``) and
runs the compiled IR; the torch UNet stays beside it for what the IR cannot do (LoRAs). A worker swaps it in
when ``EASEL_OPENVINO`` is on and the IR is present and made from the model's current weights
(``jobs/pipelines.py``). Only SD-style UNets (no added conditions: SD 1.x/2.x) are converted.

The IR computes in the model's precision (fp32, or bf16 where ``auto`` chose it), never in OpenVINO's own
default. Measured on the 2-vCPU EPYC (docs/precision.md, *CPU variants*): easel-tiny's pipeline 1.6x as fast
as eager PyTorch in fp32, same pixels, and 2.5x in bf16 on a CPU with AVX-512 BF16. openvino itself is
imported only when a model is converted or compiled. A small UNet gets a static compile per input shape
(``STATIC_SHAPES`` kept): its steps are short enough that dynamic-shape bookkeeping was a third of them.
"""
from __future__ import annotations

import json
import logging
import time
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

FOLDER = "openvino"  # beside the model's components, or instance/openvino/<name>/
IR_NAME = "unet.xml"
SOURCE_NAME = "source.json"  # the UNet weights the IR was made from: size and modification time


# what the torch UNet's dtype (the model's precision, models/precision.py) asks of OpenVINO's CPU plugin
# static copies of a small UNet's IR kept per worker (one per batch and size met; each holds its own weights)
STATIC_SHAPES = 6
SMALL_UNET_PARAMETERS = 50_000_000  # a larger UNet's steps are long enough that the bookkeeping does not show


def small_unet_shapes(unet: torch.nn.Module) -> int:
    """How many static-shape copies to keep for this UNet: STATIC_SHAPES for a small one, none for a large one."""
    return STATIC_SHAPES if sum(p.numel() for p in unet.parameters()) <= SMALL_UNET_PARAMETERS else 0


INFERENCE_PRECISION = {torch.float32: "f32", torch.bfloat16: "bf16", torch.float16: "f16"}


class OptimizeError(ValueError):
    """A model that cannot be converted (not a folder SD UNet, openvino missing); the message says why."""


def _weights(model_dir: Path) -> list[Path]:
    return sorted((model_dir / "unet").glob("*.safetensors"))


def _fingerprint(model_dir: Path) -> list[list]:
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in _weights(model_dir)]


def ir_dirs(model_dir: Path, name: str, instance_dir: Path | str) -> list[Path]:
    """Where a model's IR may be, in order: beside the model, then under the instance folder."""
    return [model_dir / FOLDER, Path(instance_dir) / FOLDER / name]


def find_ir(model_dir: Path, name: str, instance_dir: Path | str) -> Path | None:
    """The IR made from the model's current UNet weights, or None (none made, or the weights changed since)."""
    for folder in ir_dirs(model_dir, name, instance_dir):
        ir, source = folder / IR_NAME, folder / SOURCE_NAME
        if ir.is_file() and source.is_file():
            if json.loads(source.read_text(encoding="utf-8")).get("weights") == _fingerprint(model_dir):
                return ir
            log.warning("%s: the OpenVINO UNet in %s is older than the model's weights; run flask models optimize %s",
                        name, folder, name)
    return None


class _Traced(torch.nn.Module):
    """The UNet as a plain function of three tensors, for tracing."""

    def __init__(self, unet: torch.nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        return self.unet(sample, timestep, encoder_hidden_states, return_dict=False)[0]


def convert(pipe: Any, model_dir: Path, name: str, instance_dir: Path | str) -> tuple[Path, float]:
    """Convert an fp32 pipeline's UNet to OpenVINO IR; (the IR's path, seconds taken)."""
    try:
        import openvino as ov
    except ImportError as exc:
        raise OptimizeError("openvino is not installed (pip install -r requirements.txt)") from exc
    unet = getattr(pipe, "unet", None)
    if unet is None or not _weights(model_dir):
        raise OptimizeError(f"model {name!r} has no UNet folder of safetensors to convert")
    config = unet.config
    if config.get("addition_embed_type") or config.get("class_embed_type") or config.get("time_cond_proj_dim"):
        raise OptimizeError(f"model {name!r}: only SD 1.x/2.x-style UNets (no added conditions) are converted")
    began = time.perf_counter()
    size = int(config.sample_size)
    example = (torch.randn(2, config.in_channels, size, size), torch.tensor([500.0, 500.0]),
               torch.randn(2, 77, config.cross_attention_dim))
    # openvino traces with torch.jit.trace, which warns that it is deprecated and about shape asserts it freezes
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ov.convert_model(_Traced(unet.float().eval()), example_input=example)
    for folder in ir_dirs(model_dir, name, instance_dir):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            ov.save_model(model, folder / IR_NAME, compress_to_fp16=False)
        except OSError:
            continue
        (folder / SOURCE_NAME).write_text(json.dumps({"weights": _fingerprint(model_dir)}), encoding="utf-8")
        return folder / IR_NAME, time.perf_counter() - began
    raise OptimizeError(f"model {name!r}: neither the model's folder nor the instance folder can be written")


class OpenVINOUNet(torch.nn.Module):
    """A compiled OpenVINO UNet that a diffusers pipeline calls as it calls its torch UNet."""

    def __init__(self, ir: Path, unet: torch.nn.Module, threads: int | None = None,
                 static_shapes: int | None = None) -> None:
        import openvino as ov

        super().__init__()
        self._core = ov.Core()
        self._model = self._core.read_model(ir)
        self._config = {
            "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
            # the model's chosen precision, not OpenVINO's own default (bf16 on a CPU that has it): fp32 stays fp32
            "INFERENCE_PRECISION_HINT": INFERENCE_PRECISION.get(unet.dtype, "f32")}
        began = time.perf_counter()
        self._dynamic = self._core.compile_model(self._model, "CPU", self._config)
        self._request = self._dynamic.create_infer_request()
        # what the plugin computes in: f32, bf16 (or f16), as OpenVINO reports it after compiling
        self.inference_precision = self._dynamic.get_property("INFERENCE_PRECISION_HINT").to_string()
        self.compile_seconds = time.perf_counter() - began
        # a small UNet spends a third of its time in dynamic-shape bookkeeping: compile one static copy per shape met
        self.static_shapes = small_unet_shapes(unet) if static_shapes is None else static_shapes
        self._static: OrderedDict[tuple, Any] = OrderedDict()
        self.config = unet.config
        self.ir = ir
        self.__dict__["torch_unet"] = unet  # not a submodule: .to() and state_dict() leave the torch UNet alone

    def _request_for(self, shapes: tuple) -> Any:
        """The infer request for these input shapes: a static compile (cached, least recently used dropped)."""
        if not self.static_shapes:
            return self._request
        request = self._static.get(shapes)
        if request is None:
            model = self._model.clone()
            model.reshape(dict(zip(model.inputs, shapes, strict=True)))
            request = self._core.compile_model(model, "CPU", self._config).create_infer_request()
            self._static[shapes] = request
            while len(self._static) > self.static_shapes:
                self._static.popitem(last=False)
        self._static.move_to_end(shapes)
        return request

    @property
    def compiled_shapes(self) -> list[tuple]:
        """The input shapes that have a static compile now, least recently used first."""
        return list(self._static)

    @property
    def dtype(self) -> torch.dtype:
        return self.torch_unet.dtype

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def forward(self, sample: torch.Tensor, timestep: Any, encoder_hidden_states: torch.Tensor, *args: Any,
                return_dict: bool = True, **kwargs: Any) -> Any:
        timestep = torch.as_tensor(timestep, dtype=torch.float32).reshape(-1).expand(sample.shape[0])
        inputs = [sample.float().numpy(), timestep.contiguous().numpy(), encoder_hidden_states.float().numpy()]
        out = self._request_for(tuple(tuple(x.shape) for x in inputs)).infer(inputs)[0]
        result = torch.from_numpy(out.copy()).to(sample.dtype)
        if not return_dict:
            return (result,)
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

        return UNet2DConditionOutput(sample=result)


def optimize(entry: Any, instance_dir: Path | str) -> tuple[Path, float]:
    """Convert a catalog model's UNet (``flask models optimize NAME``); (the IR's path, seconds taken)."""
    from models.loader import load_pipeline

    folder = model_folder(entry)
    if folder is None:
        raise OptimizeError(f"model {entry.name!r} is not a diffusers folder; `flask models add --convert` makes one")
    return convert(load_pipeline(entry, device="cpu", dtype=torch.float32), folder, entry.name, instance_dir)


def needs_optimizing(entry: Any, instance_dir: Path | str) -> bool:
    """True for a folder model whose UNet has no current IR yet (none made, or its weights changed since)."""
    folder = model_folder(entry)
    return folder is not None and bool(_weights(folder)) and find_ir(folder, entry.name, instance_dir) is None


def model_folder(entry: Any) -> Path | None:
    """A catalog entry's diffusers folder (single files and hub snapshots have none to optimize)."""
    path = entry.path
    return path if path is not None and (path / "model_index.json").is_file() else None


def for_entry(pipe: Any, entry: Any, instance_dir: Path | str) -> OpenVINOUNet | None:
    """The OpenVINO UNet of a loaded catalog model when its IR is present and current, else None."""
    return wrap(pipe, model_folder(entry), entry.name, instance_dir)


def wrap(pipe: Any, model_dir: Path | None, name: str, instance_dir: Path | str) -> OpenVINOUNet | None:
    """The OpenVINO UNet for a loaded pipeline when its IR is present and current, else None."""
    if model_dir is None or getattr(pipe, "unet", None) is None:
        return None
    ir = find_ir(model_dir, name, instance_dir)
    if ir is None:
        return None
    try:
        wrapped = OpenVINOUNet(ir, pipe.unet)
    except ImportError:
        log.warning("%s: an OpenVINO UNet is present but openvino is not installed; running PyTorch", name)
        return None
    log.info("%s: OpenVINO UNet %s compiled in %.1f s", name, ir, wrapped.compile_seconds)
    return wrapped
