"""The bundled model's components, built from scratch: configs kept in one place."""

from __future__ import annotations

from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from models.training.data import IMAGE_SIZE
from models.training.tokenizer import MAX_LENGTH

LATENT_CHANNELS = 4
LATENT_SIZE = IMAGE_SIZE // 4
TEXT_DIM = 128


def build_vae() -> AutoencoderKL:
    """A small KL autoencoder: 64x64x3 pictures <-> 16x16x4 latents (4x downsampling)."""
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=LATENT_CHANNELS,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 64, 64), layers_per_block=1, norm_num_groups=16, sample_size=IMAGE_SIZE,
    )


def build_text_encoder(vocab_size: int, bos_id: int, eos_id: int) -> CLIPTextModel:
    """A small CLIP text transformer, trained jointly with the UNet."""
    config = CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=TEXT_DIM, intermediate_size=TEXT_DIM * 4, num_hidden_layers=3,
        num_attention_heads=4, max_position_embeddings=MAX_LENGTH, projection_dim=TEXT_DIM,
        bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=eos_id, hidden_act="gelu",
    )
    return CLIPTextModel(config)


def build_unet(width: int = 64, deep: bool = False) -> UNet2DConditionModel:
    """A small text-conditioned UNet with cross-attention at 16x16 and 8x8 (the committed checkpoint).

    deep=True: an experiment (see the model card): four levels, 16x16 -> 8x8 -> 4x4 -> 2x2, cross-attention
    at every level and in the 2x2 middle, channels (32, 64, 128, 128) — meant to give the network an
    absolute-position signal (zero padding reaches every cell at 4x4 and 2x2).
    """
    if deep:
        return UNet2DConditionModel(
            sample_size=LATENT_SIZE, in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS,
            down_block_types=("CrossAttnDownBlock2D",) * 4, up_block_types=("CrossAttnUpBlock2D",) * 4,
            block_out_channels=(32, 64, 128, 128), layers_per_block=1,
            cross_attention_dim=TEXT_DIM, attention_head_dim=4, norm_num_groups=16,
        )
    return UNet2DConditionModel(
        sample_size=LATENT_SIZE, in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(width, width * 2, width * 2), layers_per_block=1,
        cross_attention_dim=TEXT_DIM, attention_head_dim=4, norm_num_groups=32,  # 4 heads (diffusers' naming)
    )


def build_noise_scheduler() -> DDPMScheduler:
    """Zero-terminal-SNR v-prediction schedule: the background colour follows the prompt, not the noise."""
    return DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing",
        clip_sample=False, steps_offset=1,  # steps_offset is unused with trailing spacing; 1 avoids SD's warning
    )
