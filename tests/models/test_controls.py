"""Control models in the catalog (models/controls.py) and the built-in preprocessors (models/control_images.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from models.catalog import ModelError
from models.control_images import line_width, preprocess
from models.controls import load_controls
from models.training.scribbles import Placed, render_placed, silhouette

CATALOG = """
[controls.here]
path = "here"
base_kinds = ["sd"]
preprocessor = "scribble"

[controls.absent]
path = "absent"
base_kinds = ["sd"]

[controls.pickled]
path = "pickled"
base_kinds = ["sd"]

[controls.adapter]
path = "here"
type = "t2i-adapter"
base_kinds = ["sdxl"]
"""


def test_control_entries_say_why_they_cannot_be_used(tmp_path):
    for name, files in {"here": ["diffusion_pytorch_model.safetensors"], "pickled": ["diffusion_pytorch_model.bin"]}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"_class_name": "ControlNetModel"}))
        for file in files:
            (tmp_path / name / file).write_bytes(b"")
    (tmp_path / "catalog.toml").write_text(CATALOG)
    controls = load_controls(tmp_path / "catalog.toml")
    assert controls["here"].unavailable_reason() is None and controls["here"].default_scale == 1.0
    assert "config.json missing" in controls["absent"].unavailable_reason()
    assert "pickled weights (.bin)" in controls["pickled"].unavailable_reason()
    assert "holds a ControlNetModel, but the catalog says type = 't2i-adapter'" in controls["adapter"].unavailable_reason()
    (tmp_path / "catalog.toml").write_text(CATALOG + '\n[controls.bad]\npath = "x"\nbase_kinds = ["sd"]\n'
                                                     'preprocessor = "openpose"\n')
    with pytest.raises(ModelError, match="preprocessor 'openpose'"):
        load_controls(tmp_path / "catalog.toml")


def test_the_bundled_catalog_lists_the_bundled_scribble_control():
    control = load_controls()["easel-scribble"]
    assert (control.type, control.base_kinds, control.preprocessor) == ("controlnet", ("sd",), "scribble")
    assert control.unavailable_reason() is None


def outline_of(mask: np.ndarray) -> np.ndarray:
    grown = np.pad(mask, 1)
    inner = mask & grown[:-2, 1:-1] & grown[2:, 1:-1] & grown[1:-1, :-2] & grown[1:-1, 2:]
    return mask & ~inner


@pytest.mark.parametrize("preprocessor", ["scribble", "canny"])
def test_a_render_becomes_its_outline_white_on_black(preprocessor):
    scene = Placed("triangle", "green", "red", 0.6, 0.4, 0.18)  # close in brightness: the colours tell them apart
    control = np.asarray(preprocess(render_placed(scene), preprocessor).convert("L")) > 127
    edge = outline_of(silhouette(scene))
    near = np.zeros_like(edge)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            near |= np.roll(np.roll(edge, dy, 0), dx, 1)
    assert control.sum() > 0.5 * edge.sum()
    assert (control & near).sum() >= 0.9 * control.sum()  # the lines lie on the shape's outline
    assert not control[~near].any() or (control & ~near).sum() < 0.1 * control.sum()


def test_a_thick_dark_drawing_becomes_thin_white_strokes():
    drawing = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(drawing).ellipse([60, 60, 200, 200], outline="black", width=14)
    small = drawing.resize((64, 64), Image.Resampling.LANCZOS)
    control = np.asarray(preprocess(small, "scribble").convert("L")) > 127
    assert control[32, 32] == 0 and control[:, :12].sum() == 0  # inside and outside the circle stay black
    row = control[32]
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, row.astype(int), 0])))[::2]
    assert list(runs) and max(runs) <= line_width((64, 64)) + 1  # one line each side, a steady thin width


def test_the_depth_preprocessor_runs_only_with_installed_estimator_weights(tmp_path):
    from models.controls import load_estimators
    from models.estimators import depth_map
    from tests.support.tiny_pipelines import save_tiny_depth

    catalog = tmp_path / "catalog.toml"
    catalog.write_text('[preprocessors.depth]\npath = "dpt"\n')
    (entry,) = load_estimators(catalog).values()
    assert "config.json missing" in entry.unavailable_reason()  # named, not installed: not offered
    save_tiny_depth(tmp_path / "dpt")
    assert entry.unavailable_reason() is None
    picture = render_placed(Placed("circle", "red", "blue", 0.5, 0.5, 0.3))
    depth = depth_map(picture, entry.path)
    assert depth.mode == "RGB" and depth.size == (64, 64)
    pixels = np.asarray(depth)
    assert pixels.min() == 0 and pixels.max() == 255 and (pixels[..., 0] == pixels[..., 2]).all()  # grey, scaled
    (tmp_path / "dpt" / "model.safetensors").rename(tmp_path / "dpt" / "model.bin")
    assert "only pickled weights" in entry.unavailable_reason()
    catalog.write_text('[preprocessors.canny]\npath = "dpt"\n')
    with pytest.raises(ModelError, match="only depth and pose"):
        load_estimators(catalog)


def test_the_pose_preprocessor_draws_an_openpose_skeleton_with_installed_vitpose_weights(tmp_path):
    from models.controls import load_estimators
    from models.estimators import COLOURS, estimate, pose_map
    from tests.support.tiny_pipelines import save_tiny_pose

    catalog = tmp_path / "catalog.toml"
    catalog.write_text('[preprocessors.pose]\npath = "vitpose"\n')
    (entry,) = load_estimators(catalog).values()
    assert "config.json missing" in entry.unavailable_reason()
    save_tiny_pose(tmp_path / "vitpose")
    assert entry.unavailable_reason() is None
    picture = render_placed(Placed("star", "red", "blue", 0.5, 0.5, 0.4))
    every = np.asarray(pose_map(picture, entry.path, threshold=0.0))  # every keypoint, however unsure (random net)
    assert every.shape == (64, 64, 3) and every.any()
    drawn = {tuple(int(c) for c in pixel) for pixel in every.reshape(-1, 3)}
    assert drawn & set(COLOURS)  # joints in OpenPose's colours
    assert not np.asarray(pose_map(picture, entry.path, threshold=1.01)).any()  # nothing sure enough: black
    assert estimate("pose", picture, entry.path).size == (64, 64)


# diffusers' own StableDiffusionAdapterPipeline still calls its deprecated decode_latents
@pytest.mark.filterwarnings("ignore:The decode_latents method is deprecated:FutureWarning")
def test_a_t2i_adapter_runs_from_the_warm_pipeline_and_keeps_its_precision(app, tmp_path, fresh_loader):
    """A T2I-Adapter's pipeline is made with from_pipe in the warm model's precision: a bf16 worker stays bf16."""
    import torch
    from diffusers import T2IAdapter

    from jobs import control, pipelines
    from models import loader
    from tests.support import ROOT
    from tests.support.tiny_pipelines import catalog_entry

    adapter = T2IAdapter(in_channels=3, channels=[64, 128, 128], num_res_blocks=1, downscale_factor=4,
                         adapter_type="full_adapter")  # fits easel-tiny's UNet (64, 128, 128; 16x16 latents)
    adapter.save_pretrained(tmp_path / "adapter", safe_serialization=True)
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(catalog_entry("tiny-bf16", "sd", ROOT / "models" / "easel-tiny", precision="bf16")
                       + '\n[controls.sketch]\npath = "adapter"\ntype = "t2i-adapter"\nbase_kinds = ["sd"]\n',
                       encoding="utf-8")
    app.config.update(EASEL_CATALOG=str(catalog), EASEL_DEVICE="cpu", EASEL_OPENVINO=False)
    with app.app_context():
        warm = pipelines.WorkerState().warm("tiny-bf16")
        entry = load_controls(catalog)["sketch"]
        assert entry.unavailable_reason() is None
        pipe = control.pipeline(warm, [entry], "text")
        assert type(pipe).__name__ == "StableDiffusionAdapterPipeline" and pipe.adapter.dtype == torch.bfloat16
        assert warm.pipe.unet.dtype == torch.bfloat16 and warm.pipe.text_encoder.dtype == torch.bfloat16
        assert loader.precision_of(warm.pipe) == "bf16" and loader.precision_of(pipe) == "bf16"
        image = pipe("a red star, blue background", image=Image.new("RGB", (64, 64)), num_inference_steps=2,
                     guidance_scale=2.0, generator=torch.Generator().manual_seed(0)).images[0]
        assert image.size == (64, 64)
        with pytest.raises(ModelError, match="works alone and on text-to-image only"):
            control.pipeline(warm, [entry], "image")
