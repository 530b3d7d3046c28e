"""Single-file checkpoints (SD 1.x, SDXL): folder -> one .safetensors -> `flask models add` -> offline load -> generation."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from models.catalog import ModelError, get_entry, load_catalog
from models.manage import add_model, detect_kind
from tests.support.single_file import write_sd_single_file
from tests.support.tiny_pipelines import EULER_NUMPY_WARNING, SIZE

pytestmark = EULER_NUMPY_WARNING


@contextmanager
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Any attempt to open a connection fails the test (and is recorded), proving nothing asks the Hub."""
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access attempted while loading a model")

    with monkeypatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "create_connection", refuse)
        patch.setattr(socket, "getaddrinfo", refuse)
        yield attempts


@pytest.fixture(scope="module")
def single_files(tiny_folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny SD and SDXL folders, each written as one original-format checkpoint."""
    from diffusers import DiffusionPipeline

    root = tmp_path_factory.mktemp("single")
    return {kind: write_sd_single_file(DiffusionPipeline.from_pretrained(str(tiny_folders[kind]), local_files_only=True),
                                       root / f"tiny-{kind}.safetensors") for kind in ("sd", "sdxl")}


@pytest.fixture
def sd_single_file(single_files: dict[str, Path]) -> Path:
    """The tiny SD pipeline as one checkpoint file."""
    return single_files["sd"]


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """An empty catalog file of this test's own."""
    path = tmp_path / "catalog.toml"
    path.write_text("# test catalog\n", encoding="utf-8")
    return path


def picture(pipe) -> np.ndarray:
    """One seeded 2-step image as an array."""
    image = pipe("a red star", width=SIZE, height=SIZE, num_inference_steps=2, guidance_scale=2.0,
                 generator=torch.Generator("cpu").manual_seed(3), output_type="np").images[0]
    return np.asarray(image)


@pytest.mark.parametrize("kind, width, steps, guidance", [("sd", 512, 25, 7.5), ("sdxl", 1024, 30, 6.0)])
def test_folder_to_single_file_to_flask_models_add_to_generation(app, tiny_folders, single_files, catalog,
                                                                 fresh_loader, monkeypatch, kind, width, steps,
                                                                 guidance) -> None:
    app.config["EASEL_CATALOG"] = str(catalog)
    result = app.test_cli_runner().invoke(args=["models", "add", str(single_files[kind]), "--name", "tiny-file",
                                                "--config", str(tiny_folders[kind])])
    assert result.exit_code == 0, result.output
    assert f"{kind}-single-file" in result.output
    entry = load_catalog(catalog)["tiny-file"]
    assert entry.kind == f"{kind}-single-file" and entry.path == single_files[kind]
    assert entry.config == tiny_folders[kind]
    assert (entry.default_width, entry.default_steps, entry.default_guidance) == (width, steps, guidance)
    with no_network(monkeypatch) as attempts:
        pipe = fresh_loader.load_pipeline(entry, device="cpu")
    assert attempts == []
    reference = fresh_loader.load_pipeline(load_catalog(_folder_catalog(catalog.parent, tiny_folders, kind))["folder"],
                                           device="cpu")
    assert np.array_equal(picture(pipe), picture(reference)), "the single file holds the folder's weights"


def _folder_catalog(root: Path, tiny_folders: dict[str, Path], kind: str) -> Path:
    """A catalog naming a tiny folder "folder"."""
    from tests.support.tiny_pipelines import catalog_entry

    path = root / "folder.toml"
    path.write_text(catalog_entry("folder", kind, tiny_folders[kind]), encoding="utf-8")
    return path


def test_convert_writes_a_diffusers_folder(tiny_folders, sd_single_file, catalog, tmp_path, fresh_loader,
                                           monkeypatch) -> None:
    added = add_model(sd_single_file, "converted", catalog_path=catalog, convert=True, config=tiny_folders["sd"],
                      models_dir=tmp_path / "models")
    assert added.kind == "sd" and added.path == tmp_path / "models" / "converted"
    assert (added.path / "model_index.json").is_file() and list(added.path.glob("unet/*.safetensors"))
    assert detect_kind(added.path) == "sd"
    with no_network(monkeypatch) as attempts:
        pipe = fresh_loader.get_pipeline("converted", device="cpu", catalog_path=catalog)
    assert attempts == [] and picture(pipe).shape == (SIZE, SIZE, 3)


def test_folder_is_added_with_its_detected_kind(tiny_folders, catalog) -> None:
    for kind, folder in tiny_folders.items():
        assert add_model(folder, f"added-{kind}", catalog_path=catalog).kind == kind
    assert {e.kind for e in load_catalog(catalog).values()} == {"sd", "sdxl", "sd3"}
    assert get_entry("added-sdxl", catalog_path=catalog).default_width == 1024


@pytest.mark.parametrize("suffix", [".ckpt", ".bin", ".pt", ".pth"])
def test_pickled_files_are_refused(app, tmp_path, catalog, suffix) -> None:
    pickled = tmp_path / f"model{suffix}"
    pickled.write_bytes(b"\x80\x04not loaded")
    app.config["EASEL_CATALOG"] = str(catalog)
    result = app.test_cli_runner().invoke(args=["models", "add", str(pickled), "--name", "bad"])
    assert result.exit_code != 0 and "pickled weights" in result.output and "run code" in result.output
    assert load_catalog(catalog) == {}


def test_single_file_needs_a_local_config_of_its_architecture(tiny_folders, sd_single_file, catalog) -> None:
    with pytest.raises(ModelError, match="--config DIR"):
        add_model(sd_single_file, "x", catalog_path=catalog)
    with pytest.raises(ModelError, match="not a sd diffusers folder"):
        add_model(sd_single_file, "x", catalog_path=catalog, config=tiny_folders["sdxl"])
    with pytest.raises(ModelError, match="for single files"):
        add_model(tiny_folders["sd"], "x", catalog_path=catalog, convert=True)
    with pytest.raises(ModelError, match="already lists"):
        add_model(tiny_folders["sd"], "x", catalog_path=catalog)
        add_model(tiny_folders["sd"], "x", catalog_path=catalog)
    assert list(load_catalog(catalog)) == ["x"]


def test_sdxl_single_file_is_told_apart_by_its_keys(tmp_path) -> None:
    from safetensors.numpy import save_file

    path = tmp_path / "xl.safetensors"
    save_file({"conditioner.embedders.1.model.ln_final.weight": np.zeros(2, np.float32),
               "model.diffusion_model.out.2.bias": np.zeros(2, np.float32)}, str(path))
    assert detect_kind(path) == "sdxl-single-file"
    junk = tmp_path / "junk.safetensors"
    save_file({"something.else": np.zeros(2, np.float32)}, str(junk))
    with pytest.raises(ModelError, match="not an SD"):
        detect_kind(junk)


def test_single_file_entry_without_local_config_is_unavailable(sd_single_file, tmp_path) -> None:
    from tests.support.tiny_pipelines import catalog_entry

    path = tmp_path / "c.toml"
    path.write_text(catalog_entry("f", "sd-single-file", sd_single_file), encoding="utf-8")
    reason = load_catalog(path)["f"].unavailable_reason()
    assert reason and "local diffusers folder" in reason and "nothing is fetched" in reason


def test_config_folder_gives_only_configs(tiny_folders, sd_single_file, tmp_path, fresh_loader) -> None:
    from tests.support.tiny_pipelines import catalog_entry, save_tiny

    other = save_tiny("sd", tmp_path / "other-weights", seed=5)  # same architecture, different weights
    path = tmp_path / "c.toml"
    path.write_text(catalog_entry("file", "sd-single-file", sd_single_file, config=str(other))
                    + catalog_entry("folder", "sd", tiny_folders["sd"]) + catalog_entry("other", "sd", other),
                    encoding="utf-8")
    catalog = load_catalog(path)
    from_file, folder, config = (picture(fresh_loader.load_pipeline(catalog[n], device="cpu"))
                                 for n in ("file", "folder", "other"))
    assert np.array_equal(from_file, folder) and not np.array_equal(from_file, config)
