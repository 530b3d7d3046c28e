"""Each supported architecture loads through the loader offline and runs the worker's generation loop."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from models.capabilities import build_table, capabilities_of, pipeline_capabilities, supported_kwargs
from models.catalog import ModelUnavailable, get_entry, load_catalog
from tests.support.tiny_pipelines import ARCHITECTURES, EULER_NUMPY_WARNING, SIZE

pytestmark = EULER_NUMPY_WARNING
CLASSES = {"sd": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline", "sd3": "StableDiffusion3Pipeline"}


def generate(pipe, steps: int = 3, stop_after: int | None = None, **extra) -> tuple[list[Image.Image], list[int]]:
    """Run the pipeline as the worker does: a step callback each step, cancel through pipe._interrupt."""
    seen: list[int] = []

    def on_step(pipeline, step, timestep, kwargs):
        seen.append(step)
        assert kwargs["latents"].shape[0] >= 1  # the worker's previews read the latents
        if stop_after is not None and len(seen) >= stop_after:
            pipeline._interrupt = True
        return kwargs

    args = {"prompt": "a red star in the top left", "negative_prompt": "blurry", "width": SIZE, "height": SIZE,
            "num_inference_steps": steps, "guidance_scale": 2.0, "generator": torch.Generator("cpu").manual_seed(0),
            "callback_on_step_end": on_step, "output_type": "pil", **extra}
    return pipe(**supported_kwargs(pipe, args)).images, seen


@pytest.mark.parametrize("kind", ARCHITECTURES)
@pytest.mark.parametrize("prefix", ["tiny", "auto"])
def test_architecture_loads_and_generates(kind: str, prefix: str, tiny_catalog: Path, fresh_loader) -> None:
    entry = get_entry(f"{prefix}-{kind}", catalog_path=tiny_catalog)
    before = fresh_loader.LOAD_COUNT
    pipe = fresh_loader.load_pipeline(entry, device="cpu")
    assert fresh_loader.LOAD_COUNT == before + 1
    assert type(pipe).__name__ == CLASSES[kind]
    images, steps = generate(pipe)
    assert steps == [0, 1, 2]
    assert len(images) == 1 and images[0].size == (SIZE, SIZE)
    _, steps = generate(pipe, steps=6, stop_after=2)
    assert steps == [0, 1], "setting pipe._interrupt stops the loop"


@pytest.mark.parametrize("kind", ARCHITECTURES)
def test_img2img_from_the_same_weights_does_not_reload(kind: str, tiny_catalog: Path, fresh_loader) -> None:
    pipe = fresh_loader.get_pipeline(f"tiny-{kind}", device="cpu", catalog_path=tiny_catalog)
    count = fresh_loader.LOAD_COUNT
    img2img = fresh_loader.img2img_from(pipe)
    assert img2img.vae is pipe.vae and "Img2Img" in type(img2img).__name__
    init = Image.new("RGB", (SIZE, SIZE), (30, 70, 220))
    images, steps = generate(img2img, steps=4, image=init, strength=0.5)
    assert images[0].size == (SIZE, SIZE) and steps == [0, 1]  # strength 0.5 runs half of the 4 steps
    assert fresh_loader.get_pipeline(f"tiny-{kind}", device="cpu", catalog_path=tiny_catalog) is pipe
    assert fresh_loader.LOAD_COUNT == count


def test_pickled_checkpoint_is_refused_with_its_reason(tiny_catalog: Path, fresh_loader) -> None:
    entry = load_catalog(tiny_catalog)["pickled"]
    reason = entry.unavailable_reason()
    assert reason and "pickled" in reason and ".ckpt" in reason and "safetensors" in reason
    count = fresh_loader.LOAD_COUNT
    with pytest.raises(ModelUnavailable, match="pickled weights"):
        fresh_loader.load_pipeline(entry, device="cpu")
    with pytest.raises(ModelUnavailable, match="pickled weights"):
        fresh_loader.get_pipeline("pickled", device="cpu", catalog_path=tiny_catalog)
    assert fresh_loader.LOAD_COUNT == count


def test_folder_with_only_pickled_weights_is_refused(tiny_folders: dict[str, Path], tmp_path: Path,
                                                     fresh_loader) -> None:
    folder = tmp_path / "bin-only"
    pipe = fresh_loader.load_pipeline(load_catalog(_one_entry(tmp_path, tiny_folders["sd"]))["one"], device="cpu")
    pipe.save_pretrained(str(folder), safe_serialization=False)
    entry = load_catalog(_one_entry(tmp_path, folder))["one"]
    with pytest.raises(ModelUnavailable, match="safetensors"):
        fresh_loader.load_pipeline(entry, device="cpu")


def _one_entry(tmp_path: Path, folder: Path) -> Path:
    """A catalog with one sd entry named "one" for a folder."""
    from tests.support.tiny_pipelines import catalog_entry

    path = tmp_path / "one.toml"
    path.write_text(catalog_entry("one", "sd", folder), encoding="utf-8")
    return path


def test_least_recently_used_pipeline_is_evicted(tiny_catalog: Path, fresh_loader) -> None:
    def get(name: str):
        return fresh_loader.get_pipeline(name, device="cpu", max_loaded=2, catalog_path=tiny_catalog)

    count = fresh_loader.LOAD_COUNT
    sd, sdxl = get("tiny-sd"), get("tiny-sdxl")
    assert get("tiny-sd") is sd  # now the most recently used
    get("tiny-sd3")  # evicts tiny-sdxl
    assert [name for name, _ in fresh_loader.loaded_models()] == ["tiny-sd", "tiny-sd3"]
    assert get("tiny-sd") is sd and fresh_loader.LOAD_COUNT == count + 3
    assert get("tiny-sdxl") is not sdxl and fresh_loader.LOAD_COUNT == count + 4  # reloaded after eviction
    assert [name for name, _ in fresh_loader.loaded_models()] == ["tiny-sd", "tiny-sdxl"]


@pytest.mark.parametrize("kind", ARCHITECTURES)
@pytest.mark.parametrize("prefix", ["tiny", "auto"])
def test_capabilities_without_torch_match_the_pipeline(kind: str, prefix: str, tiny_catalog: Path) -> None:
    import diffusers

    entry = load_catalog(tiny_catalog)[f"{prefix}-{kind}"]
    caps = pipeline_capabilities(entry)
    assert caps.known and caps == capabilities_of(getattr(diffusers, CLASSES[kind]))
    assert caps.negative_prompt and caps.guidance and caps.progress


def test_capability_table_matches_installed_diffusers() -> None:
    from models.capabilities import _table

    assert _table() == build_table(), "refresh it: python -c 'import models.capabilities as c; c.write_table()'"
    assert _table()["LatentConsistencyModelPipeline"]["negative_prompt"] is False


def test_unsupported_arguments_are_dropped() -> None:
    from diffusers import LatentConsistencyModelPipeline

    class Fake(LatentConsistencyModelPipeline):
        def __init__(self) -> None:  # no weights: only the call signature is read
            pass

    kept = supported_kwargs(Fake(), {"prompt": "x", "negative_prompt": "y", "guidance_scale": 1.5})
    assert kept == {"prompt": "x", "guidance_scale": 1.5}


def test_cuda_headroom_evicts_until_enough_memory_is_free(tiny_catalog: Path, fresh_loader, monkeypatch) -> None:
    """On CUDA, older pipelines go until memory_headroom is free (simulated: 10 GB, 4 GB per pipeline)."""
    emptied: list[bool] = []
    monkeypatch.setattr(fresh_loader, "pick_device", lambda preference="auto", configured=None: "cuda")
    monkeypatch.setattr(fresh_loader, "load_pipeline", lambda entry, device, **settings: object())
    monkeypatch.setattr(fresh_loader, "_cuda_free_bytes", lambda device: (10 - 4 * len(fresh_loader._LOADED)) << 30)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))

    def get(name: str):
        return fresh_loader.get_pipeline(name, max_loaded=5, memory_headroom=5 << 30, catalog_path=tiny_catalog)

    get("tiny-sd"), get("tiny-sdxl")
    assert emptied == []
    get("tiny-sd3")  # 2 GB free < 5 GB: tiny-sd goes and CUDA's cache is emptied
    assert [name for name, _ in fresh_loader.loaded_models()] == ["tiny-sdxl", "tiny-sd3"]
    assert emptied == [True]
