"""Precision per device: auto from PyTorch's CPU capability check, the catalog key, EASEL_PRECISION, and the VAE
decode in fp32 arithmetic from bf16-stored weights."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from models import loader, precision
from models.catalog import ModelError, load_catalog

ENTRY = """[models.{name}]
path = "{path}"
default_width = 64
default_height = 64
default_steps = 4
default_guidance = 2.0
{extra}
"""
TINY = Path(__file__).resolve().parents[2] / "models" / "easel-tiny"


def _catalog(tmp_path: Path, extra: str = "", name: str = "tiny") -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(ENTRY.format(name=name, path=TINY, extra=extra), encoding="utf-8")
    return path


def test_auto_reads_the_cpu_capability_check() -> None:
    """On this CPU (AVX-512 BF16) auto is bf16; the answer comes from torch.cpu.get_capabilities()."""
    capabilities = torch.cpu.get_capabilities()
    has_bf16 = bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))
    assert precision.resolve("auto", "cpu") == ("bf16" if has_bf16 else "fp32")
    if not has_bf16:
        pytest.skip("this CPU lacks AVX-512 BF16 and AMX: auto is fp32 here")
    assert loader.pick_dtype("cpu") == torch.bfloat16


def test_auto_is_fp32_when_the_capability_check_says_no(monkeypatch) -> None:
    monkeypatch.setattr(precision, "cpu_bf16_capability", lambda: None)
    assert precision.resolve("auto", "cpu") == "fp32"
    assert loader.pick_dtype("cpu") == torch.float32
    assert precision.resolve("bf16", "cpu") == "bf16"  # asked for by name, it is honoured


def test_setting_overrides_the_catalog_and_names_are_checked() -> None:
    assert precision.choose("fp32", "bf16", "cpu") == "bf16"  # EASEL_PRECISION wins
    assert precision.choose("fp32", "", "cpu") == "fp32"  # unset: the entry's own
    assert precision.choose(None, None, "mps") == "fp16"
    with pytest.raises(precision.PrecisionError, match=r"EASEL_PRECISION: precision 'half' is not one of auto, fp32"):
        precision.check("half", "EASEL_PRECISION")


def test_catalog_precision_key(tmp_path: Path) -> None:
    assert load_catalog(_catalog(tmp_path))["tiny"].precision == "auto"
    assert load_catalog(_catalog(tmp_path, 'precision = "FP32"'))["tiny"].precision == "fp32"


@pytest.mark.parametrize("value", ['"fp8"', '"bfloat"', "16", '""'])
def test_catalog_refuses_an_unknown_precision(tmp_path: Path, value: str) -> None:
    with pytest.raises(ModelError, match=r"catalog entry 'tiny': precision .* is not one of auto, fp32, bf16, fp16"):
        load_catalog(_catalog(tmp_path, f"precision = {value}"))


def test_environment_setting(monkeypatch) -> None:
    from webapp.config import ConfigError, model_settings

    monkeypatch.setenv("EASEL_PRECISION", " BF16 ")
    assert model_settings()["EASEL_PRECISION"] == "bf16"
    monkeypatch.setenv("EASEL_PRECISION", "")
    assert model_settings()["EASEL_PRECISION"] == ""
    monkeypatch.setenv("EASEL_PRECISION", "double")
    with pytest.raises(ConfigError, match=r"EASEL_PRECISION: precision 'double' is not one of"):
        model_settings()


def test_bf16_pipeline_decodes_in_fp32(tmp_path: Path, fresh_loader) -> None:
    """The denoiser runs in bf16, the VAE's decoder in fp32, also in the image-to-image twin; fp32 stays fp32."""
    catalog = _catalog(tmp_path, 'precision = "bf16"')
    pipe = fresh_loader.get_pipeline("tiny", device="cpu", catalog_path=catalog)
    assert fresh_loader.precision_of(pipe) == "bf16"
    assert pipe.unet.dtype == pipe.text_encoder.dtype == torch.bfloat16
    assert pipe.vae.dtype == torch.bfloat16
    assert pipe.vae.encoder.conv_in.weight.dtype == torch.float32  # left mapped from the file (models/mapped_weights.py)
    decoded: list[torch.dtype] = []
    pipe.vae.decoder.conv_out.register_forward_hook(lambda module, args, out: decoded.append(out.dtype))
    encoded: list[torch.dtype] = []
    pipe.vae.quant_conv.register_forward_hook(lambda module, args, out: encoded.append(out.dtype))
    image = pipe("a red star", num_inference_steps=2, guidance_scale=2.0,
                 generator=torch.Generator("cpu").manual_seed(0)).images[0]
    assert decoded == [torch.float32] and image.size == (64, 64)
    twin = fresh_loader.img2img_from(pipe)
    assert fresh_loader.precision_of(twin) == "bf16" and pipe.vae.decoder.conv_in.weight.dtype == torch.float32
    assert {p.dtype for p in pipe.vae.decoder.parameters()} == {torch.bfloat16}  # stored in bf16, read as fp32
    twin("a red star", image=image, strength=0.5, num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    assert decoded == [torch.float32] * 2
    assert encoded == [torch.bfloat16]  # computed in the encoder's dtype, handed back in the pipeline's
    assert fresh_loader.loaded_precision("tiny", "cpu") == "bf16"

    importlib.reload(fresh_loader)  # an empty cache: the next load is a fresh one
    fp32 = fresh_loader.get_pipeline("tiny", device="cpu", catalog_path=catalog, configured_precision="fp32")
    assert fresh_loader.precision_of(fp32) == "fp32" and fp32.unet.dtype == torch.float32
    same = np.asarray(fp32("a red star", num_inference_steps=2, guidance_scale=2.0,
                           generator=torch.Generator("cpu").manual_seed(0)).images[0], dtype=float)
    mse = ((np.asarray(image, dtype=float) - same) ** 2).mean()
    assert 10 * np.log10(255 ** 2 / max(mse, 1e-9)) >= 30  # the same seed, the same picture to the eye


def test_streamed_bf16_weights_match_diffusers_cast(tmp_path: Path, fresh_loader) -> None:
    """The tensor-by-tensor bf16 read (low peak memory) gives exactly the weights of a cast of the fp32 load;
    the VAE's encoder and the token table are the fp32 load's own."""
    from diffusers import StableDiffusionPipeline

    pipe = fresh_loader.load_pipeline(load_catalog(_catalog(tmp_path, 'precision = "bf16"'))["tiny"], device="cpu")
    full = StableDiffusionPipeline.from_pretrained(str(TINY), dtype=torch.float32, local_files_only=True)
    for name in ("unet", "text_encoder", "vae"):
        # the decoder's weights are parametrized (read as fp32): "conv_in.parametrizations.weight.original"
        ours = {key.replace("parametrizations.", "").replace(".original", ""): tensor
                for key, tensor in getattr(pipe, name).state_dict().items()}
        fp32 = getattr(full, name).state_dict()
        table = fp32.pop("embeddings.token_embedding.weight", None)
        if table is not None:
            assert torch.equal(getattr(pipe, name).embeddings.token_embedding.table, table)
        assert ours.keys() == fp32.keys()
        for key, tensor in fp32.items():
            mapped = name == "vae" and key.split(".")[0] in ("encoder", "quant_conv")
            expected = tensor.to(torch.bfloat16) if tensor.is_floating_point() and not mapped else tensor
            assert ours[key].dtype == expected.dtype and torch.equal(ours[key], expected), (name, key)


def _vae32():
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(str(TINY / "vae"), dtype=torch.float32, local_files_only=True)


def test_decoder_stores_bf16_and_computes_fp32() -> None:
    """Beside bf16 the decoder's weights take half the memory, every layer computes in fp32, and the decode matches
    the fp32 decoder's without the banding of bf16 arithmetic (fewer levels along a smooth gradient)."""
    import copy

    from models.training.evaluate import vae_decode_check

    vae32 = _vae32()
    vae = copy.deepcopy(vae32).to(torch.bfloat16)  # as a bf16 pipeline has it before decode_in_fp32
    loader.decode_in_fp32(SimpleNamespace(vae=vae))
    parts = (vae.decoder, vae.post_quant_conv)
    assert {p.dtype for part in parts for p in part.parameters()} == {torch.bfloat16}
    stored = sum(p.numel() * p.element_size() for part in parts for p in part.parameters())
    assert stored * 2 == sum(p.numel() * p.element_size() for part in (vae32.decoder, vae32.post_quant_conv)
                             for p in part.parameters())
    assert vae.decoder.conv_in.weight.dtype == vae.post_quant_conv.bias.dtype == torch.float32

    outputs: set[torch.dtype] = set()
    hooks = [m.register_forward_hook(lambda module, args, out: outputs.add(out.dtype))
             for part in parts for m in part.modules() if not list(m.children())]  # every layer
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ours = vae.decode(latents.to(torch.bfloat16)).sample  # a bf16 pipeline's latents go in as they are
        reference = vae32.decode(latents).sample
    for hook in hooks:
        hook.remove()
    assert outputs == {torch.float32} and ours.dtype == torch.float32
    assert (ours - reference).abs().max() < 0.02  # bf16-rounded weights: well under 3 levels of 255

    check = vae_decode_check(vae32, vae)  # the gradient that a bf16 decoder bands
    # bf16-rounded weights: under 1.5 levels of 255 RMS (45 dB); easel-tiny's decoder measures 47.6 dB
    assert check["psnr_easel_vs_fp32"] >= 45 and check["psnr_easel_vs_fp32"] > check["psnr_bf16_vs_fp32"]
    assert check["red_levels_along_row_easel"] >= check["red_levels_along_row_fp32"] - 2
    assert check["red_levels_along_row_easel"] > check["red_levels_along_row_bf16"]


def test_decoder_storage_returns_to_bf16_after_a_cast() -> None:
    """from_pipe (and SDXL's image-to-image) cast the whole VAE: applying again, or the next decode, puts the
    decoder's storage back in bf16, and the picture is the same."""
    vae = _vae32().to(torch.bfloat16)
    holder = SimpleNamespace(vae=vae)
    loader.decode_in_fp32(holder)
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.bfloat16)
    with torch.inference_mode():
        before = vae.decode(latents).sample
        vae.to(torch.float32)
        assert {p.dtype for p in vae.decoder.parameters()} == {torch.float32}
        after_cast = vae.decode(latents).sample  # the pre-hook stores it in bf16 again first
        assert {p.dtype for p in vae.decoder.parameters()} == {torch.bfloat16}
        vae.to(torch.float32)
        loader.decode_in_fp32(holder)
        assert {p.dtype for p in vae.decoder.parameters()} == {torch.bfloat16}
        again = vae.decode(latents).sample
    assert torch.equal(before, after_cast) and torch.equal(before, again)
