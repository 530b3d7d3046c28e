"""An SD 1.5-architecture pipeline with seeded random weights, built and saved here: no downloads.

The benchmarks' real-size model (``tests/benchmarks/test_real_size.py`` and, with ``EASEL_BENCH_SD15``,
``test_batching.py``): SD 1.5's 860M-parameter UNet, its VAE and CLIP ViT-L/14 text tower at their real
shapes; the bundled tokenizer padded to CLIP's 77 tokens. Saved once as fp32 safetensors (4 GB); an
existing folder is reused.
"""
from __future__ import annotations

from pathlib import Path

from tests.support import ROOT


def build_sd15(folder: Path) -> Path:
    """Save an SD 1.5-architecture pipeline with seeded random weights (fp32 safetensors) to folder."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    if (folder / "model_index.json").is_file():
        return folder
    torch.manual_seed(0)
    tokenizer = CLIPTokenizer.from_pretrained(str(ROOT / "models" / "easel-tiny" / "tokenizer"), model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(  # CLIP ViT-L/14's text tower, as in SD 1.5
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)  # diffusers' defaults are SD 1.5's blocks
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        sample_size=512)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    assert 855e6 < sum(p.numel() for p in unet.parameters()) < 865e6
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder
