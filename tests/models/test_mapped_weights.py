"""A bf16 worker leaves the weights a picture reads little of mapped from the files: the same pictures, less memory."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from models.catalog import load_catalog

TINY = Path(__file__).resolve().parents[2] / "models" / "easel-tiny"
ENTRY = """[models.tiny]
path = "{path}"
precision = "bf16"
default_width = 64
default_height = 64
default_steps = 4
default_guidance = 2.0
"""


def _mapping_of(tensor: torch.Tensor) -> str:
    """The file (or "anon") of the memory mapping that holds tensor's data, from /proc/self/maps."""
    pointer = tensor.data_ptr()
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        low, high = (int(x, 16) for x in fields[0].split("-"))
        if low <= pointer < high:
            return fields[5] if len(fields) > 5 else "anon"
    return "unknown"


@pytest.fixture
def bf16_pipe(tmp_path: Path, fresh_loader):
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(ENTRY.format(path=TINY), encoding="utf-8")
    return fresh_loader.load_pipeline(load_catalog(catalog)["tiny"], device="cpu")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_encoder_and_token_table_stay_in_the_files(bf16_pipe) -> None:
    """Mapped from the safetensors files, in fp32, while the rest is bf16 in memory; the dtypes pipelines read stay bf16."""
    pipe = bf16_pipe
    table = pipe.text_encoder.embeddings.token_embedding.table
    assert table.dtype == torch.float32 and _mapping_of(table) == str(TINY / "text_encoder" / "model.safetensors")
    vae_file = str(TINY / "vae" / "diffusion_pytorch_model.safetensors")
    for name, tensor in [*pipe.vae.encoder.named_parameters(), *pipe.vae.quant_conv.named_parameters()]:
        assert tensor.dtype == torch.float32 and _mapping_of(tensor) == vae_file, name
    assert _mapping_of(next(pipe.unet.parameters())) != str(TINY / "unet" / "diffusion_pytorch_model.safetensors")
    assert pipe.text_encoder.dtype == pipe.vae.dtype == pipe.unet.dtype == torch.bfloat16
    assert "embeddings.token_embedding.weight" not in pipe.text_encoder.state_dict()


def test_token_rows_are_the_converted_tables(bf16_pipe) -> None:
    """Each looked-up row is what a bf16 table would hold: the same prompt embeddings as a whole-table conversion."""
    pipe = bf16_pipe
    ids = pipe.tokenizer("a small red star, blue background", padding="max_length", return_tensors="pt").input_ids
    with torch.no_grad():
        ours = pipe.text_encoder(ids)[0]
        embeddings = pipe.text_encoder.embeddings
        mapped = embeddings.token_embedding
        embeddings.token_embedding = torch.nn.Embedding.from_pretrained(mapped.table.to(torch.bfloat16))
        try:
            converted = pipe.text_encoder(ids)[0]
        finally:
            embeddings.token_embedding = mapped
    assert ours.dtype == torch.bfloat16 and torch.equal(ours, converted)


def test_a_cast_pipeline_keeps_working(bf16_pipe) -> None:
    """A whole-pipeline cast (as from_pipe does) casts the encoder like the rest and the rows follow; encoding works."""
    pipe = bf16_pipe.to(dtype=torch.float32)
    assert pipe.text_encoder.embeddings.token_embedding(torch.tensor([[1, 2]])).dtype == torch.float32
    pipe.to(dtype=torch.bfloat16)
    assert pipe.vae.encoder.conv_in.weight.dtype == torch.bfloat16
    latents = pipe.vae.encode(torch.zeros(1, 3, 64, 64, dtype=torch.bfloat16)).latent_dist.mean
    assert latents.dtype == torch.bfloat16


def _resident_kib(path: Path) -> int:
    """KiB of this process's mappings of path that are resident now (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
            inside = len(fields) > 5 and fields[5] == str(path)
        elif inside and fields[0] == "Rss:":
            total += int(fields[1])
    return total


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise and /proc/self/smaps")
def test_the_previewer_fit_gives_the_encoder_pages_back(bf16_pipe) -> None:
    """Fitting the live preview reads the encoder; release hands its pages back, and encoding reads them again."""
    from jobs.preview import LatentPreviewer
    from models.mapped_weights import release

    vae = bf16_pipe.vae
    vae_file = TINY / "vae" / "diffusion_pytorch_model.safetensors"
    LatentPreviewer(vae)
    encoder_kib = sum(p.numel() * p.element_size() for p in vae.encoder.parameters()) >> 10
    read = _resident_kib(vae_file)
    assert read >= encoder_kib // 2, (read, encoder_kib)
    assert release([vae.encoder, vae.quant_conv]) >= (encoder_kib << 10) // 2
    assert _resident_kib(vae_file) <= read - encoder_kib // 2
    assert release([bf16_pipe.unet]) == 0  # in memory, not mapped: never paged out
    before = vae.encode(torch.zeros(1, 3, 64, 64, dtype=torch.bfloat16)).latent_dist.mean
    assert before.dtype == torch.bfloat16 and torch.isfinite(before).all()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise and /proc/self/smaps")
def test_a_written_mapping_is_left_alone(bf16_pipe) -> None:
    """A page written in a private mapping is the process's own: its mapping is never advised, the write stays."""
    from models.mapped_weights import release

    weight = bf16_pipe.vae.encoder.conv_in.weight
    with torch.no_grad():
        weight[0, 0, 0, 0] += 1.0
    written = weight[0, 0, 0, 0].item()
    assert release([bf16_pipe.vae.encoder, bf16_pipe.vae.quant_conv]) == 0
    assert weight[0, 0, 0, 0].item() == written
