"""The number format a model computes in on a device: fp32, bf16 or fp16, "auto" choosing what the device does well.

A catalog entry may say ``precision = "auto" | "fp32" | "bf16" | "fp16"`` (default auto) and a worker's
``EASEL_PRECISION`` overrides it. Auto means bf16 on a CPU whose instruction set computes it (AVX-512 BF16
or AMX, as PyTorch's own ``torch.cpu.get_capabilities()`` reports them), bf16 (or fp16 where bf16 is
missing) on CUDA, fp16 on Apple's MPS, and fp32 everywhere else.

This module names precisions without torch; torch is imported only by the functions that need it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class PrecisionError(ValueError):
    """A precision setting that is not one of PRECISIONS; the message names where it came from."""


# keys of torch.cpu.get_capabilities() (public API in torch 2.13) whose instructions compute bf16
CPU_BF16_CAPABILITIES = ("avx512_bf16", "amx_bf16")


def check(value: object, where: str) -> str:
    """A precision setting, lower-cased; raises PrecisionError naming where it came from and the allowed values."""
    text = str(value).strip().lower()
    if text not in PRECISIONS:
        raise PrecisionError(f"{where}: precision {value!r} is not one of {', '.join(PRECISIONS)}")
    return text


def cpu_bf16_capability() -> str | None:
    """The CPU feature that makes bf16 fast here (avx512_bf16 or amx_bf16), from PyTorch's own check; else None."""
    import torch

    capabilities = torch.cpu.get_capabilities()
    return next((name for name in CPU_BF16_CAPABILITIES if capabilities.get(name)), None)


def resolve(requested: str | None, device: str) -> str:
    """The concrete precision (fp32, bf16 or fp16) for a setting (auto when None) on a device."""
    requested = check(requested or "auto", "precision")
    if requested != "auto":
        return requested
    if device.startswith("cuda"):
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device == "mps":
        return "fp16"
    if device == "cpu" and cpu_bf16_capability() is not None:
        return "bf16"
    return "fp32"


def choose(catalog_precision: str | None, configured: str | None, device: str) -> str:
    """The precision a worker runs a model in: its EASEL_PRECISION when set, else the catalog entry's, resolved."""
    return resolve(configured or catalog_precision or "auto", device)


def dtype_of(precision: str) -> torch.dtype:
    """The torch dtype of a concrete precision."""
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def name_of(dtype: torch.dtype) -> str:
    """fp32, bf16 or fp16 for a torch dtype."""
    import torch

    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
