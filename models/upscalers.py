"""Upscalers: the catalog's [upscalers.<name>] entries and upscale(); stdlib at import, torch only when used.

Networks are loaded through spandrel, which recognises the architecture (Real-ESRGAN, Compact, DAT, HAT,
SwinIR ...) from the weights alone, and only from .safetensors files: a pickled .pth/.pt/.ckpt/.bin file
runs code when it is loaded (InvokeAI's CVE-2024-12029 was exactly that), so it is refused, never opened.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.catalog import ModelError, read_catalog_file

if TYPE_CHECKING:
    import torch
    from PIL import Image

LANCZOS = "lanczos"
FACTORS = (2, 4)
TILE = 256  # input pixels per tile side; bigger inputs are run in overlapping tiles to bound memory
TILE_PAD = 16  # overlap on each side, more than a Compact net's receptive field, so seams never show
LOAD_COUNT = 0  # real network loads in this process; tests and workers use it to prove one load
_CACHE: dict[tuple[Path, str], Any] = {}
_LOCK = threading.Lock()


class UpscalerNotFound(ModelError):
    """No upscaler of that name is in the catalog."""


class UpscalerUnavailable(ModelError):
    """The upscaler is listed but cannot be used here (file absent, or not safetensors)."""


@dataclass(frozen=True)
class UpscalerEntry:
    """One upscaler the site can offer; path None means Pillow's Lanczos, which needs no file."""

    name: str
    label: str
    path: Path | None
    scale: int
    description: str

    def unavailable_reason(self) -> str | None:
        """None when the upscaler can be used here, else what is wrong and how to fix it."""
        if self.path is None:
            return None
        if self.path.suffix.lower() != ".safetensors":
            return (f"upscaler {self.name!r}: {self.path.name} is not a .safetensors file; pickled weights "
                    f"({self.path.suffix or 'no suffix'}) can run code when loaded (CVE-2024-12029), so only "
                    f".safetensors files are loaded; convert it once on a trusted machine and list that file")
        if not self.path.is_file():
            return f"upscaler {self.name!r}: weights file {self.path} is missing; copy the .safetensors file there"
        return None


BUILTIN = UpscalerEntry(LANCZOS, "Lanczos (Pillow, always available)", None, 0,
                        "Classic resampling: smooth and fast, adds no detail.")


def _entry(name: str, raw: dict, base: Path) -> UpscalerEntry:
    """Build and check one entry from its [upscalers.<name>] table."""
    try:
        entry = UpscalerEntry(name=name, label=str(raw.get("label", name)), path=(base / raw["path"]).resolve(),
                              scale=int(raw["scale"]), description=str(raw.get("description", "")).strip())
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"catalog upscaler {name!r} is malformed: {exc!r}") from exc
    if entry.scale not in FACTORS:
        raise ModelError(f"catalog upscaler {name!r}: scale {entry.scale} is not one of {FACTORS}")
    if name == LANCZOS:
        raise ModelError(f"catalog upscaler {name!r}: the name is taken by the built-in Lanczos")
    return entry


def load_upscalers(path: Path | None = None) -> dict[str, UpscalerEntry]:
    """Every upscaler: the built-in Lanczos first, then the catalog's, in file order."""
    path, data = read_catalog_file(path)
    listed = {name: _entry(name, raw, path.parent) for name, raw in data.get("upscalers", {}).items()}
    return {LANCZOS: BUILTIN, **listed}


def get_upscaler(name: str, path: Path | None = None) -> UpscalerEntry:
    """The usable entry for a name; raises UpscalerNotFound or UpscalerUnavailable."""
    upscalers = load_upscalers(path)
    if name not in upscalers:
        raise UpscalerNotFound(f"unknown upscaler {name!r}; the catalog lists: {', '.join(upscalers)}")
    reason = upscalers[name].unavailable_reason()
    if reason:
        raise UpscalerUnavailable(reason)
    return upscalers[name]


