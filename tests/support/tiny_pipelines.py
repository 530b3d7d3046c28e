"""Tiny random-weight pipelines of each supported architecture, saved as diffusers folders.

Built the way diffusers' own tests build dummy components (small configs, random weights) and with
the bundled CLIP tokenizer, so nothing is downloaded. Each builds and generates in a second or two
on the CPU at 32x32.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

# diffusers' Euler schedulers (SDXL's default) call np.array on a torch tensor, which numpy 2.4 warns about
EULER_NUMPY_WARNING = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
ROOT = Path(__file__).resolve().parents[2]
TOKENIZER_DIR = ROOT / "models" / "easel-tiny" / "tokenizer"
ARCHITECTURES = ("sd", "sdxl", "sd3")
SIZE = 32  # pixels; every tiny pipeline generates at SIZE x SIZE


def _tokenizer():
    """The bundled 627-token CLIP tokenizer (max length 32)."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR))


def _clip_config(tokenizer, hidden_size: int = 32):
    """A two-layer CLIP text config whose special tokens match the bundled tokenizer."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        hidden_size=hidden_size, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, layer_norm_eps=1e-5,
        vocab_size=len(tokenizer), max_position_embeddings=tokenizer.model_max_length,
        projection_dim=32, hidden_act="gelu",
    )


def _vae(blocks: tuple[int, ...] = (8, 8), **extra):
    """A small KL autoencoder (scale factor 2 with two blocks)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=list(blocks), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=2,
        down_block_types=["DownEncoderBlock2D"] * len(blocks), up_block_types=["UpDecoderBlock2D"] * len(blocks),
        sample_size=SIZE, **extra,
    )


def build_sd():
    """A StableDiffusionPipeline of dummy components (SD 1.x layout)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    tokenizer = _tokenizer()
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=SIZE // 2, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=2, attention_head_dim=2,
    )
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    return StableDiffusionPipeline(
        vae=_vae(), text_encoder=CLIPTextModel(_clip_config(tokenizer)), tokenizer=tokenizer, unet=unet,
        scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def build_sdxl():
    """A StableDiffusionXLPipeline of dummy components (two text encoders, text-time conditioning)."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = _tokenizer()
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=SIZE // 2, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * 8 + 32,  # six size/crop ids + the pooled text_encoder_2 output
        cross_attention_dim=32 + 40, norm_num_groups=2,  # both encoders' hidden states side by side
    )
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading")
    return StableDiffusionXLPipeline(
        vae=_vae(), text_encoder=CLIPTextModel(_clip_config(tokenizer)), tokenizer=tokenizer,
        # a different width, as in the real model: single-file loading tells the two encoders apart by it
        text_encoder_2=CLIPTextModelWithProjection(_clip_config(tokenizer, hidden_size=40)), tokenizer_2=tokenizer,
        unet=unet, scheduler=scheduler, force_zeros_for_empty_prompt=True)


def build_sd3():
    """A StableDiffusion3Pipeline of dummy components, without the T5 encoder (text_encoder_3=None)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection

    tokenizer = _tokenizer()
    transformer = SD3Transformer2DModel(
        sample_size=SIZE, patch_size=2, in_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=4,
        caption_projection_dim=32, joint_attention_dim=32, pooled_projection_dim=64, out_channels=4)
    return StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=_vae((8,), use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035),
        text_encoder=CLIPTextModelWithProjection(_clip_config(tokenizer)), tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(_clip_config(tokenizer)), tokenizer_2=tokenizer,
        text_encoder_3=None, tokenizer_3=None)


BUILDERS: dict[str, Callable[[], object]] = {"sd": build_sd, "sdxl": build_sdxl, "sd3": build_sd3}


def save_tiny(kind: str, folder: Path, seed: int = 0) -> Path:
    """Build the tiny pipeline of an architecture with seeded random weights and save it as safetensors."""
    torch.manual_seed(seed)
    pipe = BUILDERS[kind]()
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def save_tiny_inpainting(folder: Path, seed: int = 0) -> Path:
    """A tiny SD inpainting checkpoint: a StableDiffusionInpaintPipeline whose UNet takes 9 channels (latents,
    mask, masked picture), random weights, saved as safetensors."""
    from diffusers import StableDiffusionInpaintPipeline, UNet2DConditionModel

    torch.manual_seed(seed)
    pipe = build_sd()
    unet = UNet2DConditionModel(**{**pipe.unet.config, "in_channels": 9})
    StableDiffusionInpaintPipeline(**{**pipe.components, "unet": unet}).save_pretrained(str(folder),
                                                                                       safe_serialization=True)
    return folder


def save_tiny_depth(folder: Path, seed: int = 0) -> Path:
    """A tiny random-weight DPT depth estimator (transformers) with its image processor, saved as safetensors: what
    an operator installs for the depth preprocessor ([preprocessors.depth])."""
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    torch.manual_seed(seed)
    config = DPTConfig(image_size=32, patch_size=16, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                       intermediate_size=37, backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[16, 16, 32, 32],
                       reassemble_factors=[4, 2, 1, 0.5], fusion_hidden_size=16)
    DPTForDepthEstimation(config).eval().save_pretrained(str(folder), safe_serialization=True)
    DPTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(str(folder))
    return folder


def save_tiny_pose(folder: Path, seed: int = 0) -> Path:
    """A tiny random-weight ViTPose (transformers, COCO's 17 keypoints) with its image processor, saved as
    safetensors: what an operator installs for the pose preprocessor ([preprocessors.pose])."""
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation, VitPoseImageProcessor

    torch.manual_seed(seed)
    backbone = VitPoseBackboneConfig(image_size=[64, 48], patch_size=[16, 16], hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=37, out_indices=[2])
    config = VitPoseConfig(backbone_config=backbone, use_simple_decoder=True, num_labels=17)
    VitPoseForPoseEstimation(config).eval().save_pretrained(str(folder), safe_serialization=True)
    VitPoseImageProcessor(size={"height": 64, "width": 48}).save_pretrained(str(folder))
    return folder


def catalog_entry(name: str, kind: str, path: Path | str, **extra: object) -> str:
    """A [models.<name>] TOML table for a tiny pipeline at SIZE x SIZE with few steps."""
    fields: dict[str, object] = {
        "label": name, "kind": kind, "path": str(path), "default_width": SIZE, "default_height": SIZE,
        "default_steps": 2, "default_guidance": 2.0, "sizes": [[SIZE, SIZE]], "max_steps": 50, "job_timeout": 120,
    }
    fields.update(extra)
    lines = [f"[models.{name}]"]
    for key, value in fields.items():
        lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    """A TOML literal for the simple values catalog entries use."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def save_tiny_lora(folder: Path, out: Path, seed: int = 1, rank: int = 4) -> Path:
    """A random LoRA (non-zero, so it changes images) for the UNet of the tiny pipeline in folder, as safetensors."""
    from diffusers import DiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = DiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    torch.manual_seed(seed)
    config = LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False,
                        target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    pipe.unet.add_adapter(config)
    type(pipe).save_lora_weights(save_directory=str(out.parent), unet_lora_layers=get_peft_model_state_dict(pipe.unet),
                                 weight_name=out.name, safe_serialization=True)
    return out
