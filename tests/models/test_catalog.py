"""The model catalog: parsing, defaults, and clear errors for unknown or absent models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from models.catalog import (
    CATALOG_PATH,
    DEFAULT_MODEL,
    ModelError,
    ModelNotFound,
    ModelUnavailable,
    get_entry,
    hf_snapshot,
    load_catalog,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No hub model is cached, whatever this machine holds (huggingface_hub resolved HF_HUB_CACHE at import)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("EASEL_CATALOG", str(tmp_path / "ignored.toml"))  # models/ never reads the environment
    monkeypatch.setenv("EASEL_MODEL", "ignored")


def write_catalog(tmp_path: Path, body: str) -> Path:
    """A catalog file with the given TOML."""
    path = tmp_path / "catalog.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_bundled_model_is_first_and_default() -> None:
    catalog = load_catalog()
    assert next(iter(catalog)) == "easel-tiny"
    assert DEFAULT_MODEL == "easel-tiny"
    entry = get_entry("easel-tiny")
    assert entry.name == "easel-tiny" and entry.kind == "sd"
    assert entry.path == REPO / "models" / "easel-tiny"
    assert (entry.default_width, entry.default_height) in entry.sizes
    assert entry.min_steps <= entry.default_steps <= entry.max_steps
    assert entry.unavailable_reason() is None


def test_every_entry_parses_with_real_kinds() -> None:
    catalog = load_catalog()
    assert {"sd-turbo", "sd15", "sdxl", "my-model"} <= set(catalog)
    assert catalog["sdxl"].kind == "sdxl"
    assert catalog["my-model"].kind == "sd-single-file"
    assert catalog["sd-turbo"].max_steps <= 4 and catalog["sd-turbo"].default_guidance == 0.0


@pytest.mark.parametrize("name", ["sd-turbo", "sd15", "sdxl"])
def test_absent_hub_model_is_unavailable_with_reason(name: str) -> None:
    entry = load_catalog()[name]
    reason = entry.unavailable_reason()
    assert reason and entry.hf_id in reason and "huggingface-cli download" in reason
    with pytest.raises(ModelUnavailable, match=name):
        get_entry(name)


def test_absent_single_file_names_the_missing_path() -> None:
    with pytest.raises(ModelUnavailable, match=r"my-model\.safetensors"):
        get_entry("my-model")


def test_cached_hub_snapshot_makes_model_available(tmp_path: Path) -> None:
    repo = tmp_path / "hub" / "models--stabilityai--sd-turbo"
    for revision in ("abc123", "zzz999"):  # the lexically last snapshot is not the one refs/main names
        (repo / "snapshots" / revision).mkdir(parents=True)
        (repo / "snapshots" / revision / "model_index.json").write_text("{}", encoding="utf-8")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123", encoding="utf-8")
    assert get_entry("sd-turbo").unavailable_reason() is None
    assert hf_snapshot("stabilityai/sd-turbo") == repo / "snapshots" / "abc123"


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(ModelNotFound, match=r"unknown model 'nope'.*easel-tiny"):
        get_entry("nope")
    assert issubclass(ModelNotFound, ModelError) and issubclass(ModelUnavailable, ModelError)


def test_settings_come_from_the_web_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from webapp import config

    path = write_catalog(tmp_path, CATALOG_PATH.read_text(encoding="utf-8").replace("[models.easel-tiny]", "[models.other]"))
    monkeypatch.setenv("EASEL_ENV", "test")
    monkeypatch.setenv("EASEL_CATALOG", str(path))
    monkeypatch.setenv("EASEL_MODEL", "other")
    settings = config.from_environment()
    assert settings["EASEL_MODEL"] == "other"
    assert "other" in load_catalog(settings["EASEL_CATALOG"]) and "easel-tiny" not in load_catalog(settings["EASEL_CATALOG"])
    monkeypatch.delenv("EASEL_CATALOG")
    monkeypatch.delenv("EASEL_MODEL")
    assert config.from_environment()["EASEL_MODEL"] == "easel-tiny"
    assert config.from_environment()["EASEL_CATALOG"] == str(CATALOG_PATH)


def test_settings_are_arguments(tmp_path: Path) -> None:
    path = write_catalog(tmp_path, CATALOG_PATH.read_text(encoding="utf-8").replace("[models.easel-tiny]", "[models.other]"))
    assert "other" in load_catalog(path) and "easel-tiny" not in load_catalog(path)
    with pytest.raises(ModelUnavailable, match="model 'other'"):  # found in that file; its relative path is not here
        get_entry("other", catalog_path=path)


def test_hub_cache_can_be_given(tmp_path: Path) -> None:
    snap = tmp_path / "elsewhere" / "models--stabilityai--sd-turbo" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "model_index.json").write_text("{}", encoding="utf-8")
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("abc", encoding="utf-8")
    assert load_catalog(hf_cache=tmp_path / "elsewhere")["sd-turbo"].unavailable_reason() is None
    assert load_catalog()["sd-turbo"].unavailable_reason() is not None


MINE = """
[models.mine]
path = "mine"
default_width = 64
default_height = 64
default_steps = 10
default_guidance = 3.0
"""


def test_relative_paths_resolve_against_the_catalog(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "model_index.json").write_text("{}", encoding="utf-8")
    entry = load_catalog(write_catalog(tmp_path, MINE))["mine"]
    assert entry.path == tmp_path / "mine" and entry.unavailable_reason() is None
    assert entry.sizes == ((64, 64),)


INDEX = ('{"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"], '
         '"vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"], '
         '"scheduler": ["diffusers", "DDIMScheduler"], "safety_checker": ["stable_diffusion", "X"], '
         '"feature_extractor": [null, null]}')


def diffusers_folder(folder: Path, files: dict[str, str]) -> Path:
    """A diffusers folder with INDEX and the given files (component/name), each a few bytes."""
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text(INDEX, encoding="utf-8")
    for component in ("unet", "vae", "text_encoder", "scheduler", "safety_checker", "feature_extractor"):
        (folder / component).mkdir()
        (folder / component / "config.json").write_text("{}", encoding="utf-8")
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


SAFE = {"unet/diffusion_pytorch_model.safetensors": "x", "vae/diffusion_pytorch_model.safetensors": "x",
        "text_encoder/model.safetensors": "x"}


@pytest.mark.parametrize("files", [
    SAFE,
    # Pickles beside safetensors are never read; the loader leaves the safety checker out and reads no
    # folder that model_index.json does not name (or names as [null, null]).
    SAFE | {"unet/diffusion_pytorch_model.bin": "x", "safety_checker/pytorch_model.bin": "x",
            "feature_extractor/pytorch_model.bin": "x", "mine/other/model.ckpt": "x"},
])
def test_a_folder_of_safetensors_is_available(tmp_path: Path, files: dict) -> None:
    folder = diffusers_folder(tmp_path / "mine", {})
    (folder / "other").mkdir()
    for name, text in files.items():
        (folder / name.removeprefix("mine/")).write_text(text, encoding="utf-8")
    assert load_catalog(write_catalog(tmp_path, MINE))["mine"].unavailable_reason() is None


@pytest.mark.parametrize("files, found", [
    ({"unet/diffusion_pytorch_model.bin": "x", "vae/diffusion_pytorch_model.safetensors": "x",
      "text_encoder/model.safetensors": "x"}, "unet has only pickled weights (.bin)"),
    ({"unet/diffusion_pytorch_model.ckpt": "x", "vae/diffusion_pytorch_model.pt": "x",
      "text_encoder/model.safetensors": "x"}, "unet, vae have only pickled weights (.ckpt, .pt)"),
    ({"unet/diffusion_pytorch_model.safetensors": "x", "vae/diffusion_pytorch_model.safetensors": "x",
      "text_encoder/pytorch_model.pth": "x"}, "text_encoder has only pickled weights (.pth)"),
])
def test_a_folder_whose_component_has_only_pickled_weights_is_unavailable(tmp_path: Path, files: dict,
                                                                           found: str) -> None:
    folder = diffusers_folder(tmp_path / "mine", files)
    entry = load_catalog(write_catalog(tmp_path, MINE))["mine"]
    reason = entry.unavailable_reason()
    assert reason == (f"model 'mine': {found} in {folder}; convert them to safetensors on a trusted machine — "
                      f"pickles run code when loaded")
    with pytest.raises(ModelUnavailable, match="only pickled weights"):
        get_entry("mine", catalog={"mine": entry})


def test_models_add_refuses_a_folder_whose_component_has_only_pickled_weights(tmp_path: Path) -> None:
    from models.manage import add_model

    catalog = write_catalog(tmp_path, MINE)
    before = catalog.read_text(encoding="utf-8")
    folder = diffusers_folder(tmp_path / "half", {"unet/diffusion_pytorch_model.bin": "x",
                                                  "vae/diffusion_pytorch_model.safetensors": "x",
                                                  "text_encoder/model.safetensors": "x"})
    with pytest.raises(ModelError, match="unet has only pickled weights"):
        add_model(folder, "half", catalog_path=catalog)
    assert catalog.read_text(encoding="utf-8") == before  # nothing appended


def test_a_cached_hub_snapshot_of_pickled_weights_is_unavailable(tmp_path: Path) -> None:
    repo = tmp_path / "hub" / "models--stabilityai--sd-turbo"
    diffusers_folder(repo / "snapshots" / "abc123", {"unet/diffusion_pytorch_model.bin": "x",
                                                     "vae/diffusion_pytorch_model.safetensors": "x"})
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123", encoding="utf-8")
    reason = load_catalog()["sd-turbo"].unavailable_reason()
    assert reason and reason.startswith("model 'sd-turbo': unet has only pickled weights (.bin)")


@pytest.mark.parametrize("body, message", [
    ("[models.x]\nkind = 'gan'\ndefault_width = 64\ndefault_height = 64\ndefault_steps = 5\ndefault_guidance = 1.0",
     "kind 'gan'"),
    ("[models.x]\ndefault_width = 64\ndefault_height = 64\ndefault_steps = 5\ndefault_guidance = 1.0\n"
     "sizes = [[128, 128]]", "default size"),
    ("[models.x]\ndefault_width = 64\ndefault_height = 64\ndefault_guidance = 1.0", "malformed"),
    ("[models.x\n", "not valid TOML"),
])
def test_bad_catalog_is_a_model_error(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        load_catalog(write_catalog(tmp_path, body))


def test_catalog_never_imports_torch() -> None:
    code = ("import sys, models.catalog as c, models.capabilities as k, models.manage, webapp.cli\n"
            "caps = [k.pipeline_capabilities(e) for e in c.load_catalog().values()]; c.load_loras()\n"
            "assert all(x.known and x.negative_prompt for x in caps), caps\n"
            "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_bundled_folder_is_small_and_readable() -> None:
    folder = REPO / "models" / "easel-tiny"
    # what the repository ships: not the OpenVINO IR that make run makes beside it (git-ignored, generated)
    files = [p for p in folder.rglob("*") if p.is_file() and "openvino" not in p.relative_to(folder).parts]
    assert sum(p.stat().st_size for p in files) <= 25 * 1024 * 1024
    for p in files:
        assert p.stat().st_mode & 0o444 == 0o444, f"{p} is not readable by everyone"
    for part in ("model_index.json", "unet", "vae", "text_encoder", "tokenizer", "scheduler", "README.md"):
        assert (folder / part).exists(), part