def import_spandrel() -> types.ModuleType:
    """Import spandrel, standing in for torchvision when it is absent.

    spandrel imports torchvision only for two architectures Easel never offers (LaMa inpainting,
    RestoreFormer faces), and PyPI's torchvision cannot load beside the CPU torch wheel. So without
    torchvision, those imports get placeholders that raise if used, removed again once spandrel is in,
    so no other library mistakes them for a real torchvision.
    """
    if "spandrel" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        import spandrel
        return spandrel

    def missing(*args: object, **kwargs: object) -> None:
        raise ModelError("this spandrel architecture needs torchvision, which is not installed")

    stubs = {name: types.ModuleType(name) for name in
             ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")}
    for name, module in stubs.items():
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    functional = stubs["torchvision.transforms.functional"]
    functional.InterpolationMode = types.SimpleNamespace(BILINEAR="bilinear", NEAREST="nearest")
    functional.rotate = functional.normalize = missing
    with _LOCK:
        sys.modules.update(stubs)
        try:
            import spandrel
        finally:
            for name in stubs:
                sys.modules.pop(name, None)
    return spandrel


def load_network(entry: UpscalerEntry, device: str = "cpu") -> Any:
    """The entry's spandrel ImageModelDescriptor on device, loaded once per process and reused."""
    global LOAD_COUNT
    reason = entry.unavailable_reason()
    if reason or entry.path is None:
        raise UpscalerUnavailable(reason or f"upscaler {entry.name!r} is not a network")
    key = (entry.path, device)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    spandrel = import_spandrel()
    with _LOCK:
        if key not in _CACHE:
            try:
                descriptor = spandrel.ModelLoader().load_from_file(entry.path)
            except spandrel.UnsupportedModelError as exc:
                raise UpscalerUnavailable(f"upscaler {entry.name!r}: spandrel does not recognise the "
                                          f"architecture in {entry.path}") from exc
            if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.scale != entry.scale:
                raise UpscalerUnavailable(f"upscaler {entry.name!r}: {entry.path} is a "
                                          f"{descriptor.architecture.name} of scale {descriptor.scale}, "
                                          f"not an x{entry.scale} upscaler")
            _CACHE[key] = descriptor.to(device).eval()
            LOAD_COUNT += 1
        return _CACHE[key]


def run_tiled(network: Any, pixels: torch.Tensor, tile: int = TILE, pad: int = TILE_PAD) -> torch.Tensor:
    """Run the network on a (1, 3, H, W) tensor, in overlapping tiles when it is larger than tile."""
    _, _, height, width = pixels.shape
    if height <= tile and width <= tile:
        return network(pixels)
    s = network.scale
    out = pixels.new_zeros(1, 3, height * s, width * s)
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            t0, l0 = max(top - pad, 0), max(left - pad, 0)
            piece = network(pixels[:, :, t0:min(bottom + pad, height), l0:min(right + pad, width)])
            out[:, :, top * s:bottom * s, left * s:right * s] = piece[
                :, :, (top - t0) * s:(bottom - t0) * s, (left - l0) * s:(right - l0) * s]
    return out


def upscale(image: Image.Image, name: str, factor: int, catalog_path: Path | None = None,
            device: str = "cpu") -> Image.Image:
    """The image enlarged exactly factor times (2 or 4) by the named upscaler.

    A network whose scale is below the factor is run again on its own output (x2 twice for x4); one
    whose scale is above it (x4 for x2) runs at its scale and is brought down with Lanczos. Downscaling a
    sharper picture keeps the edges the network drew, which Lanczos straight from the input cannot add.
    """
    from PIL import Image

    if factor not in FACTORS:
        raise ModelError(f"upscale factor {factor} is not one of {FACTORS}")
    entry = get_upscaler(name, catalog_path)
    image = image.convert("RGB")
    target = (image.width * factor, image.height * factor)
    if entry.path is None:
        return image.resize(target, Image.Resampling.LANCZOS)
    import numpy as np
    import torch

    network = load_network(entry, device)
    with torch.inference_mode():
        pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].to(device, torch.float32) / 255
        reached = 1
        while reached < factor:
            pixels = run_tiled(network, pixels)
            reached *= network.scale
        array = (pixels[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    result = Image.fromarray(array)
    return result if result.size == target else result.resize(target, Image.Resampling.LANCZOS)
