"""Beside bf16 on the CPU, the weights a picture reads little of stay mapped from the files, in their fp32.

An fp32 worker maps its safetensors files, and only the pages it reads become resident: text-to-image never
reads the VAE's encoder, and a prompt reads one row of the text encoder's token table per token. Converted to
bf16 (``models.loader._convert_streaming``) those weights would be resident in full for nothing: for SD 1.5 the
encoder's 34 M parameters (68 MB in bf16) and CLIP-L's 49,408 × 768 token table (76 MB; SDXL's second text
encoder adds 126 MB). So a bf16 worker keeps them as diffusers mapped them:

- the VAE's **encoder** (and its quantisation conv) in fp32, mapped; it computes in fp32 when a picture is
  encoded (image-to-image, inpainting), its inputs cast by a pre-hook, its latents cast back to the input's
  dtype. The VAE lists them in ``_keep_in_fp32_modules`` (diffusers' own name for modules kept in fp32), so its
  ``dtype`` stays the pipeline's and ``models.loader._cast_loaded`` leaves them alone. A pipeline that casts the
  whole VAE (``from_pipe`` with a dtype) converts them like the rest: the encoder then computes in that dtype;
- a CLIP text encoder's **token table** in fp32, mapped, as a plain attribute of ``RowReadEmbedding`` (not a
  parameter or buffer, so no cast makes all of it resident and ``text_encoder.dtype``, the first parameter's,
  stays the pipeline's); each lookup reads its rows and returns them in the module's dtype, the bf16 value the
  converted table would have held (the same fp32 number rounded once): the same embeddings, the same pictures.

Pages read from a mapped file stay resident after the read: a worker's previewer fit (``jobs/preview.py``)
encodes a few pictures when the model warms up, and the encoder's pages (130 MiB for SD 1.5, fp32 or bf16 alike)
then stayed for nothing. ``release`` hands such pages back with ``madvise(MADV_DONTNEED)``: they leave the
process, and the next read (an edit) faults them in again from the file. The mappings are private (written pages
would become the process's own copies, which this advice would discard), so only a mapping that holds no written
page (``Anonymous: 0 kB`` in ``/proc/self/smaps``) is advised: weights are never written, and if one ever were, it
would be left alone. (``MADV_PAGEOUT`` would need no such check but skips every page mapped more than once, such
as the pages of a second worker of the same model.)

Workers and tests only: this imports torch.
"""

from __future__ import annotations

import ctypes
import mmap
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

ENCODE_PARTS = ("encoder", "quant_conv")  # the VAE's encode path; the decoder computes in fp32 from bf16 weights
TOKEN_TABLES = ("text_encoder", "text_encoder_2")  # CLIP text towers (SD 1.x/2.x, SDXL, SD 3's first two)
MADV_DONTNEED = 4  # <sys/mman.h>: drop these pages from the process; a file mapping reads them again on use


class RowReadEmbedding(torch.nn.Module):
    """A token embedding whose table stays as loaded (fp32, mapped): lookups return rows in the module's dtype."""

    def __init__(self, table: torch.Tensor, dtype: torch.dtype) -> None:
        super().__init__()
        self.table = table  # a plain attribute: .to() and state_dict() leave it mapped and in fp32
        # follows the text encoder's casts (from_pipe) and says which dtype the rows come back in
        self.register_buffer("dtype_marker", torch.empty(0, dtype=dtype), persistent=False)
        self.num_embeddings, self.embedding_dim = table.shape

    @property
    def weight(self) -> torch.Tensor:
        """The table (fp32, as loaded), for code that reads an embedding's weight."""
        return self.table

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The rows of these token ids, in the module's dtype."""
        return torch.nn.functional.embedding(input_ids, self.table).to(self.dtype_marker.dtype)


