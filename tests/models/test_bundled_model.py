"""The bundled easel-tiny checkpoint: loads offline, is reproducible, and follows colour and position prompts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models import loader
from models.catalog import ModelUnavailable, get_entry, load_catalog
from models.training.data import COLOURS, POSITION_PHRASES
from models.training.measure import read_image

PROMPTS = {  # prompt -> (object colour, background colour)
    "a large red square in the center, blue background": ("red", "blue"),
    "a large yellow circle in the center, black background": ("yellow", "black"),
    "a large white star in the center, green background": ("white", "green"),
    "a large blue triangle in the center, orange background": ("blue", "orange"),
}


def generate(pipe, prompt: str | list[str], seed: int | list[int], steps: int = 4) -> list[Image.Image]:
    """Images for a prompt (or prompts) at few steps and the catalog's guidance, seeded."""
    seeds = seed if isinstance(seed, list) else [seed]
    gens = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    guidance = get_entry("easel-tiny").default_guidance
    return pipe(prompt, num_inference_steps=steps, guidance_scale=guidance, generator=gens).images


def test_loads_offline_as_a_standard_pipeline(tiny_pipe) -> None:
    from diffusers import StableDiffusionPipeline

    assert isinstance(tiny_pipe, StableDiffusionPipeline)
    assert tiny_pipe.device.type == "cpu" and tiny_pipe.unet.dtype == loader.pick_dtype("cpu")  # auto precision
    assert tiny_pipe.safety_checker is None
    assert tiny_pipe.scheduler.config.prediction_type == "v_prediction"
    assert tiny_pipe.scheduler.config.rescale_betas_zero_snr


def test_pipeline_is_loaded_once(tiny_pipe) -> None:
    count = loader.LOAD_COUNT
    assert loader.get_pipeline("easel-tiny", device="cpu") is tiny_pipe
    assert loader.LOAD_COUNT == count >= 1


def test_generation_has_the_default_size(tiny_pipe) -> None:
    (image,) = generate(tiny_pipe, "a red circle on a white background", 0, steps=2)
    assert image.size == (64, 64) and image.mode == "RGB"


def test_same_seed_same_pixels_other_seed_differs(tiny_pipe) -> None:
    prompt = "a small green star in the top left, purple background"
    a, b, c = (np.asarray(generate(tiny_pipe, prompt, s, steps=3)[0]) for s in (7, 7, 8))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_colour_prompts_are_honoured(tiny_pipe) -> None:
    images = generate(tiny_pipe, list(PROMPTS), list(range(len(PROMPTS))), steps=10)
    for (prompt, (colour, background)), image in zip(PROMPTS.items(), images, strict=True):
        reading = read_image(image)
        assert (reading.colour, reading.background) == (colour, background), prompt


def test_position_prompts_are_honoured(tiny_pipe) -> None:
    # Every position once, each with its own seed; the model card reports the rate on 252 held-out prompts.
    prompts = {f"a large orange circle {phrases[0]}, purple background": position
               for position, phrases in POSITION_PHRASES.items()}
    images = generate(tiny_pipe, list(prompts), list(range(len(prompts))), steps=10)
    placed = [read_image(image).position for image in images]
    assert sum(p == want for p, want in zip(placed, prompts.values(), strict=True)) >= 8, placed


def test_colours_hold_at_plain_diffusers_defaults(tiny_pipe) -> None:
    # Nothing but the prompt: 50 steps and guidance 7.5, where guidance overshoots the latents. Every
    # palette colour once as the object, each on the next colour as its background.
    names = list(COLOURS)
    prompts = {f"a large {c} square in the center, {b} background": (c, b)
               for c, b in zip(names, names[1:] + names[:1], strict=True)}
    images = tiny_pipe(list(prompts), generator=[torch.Generator("cpu").manual_seed(s) for s in range(8)]).images
    read = [(r.colour, r.background) for r in map(read_image, images)]
    # 7 of 8 now (94 % colour on the card's 252 prompts); 3 of 8 before the decoder was tuned for guidance.
    assert sum(got == want for got, want in zip(read, prompts.values(), strict=True)) >= 6, read


def test_img2img_shares_the_weights(tiny_pipe) -> None:
    img2img = loader.img2img_from(tiny_pipe)
    assert img2img.unet is tiny_pipe.unet
    init = Image.new("RGB", (64, 64), (30, 70, 220))
    out = img2img("a large red circle in the center, blue background", image=init, strength=0.6,
                  num_inference_steps=4, guidance_scale=3.0, generator=torch.Generator().manual_seed(0)).images[0]
    assert out.size == (64, 64)


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text('[models.gone]\npath = "gone"\ndefault_width = 64\ndefault_height = 64\n'
                    'default_steps = 4\ndefault_guidance = 3.0\n', encoding="utf-8")
    entry = load_catalog(path)["gone"]
    count = loader.LOAD_COUNT
    with pytest.raises(ModelUnavailable, match=r"model 'gone'.*model_index\.json missing"):
        loader.load_pipeline(entry, device="cpu")
    assert loader.LOAD_COUNT == count

