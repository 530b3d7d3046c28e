"""The VAE's decoder beside a bf16 pipeline: its weights stored in bf16, its arithmetic in fp32.

A decoder that computes in bf16 bands smooth gradients: every activation is rounded to 8 significant bits,
and the last layers' rounding shows as steps in the picture (docs/precision.md). Banding comes from the
arithmetic, not from where the weights are kept: a bf16 weight is the fp32 one rounded once, a fixed small
change that fp32 arithmetic carries smoothly. So the decoder keeps its weights in bf16, half the memory
(95 MB less for SD 1.5's), and every layer reads its own as fp32 through a parametrization
(``torch.nn.utils.parametrize``): a transient fp32 copy of one layer's weights at a time, while the
activations stay fp32 from the decoder's input to its output.

Workers and tests only: this imports torch.
"""

from __future__ import annotations

import torch
from torch.nn.utils import parametrize

STORED = torch.bfloat16  # what the decoder's weights are kept in beside a bf16 pipeline
MARK = "_easel_fp32_compute"  # set on a module once its parameters read as fp32


class AsFp32(torch.nn.Module):
    """A parametrization: the stored tensor, read as fp32 (``module.weight`` is then fp32, its storage is not)."""

    def forward(self, stored: torch.Tensor) -> torch.Tensor:
        """The stored tensor as fp32 (itself when it already is)."""
        return stored.float()


def _compute_in_fp32(module: torch.nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: the weights back in bf16 storage if a pipeline cast the VAE since, the inputs as fp32."""
    if next(module.parameters()).dtype != STORED:  # SDXL's image-to-image casts the whole VAE and back
        module.to(STORED)
    return tuple(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)


def store_bf16_compute_fp32(part: torch.nn.Module) -> None:
    """Keep part's parameters in bf16 and make it compute in fp32; again after a cast (``from_pipe``), harmlessly.

    Each parameter becomes parametrized by ``AsFp32``; the stored original is what ``part.parameters()``,
    ``state_dict`` and ``.to()`` see. The part's inputs are cast to fp32 by a forward pre-hook, so a
    pipeline's bf16 latents go in unchanged.
    """
    part.to(STORED)  # the storage, again after from_pipe, which casts every component to the pipeline's dtype
    if getattr(part, MARK, False):
        return
    for module in list(part.modules()):
        for name, _ in list(module.named_parameters(recurse=False)):
            parametrize.register_parametrization(module, name, AsFp32(), unsafe=True)  # unsafe: changes the dtype
    part.register_forward_pre_hook(_compute_in_fp32)
    setattr(part, MARK, True)


def computes_in_fp32(part: torch.nn.Module) -> bool:
    """Whether part was prepared by ``store_bf16_compute_fp32``."""
    return bool(getattr(part, MARK, False))
