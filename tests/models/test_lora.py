"""LoRA adapters: loaded once per pipeline, switched between requests without reloading the base model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.catalog import ModelError, ModelUnavailable, load_loras
from models.lora import apply_loras
from tests.support.tiny_pipelines import SIZE, catalog_entry, save_tiny_lora

LORAS = """
[loras.ink]
path = "ink.safetensors"
base_kinds = ["sd"]
default_scale = 0.8
trigger_words = ["ink drawing"]

[loras.fast]
path = "fast.safetensors"
base_kinds = ["sd"]
scheduler = "LCMScheduler"
default_steps = 4
min_steps = 2
max_steps = 8
default_guidance = 1.5

[loras.xl-only]
path = "fast.safetensors"
base_kinds = ["sdxl"]

[loras.pickled]
path = "old.ckpt"
base_kinds = ["sd"]
"""


@pytest.fixture(scope="module")
def lora_catalog(tiny_folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalog with the tiny SD model and LoRAs made for it."""
    root = tmp_path_factory.mktemp("loras")
    save_tiny_lora(tiny_folders["sd"], root / "ink.safetensors", seed=1)
    save_tiny_lora(tiny_folders["sd"], root / "fast.safetensors", seed=2)
    (root / "old.ckpt").write_bytes(b"not loaded")
    path = root / "catalog.toml"
    path.write_text(catalog_entry("tiny-sd", "sd", tiny_folders["sd"]) + LORAS, encoding="utf-8")
    return path


def picture(pipe) -> np.ndarray:
    """One seeded 2-step image as an array."""
    return pipe("a red star", width=SIZE, height=SIZE, num_inference_steps=2, guidance_scale=2.0,
                generator=torch.Generator("cpu").manual_seed(3), output_type="np").images[0]


def test_catalog_reads_loras(lora_catalog: Path) -> None:
    loras = load_loras(lora_catalog)
    assert loras["ink"].default_scale == 0.8 and loras["ink"].trigger_words == ("ink drawing",)
    fast = loras["fast"]
    assert (fast.scheduler, fast.default_steps, fast.default_guidance, fast.max_steps) == ("LCMScheduler", 4, 1.5, 8)
    assert loras["ink"].unavailable_reason() is None
    assert "pickled weights" in loras["pickled"].unavailable_reason()


def test_switching_adapters_does_not_reload(lora_catalog: Path, fresh_loader, monkeypatch) -> None:
    pipe = fresh_loader.get_pipeline("tiny-sd", device="cpu", catalog_path=lora_catalog)
    loads = fresh_loader.LOAD_COUNT
    reads: list[str] = []
    original = type(pipe).load_lora_weights

    def counting(self, *args, **kwargs):
        reads.append(kwargs["adapter_name"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(pipe), "load_lora_weights", counting)
    base = pipe.scheduler
    base_scheduler = type(base).__name__
    plain = picture(pipe)

    def apply(*requested):
        return apply_loras(pipe, list(requested), base_scheduler=base, catalog_path=lora_catalog)

    assert [lora.name for lora in apply(("ink", None))] == ["ink"]
    inked = picture(pipe)
    assert not np.allclose(inked, plain)
    used = apply(("ink", 1.0), ("fast", 0.5))
    assert [lora.name for lora in used] == ["ink", "fast"] and type(pipe.scheduler).__name__ == "LCMScheduler"
    both = picture(pipe)
    assert not np.allclose(both, inked)
    assert apply() == []  # no LoRA: disable_lora, the model's own scheduler back
    assert type(pipe.scheduler).__name__ == base_scheduler
    np.testing.assert_allclose(picture(pipe), plain, atol=1e-5)
    apply(("ink", None))
    np.testing.assert_allclose(picture(pipe), inked, atol=1e-5)
    assert reads == ["ink", "fast"], "each adapter file is read once"
    assert fresh_loader.LOAD_COUNT == loads
    assert fresh_loader.get_pipeline("tiny-sd", device="cpu", catalog_path=lora_catalog) is pipe


def test_bad_requests_are_refused(lora_catalog: Path, fresh_loader) -> None:
    pipe = fresh_loader.get_pipeline("tiny-sd", device="cpu", catalog_path=lora_catalog)

    def apply(*requested):
        return apply_loras(pipe, list(requested), base_scheduler=pipe.scheduler, catalog_path=lora_catalog)

    with pytest.raises(ModelError, match="fits sdxl models, not this sd model"):
        apply(("xl-only", None))
    with pytest.raises(ModelUnavailable, match="pickled weights"):
        apply(("pickled", None))
    with pytest.raises(ModelError, match="unknown LoRA 'nope'"):
        apply(("nope", None))
    with pytest.raises(ModelError, match="at most 3"):
        apply(("ink", None), ("fast", None), ("ink", 0.5), ("fast", 0.5))
