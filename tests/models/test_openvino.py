"""``flask models optimize``: the bundled model's UNet converted to OpenVINO once, and a worker's warm model using it.

A copy of easel-tiny (18 MB) in a temporary folder, so the IR is written beside that copy, not in the checkout.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support import ROOT
from tests.support.tiny_pipelines import catalog_entry

pytest.importorskip("openvino")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def picture(pipe) -> np.ndarray:
    image = pipe("a small red star in the top left, blue background", width=64, height=64, num_inference_steps=2,
                 guidance_scale=2.0, generator=torch.Generator("cpu").manual_seed(5), output_type="pil").images[0]
    return np.asarray(image)


def test_optimize_converts_the_unet_and_the_worker_uses_it(app, tmp_path: Path, fresh_loader) -> None:
    from jobs import pipelines
    from models.catalog import get_entry
    from models.openvino_unet import OpenVINOUNet, find_ir, needs_optimizing
    from models.precision import cpu_bf16_capability
    from webapp.launch import optimize_default_model

    model = shutil.copytree(ROOT / "models" / "easel-tiny", tmp_path / "easel-tiny",
                            ignore=shutil.ignore_patterns("openvino"))  # as a clean clone has it
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(catalog_entry("tiny", "sd", model, precision="fp32")
                       + catalog_entry("tiny-bf16", "sd", model, precision="bf16"), encoding="utf-8")
    app.config.update(EASEL_CATALOG=str(catalog), EASEL_DEVICE="cpu", EASEL_OPENVINO=True,
                      INSTANCE_DIR=str(tmp_path / "instance"))

    assert app.test_cli_runner().invoke(args=["models", "optimize", "missing"]).exit_code != 0
    launch = {**app.config, "EASEL_MODEL": "tiny", "EASEL_DEVICE": "cpu"}
    optimize_default_model({**launch, "EASEL_OPENVINO": False})  # `make run` with OpenVINO off converts nothing
    optimize_default_model({**launch, "EASEL_DEVICE": "cuda"})  # nor on a GPU
    assert not (model / "openvino").exists() and needs_optimizing(get_entry("tiny", catalog_path=catalog), "x")
    result = app.test_cli_runner().invoke(args=["models", "optimize", "tiny"])
    assert result.exit_code == 0, result.output
    assert "Converted tiny's UNet to OpenVINO" in result.output
    assert (model / "openvino" / "unet.xml").is_file() and (model / "openvino" / "unet.bin").is_file()
    made = (model / "openvino" / "unet.xml").stat().st_mtime_ns
    optimize_default_model(launch)  # `make run` after it: the IR is current, nothing is converted again
    assert (model / "openvino" / "unet.xml").stat().st_mtime_ns == made

    with app.app_context():
        state = pipelines.WorkerState()
        warm = state.warm("tiny")
        assert isinstance(warm.openvino, OpenVINOUNet) and warm.torch_unet is not warm.openvino
        # fp32 asked, fp32 computed: not OpenVINO's own default (bf16 on a CPU with AVX-512 BF16)
        assert warm.openvino.inference_precision == "f32"
        warm.use_unet(openvino=True)
        assert warm.pipe.unet is warm.openvino
        fast = picture(warm.pipe)
        warm.use_unet(openvino=False)
        assert warm.pipe.unet is warm.torch_unet
        reference = picture(warm.pipe)
        warm.use_unet(openvino=True)
        twin = warm.img2img()  # the image-to-image twin shares the OpenVINO UNet, other sizes and batches too
        assert twin.unet is warm.openvino
        start = warm.pipe("a blue square", width=128, height=128, num_inference_steps=1, num_images_per_prompt=2,
                          generator=torch.Generator("cpu").manual_seed(1)).images
        assert [image.size for image in start] == [(128, 128)] * 2
    assert psnr(fast, reference) >= 40, psnr(fast, reference)
    if cpu_bf16_capability() is not None:  # bf16 asked (auto's choice on such a CPU): the IR computes in bf16
        with app.app_context():
            assert pipelines.WorkerState().warm("tiny-bf16").openvino.inference_precision == "bf16"

    # new weights make the IR stale: the worker runs PyTorch until the model is optimized again (or make run)
    weights = model / "unet" / "diffusion_pytorch_model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert find_ir(model, "tiny", tmp_path / "instance") is None
    assert needs_optimizing(get_entry("tiny", catalog_path=catalog), tmp_path / "instance")


def test_openvino_setting_and_cpu_compile_in_the_device_plan(monkeypatch) -> None:
    from jobs.pipelines import plan_for
    from webapp.config import model_settings

    assert model_settings()["EASEL_OPENVINO"] is True  # on by default: it wins on the CPU (docs/precision.md)
    monkeypatch.setenv("EASEL_OPENVINO", "0")
    assert model_settings()["EASEL_OPENVINO"] is False
    plan = plan_for("cpu", compile=True, openvino=True)
    assert plan.compile and plan.openvino
    assert not plan_for("cuda", openvino=True).openvino


def test_a_small_unet_runs_a_static_compile_per_shape_with_the_same_output(tmp_path: Path) -> None:
    """Static shapes (one compile per batch and size met, a bounded number kept) give what the dynamic IR gives."""
    from diffusers import UNet2DConditionModel

    from models.openvino_unet import STATIC_SHAPES, OpenVINOUNet, convert, small_unet_shapes

    model = shutil.copytree(ROOT / "models" / "easel-tiny", tmp_path / "easel-tiny",
                            ignore=shutil.ignore_patterns("openvino"))
    unet = UNet2DConditionModel.from_pretrained(model / "unet").eval()

    class Pipe:  # what convert reads of a pipeline
        pass

    pipe = Pipe()
    pipe.unet = unet
    ir, _ = convert(pipe, model, "tiny", tmp_path / "instance")
    assert small_unet_shapes(unet) == STATIC_SHAPES  # easel-tiny is small: static copies by default
    static, dynamic = OpenVINOUNet(ir, unet, static_shapes=2), OpenVINOUNet(ir, unet, static_shapes=0)
    width = unet.config.cross_attention_dim
    for batch, side in ((2, 16), (4, 16), (2, 32), (2, 16)):
        g = torch.Generator().manual_seed(batch * side)
        sample, text = torch.randn(batch, 4, side, side, generator=g), torch.randn(batch, 77, width, generator=g)
        fast = static(sample, 500, encoder_hidden_states=text, return_dict=False)[0]
        plain = dynamic(sample, 500, encoder_hidden_states=text, return_dict=False)[0]
        assert fast.shape == sample.shape and torch.allclose(fast, plain, atol=1e-4), (fast - plain).abs().max()
    # two kept, the least recently used dropped: (4, 16) went when (2, 32) came; (2, 16) was used last
    assert [shapes[0] for shapes in static.compiled_shapes] == [(2, 4, 32, 32), (2, 4, 16, 16)]
    assert dynamic.compiled_shapes == []
