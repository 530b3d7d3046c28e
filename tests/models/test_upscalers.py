"""Upscalers: catalog entries, refusing pickled weights, the shipped Compact net, exact sizes, one load."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import upscalers
from models.catalog import ModelError
from models.training.data import eval_scenes, render
from models.upscalers import (
    LANCZOS,
    UpscalerNotFound,
    UpscalerUnavailable,
    get_upscaler,
    import_spandrel,
    load_upscalers,
    run_tiled,
    upscale,
)

REPO = Path(__file__).resolve().parents[2]
BUNDLED = "easel-compact-x4"
SHIPPED = REPO / "models" / "upscalers" / BUNDLED / "model.safetensors"


@pytest.fixture(autouse=True)
def default_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read models/catalog.toml unless a test passes its own."""
    monkeypatch.delenv("EASEL_CATALOG", raising=False)


def write_catalog(tmp_path: Path, body: str) -> Path:
    """A catalog file with the given TOML."""
    path = tmp_path / "catalog.toml"
    path.write_text(body, encoding="utf-8")
    return path


def psnr(a: Image.Image, b: Image.Image) -> float:
    """Peak signal-to-noise ratio in dB between two RGB pictures of one size."""
    mse = np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


def test_catalog_lists_lanczos_first_and_the_bundled_net_available() -> None:
    entries = load_upscalers()
    assert list(entries)[:2] == [LANCZOS, BUNDLED]
    assert entries[LANCZOS].unavailable_reason() is None
    bundled = entries[BUNDLED]
    assert (bundled.path, bundled.scale, bundled.unavailable_reason()) == (SHIPPED, 4, None)
    assert "Compact" in bundled.label


def test_missing_file_says_where_to_put_it(tmp_path: Path) -> None:
    path = write_catalog(tmp_path, '[upscalers.big]\nlabel = "Big"\npath = "nets/big.safetensors"\nscale = 4\n')
    entry = load_upscalers(path)["big"]
    reason = entry.unavailable_reason()
    assert reason is not None and str(tmp_path / "nets" / "big.safetensors") in reason and "copy" in reason
    with pytest.raises(UpscalerUnavailable, match="missing"):
        upscale(Image.new("RGB", (8, 8)), "big", 4, catalog_path=path)
    assert load_upscalers(path)[LANCZOS].unavailable_reason() is None


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".ckpt", ".bin"])
def test_pickled_weights_are_refused_unopened(tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / f"net{suffix}").write_bytes(b"not even read")
    path = write_catalog(tmp_path, f'[upscalers.old]\npath = "net{suffix}"\nscale = 4\n')
    reason = load_upscalers(path)["old"].unavailable_reason()
    assert reason is not None and "CVE-2024-12029" in reason and ".safetensors" in reason
    monkeypatch.setattr(upscalers, "import_spandrel", lambda: pytest.fail("spandrel was asked to open it"))
    with pytest.raises(UpscalerUnavailable, match="pickled"):
        upscale(Image.new("RGB", (8, 8)), "old", 4, catalog_path=path)


@pytest.mark.parametrize("body, message", [
    ('[upscalers.odd]\npath = "a.safetensors"\nscale = 3\n', "scale 3"),
    ('[upscalers.odd]\npath = "a.safetensors"\n', "malformed"),
    ('[upscalers.lanczos]\npath = "a.safetensors"\nscale = 4\n', "built-in"),
])
def test_malformed_entries_fail_with_the_reason(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        load_upscalers(write_catalog(tmp_path, body))


def test_unknown_upscaler_and_factor_are_refused() -> None:
    with pytest.raises(UpscalerNotFound, match="lanczos"):
        get_upscaler("nope")
    with pytest.raises(ModelError, match="factor 3"):
        upscale(Image.new("RGB", (8, 8)), LANCZOS, 3)


def test_reading_upscalers_never_imports_torch() -> None:
    code = ("import sys, models.upscalers as u; [e.unavailable_reason() for e in u.load_upscalers().values()]; "
            "assert 'torch' not in sys.modules and 'spandrel' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_spandrel_recognises_the_shipped_file() -> None:
    spandrel = import_spandrel()
    descriptor = spandrel.ModelLoader().load_from_file(SHIPPED)
    assert isinstance(descriptor, spandrel.ImageModelDescriptor)
    assert (descriptor.architecture.id, descriptor.scale, descriptor.input_channels) == ("Compact", 4, 3)
    assert SHIPPED.stat().st_size < 4_000_000
    if importlib.util.find_spec("torchvision") is None:
        assert "torchvision" not in sys.modules, "the stand-in torchvision must not outlive the import"


@pytest.mark.parametrize("name", [BUNDLED, LANCZOS])
@pytest.mark.parametrize("factor", [2, 4])
def test_output_is_exactly_factor_times_the_input(name: str, factor: int) -> None:
    image = Image.new("RGBA", (37, 23), (200, 40, 40, 255))
    out = upscale(image, name, factor)
    assert (out.mode, out.size) == ("RGB", (37 * factor, 23 * factor))


def test_tiles_give_the_same_picture_as_one_pass() -> None:
    import torch

    network = upscalers.load_network(get_upscaler(BUNDLED))
    pixels = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    whole, tiled = network(pixels), run_tiled(network, pixels, tile=20, pad=16)
    assert tiled.shape == whole.shape == (1, 3, 192, 256)
    assert torch.allclose(tiled, whole, atol=1e-5)


def test_shipped_net_beats_lanczos_on_held_out_renders() -> None:
    scores = {BUNDLED: [], LANCZOS: []}
    for scene in eval_scenes(8, seed=99):
        truth = render(scene, size=256)
        small = truth.resize((64, 64), Image.Resampling.LANCZOS)
        for name, found in scores.items():
            found.append(psnr(upscale(small, name, 4), truth))
    assert np.mean(scores[BUNDLED]) > np.mean(scores[LANCZOS]) + 1.0, scores


def test_network_is_loaded_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upscalers, "_CACHE", {})
    before = upscalers.LOAD_COUNT
    for factor in (4, 2, 4):
        upscale(Image.new("RGB", (16, 16), "white"), BUNDLED, factor)
    assert upscalers.LOAD_COUNT == before + 1
