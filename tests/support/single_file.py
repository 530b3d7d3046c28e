"""Write a diffusers SD 1.x or SDXL pipeline as one original-format (LDM) .safetensors checkpoint, for round trips.

The installed diffusers reads such files (from_single_file) but has no writer, so this renames the keys
the other way for the layouts the tiny pipelines use: any number of blocks and layers per block, a
UNet whose first blocks have cross-attention, a KL VAE, CLIP text encoders, and SDXL's second encoder
in OpenCLIP layout (through diffusers' own DIFFUSERS_TO_LDM_MAPPING). Test support only.
"""

from __future__ import annotations

from pathlib import Path

RESNET_PARTS = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
                ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))
UNET_FIXED = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
              "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
              "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}
VAE_ATTENTION_PARTS = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _resnet(rest: str) -> str:
    """A diffusers resnet parameter name in LDM terms."""
    for ours, theirs in RESNET_PARTS:
        if rest.startswith(ours + "."):
            return theirs + rest[len(ours):]
    return rest


def _unet_key(key: str, layers: int, up_has_attention: list[bool]) -> str:
    """The LDM name of one diffusers UNet parameter."""
    head, _, rest = key.partition(".")
    for ours, theirs in UNET_FIXED.items():
        if key.startswith(ours + "."):
            return theirs + key[len(ours):]
    parts = key.split(".")
    if head == "down_blocks":
        block, kind, index, rest = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
        if kind == "downsamplers":
            return f"input_blocks.{(block + 1) * (layers + 1)}.0.op.{rest.removeprefix('conv.')}"
        slot = 1 + block * (layers + 1) + index
        return f"input_blocks.{slot}.0.{_resnet(rest)}" if kind == "resnets" else f"input_blocks.{slot}.1.{rest}"
    if head == "up_blocks":
        block, kind, index, rest = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
        if kind == "upsamplers":
            return f"output_blocks.{block * (layers + 1) + layers}.{2 if up_has_attention[block] else 1}.{rest}"
        slot = block * (layers + 1) + index  # up blocks have one resnet more
        return f"output_blocks.{slot}.0.{_resnet(rest)}" if kind == "resnets" else f"output_blocks.{slot}.1.{rest}"
    if head == "mid_block":
        kind, index, rest = parts[1], int(parts[2]), ".".join(parts[3:])
        return f"middle_block.{2 * index}.{_resnet(rest)}" if kind == "resnets" else f"middle_block.1.{rest}"
    raise ValueError(f"no LDM name for UNet parameter {key}")


def _vae_key(key: str, blocks: int) -> tuple[str, bool]:
    """The LDM name of one VAE parameter, and whether it is a linear weight the LDM stores as a 1x1 conv."""
    parts = key.split(".")
    side = parts[0]
    if side not in ("encoder", "decoder") or parts[1] in ("conv_in", "conv_out"):
        return key, False
    if parts[1] == "conv_norm_out":
        return ".".join([side, "norm_out", *parts[2:]]), False
    if parts[1] == "mid_block":
        kind, index, rest = parts[2], int(parts[3]), ".".join(parts[4:])
        if kind == "resnets":
            return f"{side}.mid.block_{index + 1}.{rest.replace('conv_shortcut', 'nin_shortcut')}", False
        for ours, theirs in VAE_ATTENTION_PARTS.items():
            if rest.startswith(ours + "."):
                return f"{side}.mid.attn_1.{theirs}{rest[len(ours):]}", rest.endswith("weight") and ours != "group_norm"
    block, kind, rest = int(parts[2]), parts[3], ".".join(parts[5:])
    level = block if side == "encoder" else blocks - 1 - block  # the LDM numbers decoder levels bottom up
    stage = "down" if side == "encoder" else "up"
    if kind in ("downsamplers", "upsamplers"):
        return f"{side}.{stage}.{level}.{stage}sample.{rest}", False
    return f"{side}.{stage}.{level}.block.{parts[4]}.{rest.replace('conv_shortcut', 'nin_shortcut')}", False


def _open_clip(text_encoder) -> dict:
    """SDXL's second text encoder under OpenCLIP names (fused q/k/v, transposed projection)."""
    import torch
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    names = DIFFUSERS_TO_LDM_MAPPING["openclip"]
    state = text_encoder.state_dict()
    out = {names["layers"][k]: (v.T.contiguous() if k == "text_projection.weight" else v)
           for k, v in state.items() if k in names["layers"]}
    layers = text_encoder.config.num_hidden_layers
    for i in range(layers):
        ours = f"text_model.encoder.layers.{i}."
        theirs = f"transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[f"{theirs}attn.in_proj_{kind}"] = torch.cat(
                [state[f"{ours}self_attn.{p}_proj.{kind}"] for p in "qkv"])
        for key, value in state.items():
            if key.startswith(ours) and "_proj." not in key.replace("out_proj.", "out_prj."):
                rest = key[len(ours):]
                for new, old in (("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"),
                                 ("mlp.fc2", "mlp.c_proj"), ("self_attn.out_proj", "attn.out_proj")):
                    rest = rest.replace(new, old)
                out[theirs + rest] = value
    return out


def sd_state_dict(pipe) -> dict:
    """The pipeline's UNet, VAE and text encoder(s) under LDM checkpoint names (SDXL: conditioner.embedders)."""
    unet_config = pipe.unet.config
    up_has_attention = ["CrossAttn" in name for name in unet_config.up_block_types]
    out = {f"model.diffusion_model.{_unet_key(k, unet_config.layers_per_block, up_has_attention)}": v
           for k, v in pipe.unet.state_dict().items()}
    for key, value in pipe.vae.state_dict().items():
        name, to_conv = _vae_key(key, len(pipe.vae.config.block_out_channels))
        out[f"first_stage_model.{name}"] = value.reshape(*value.shape, 1, 1) if to_conv else value
    xl = getattr(pipe, "text_encoder_2", None) is not None
    first = "conditioner.embedders.0.transformer." if xl else "cond_stage_model.transformer."
    for key, value in pipe.text_encoder.state_dict().items():
        out[f"{first}{key if key.startswith('text_model.') else 'text_model.' + key}"] = value
    if xl:
        out.update({f"conditioner.embedders.1.model.{k}": v for k, v in _open_clip(pipe.text_encoder_2).items()})
    return out


def write_sd_single_file(pipe, path: Path) -> Path:
    """Save an SD 1.x or SDXL pipeline as one original-format .safetensors checkpoint."""
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sd_state_dict(pipe).items()}, str(path))
    return path