def _token_embeddings(text_encoder: torch.nn.Module) -> Any:
    """The CLIP text tower's embeddings module, or None for another kind of text encoder (T5)."""
    tower = getattr(text_encoder, "text_model", text_encoder)  # CLIPTextModelWithProjection wraps a CLIPTextModel
    embeddings = getattr(tower, "embeddings", None)
    token = getattr(embeddings, "token_embedding", None)
    return embeddings if isinstance(token, torch.nn.Embedding) else None


def _cast_inputs(dtypes: dict) -> Any:
    """Encoder pre-hook: remember the input's dtype, compute in the encoder's own (fp32 while it stays mapped)."""
    def hook(module: torch.nn.Module, args: tuple) -> tuple:
        own = next(module.parameters()).dtype
        floating = [a for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()]
        if floating:
            dtypes["input"] = floating[0].dtype
        return tuple(a.to(own) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)
    return hook


def _cast_output(dtypes: dict) -> Any:
    """Forward hook on the encode path's last module: the latents back in the dtype the pictures came in."""
    def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        return output.to(dtypes.get("input", output.dtype))
    return hook


def keep_mapped(pipe: Any, dtype: torch.dtype) -> dict[str, set[str]]:
    """Leave the encoder and token tables of an fp32-mapped pipeline as loaded; the state_dict names left, per component.

    Called before the other weights are converted to dtype; the names returned are the ones not to convert.
    """
    left: dict[str, set[str]] = {}
    vae = getattr(pipe, "vae", None)
    encoder = getattr(vae, "encoder", None)
    if isinstance(encoder, torch.nn.Module):
        parts = [name for name in ENCODE_PARTS if isinstance(getattr(vae, name, None), torch.nn.Module)]
        vae._keep_in_fp32_modules = [*(vae._keep_in_fp32_modules or ()), *parts]
        dtypes: dict = {}
        encoder.register_forward_pre_hook(_cast_inputs(dtypes))
        getattr(vae, parts[-1]).register_forward_hook(_cast_output(dtypes))
        left["vae"] = {key for key in vae.state_dict() if key.split(".", 1)[0] in parts}
    for name in TOKEN_TABLES:
        embeddings = _token_embeddings(getattr(pipe, name, None))
        if embeddings is not None:
            embeddings.token_embedding = RowReadEmbedding(embeddings.token_embedding.weight.detach(), dtype)
    return left


def file_mappings() -> list[tuple[int, int]]:
    """(start, end) of this process's file mappings that hold no written page, from /proc/self/smaps; [] elsewhere."""
    try:
        lines = Path("/proc/self/smaps").read_text().splitlines()
    except OSError:
        return []
    found, current = [], None
    for line in lines:
        fields = line.split()
        if fields and "-" in fields[0] and not fields[0].endswith(":"):  # a mapping's first line
            low, high = (int(x, 16) for x in fields[0].split("-"))
            current = (low, high) if len(fields) > 5 and fields[5].startswith("/") else None
        elif current is not None and fields[:1] == ["Anonymous:"]:
            if fields[1] == "0":
                found.append(current)
            current = None
    return found


def release(modules: Iterable[torch.nn.Module | None]) -> int:
    """Hand back the pages of these modules' weights that are mapped from files (read once, not needed now).

    Returns:
        The bytes advised (0 where nothing is mapped, off Linux, or where the kernel refuses the advice).
    """
    if not sys.platform.startswith("linux"):
        return 0
    mappings = file_mappings()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    advised = 0
    for module in modules:
        for tensor in module.parameters() if module is not None else ():
            low = tensor.data_ptr()
            high = low + tensor.numel() * tensor.element_size()
            if not any(start <= low and high <= end for start, end in mappings):
                continue  # in memory (converted, or cast since), or in a mapping with a written page: left alone
            first, last = -(-low // mmap.PAGESIZE) * mmap.PAGESIZE, high // mmap.PAGESIZE * mmap.PAGESIZE
            if last > first and libc.madvise(first, last - first, MADV_DONTNEED) == 0:
                advised += last - first
    return advised
