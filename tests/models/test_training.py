"""The training recipe's pieces: data, held-out split, measures, tokenizer, and a tiny resumable run."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline

from models.training.data import (
    POSITIONS,
    all_triples,
    caption,
    eval_caption,
    eval_scenes,
    held_out,
    random_scene,
    render,
    render_dataset,
)
from models.training.evaluate import load_results, score, weights_digest
from models.training.measure import read_image

ROOT = Path(__file__).resolve().parents[2]


def test_rendering_is_deterministic_whatever_the_process_count() -> None:
    one, scenes_one = render_dataset(1200, seed=3, processes=1)
    two, scenes_two = render_dataset(1200, seed=3, processes=2)
    assert scenes_one == scenes_two
    assert np.array_equal(one, two)
    other, _ = render_dataset(1200, seed=4, processes=1)
    assert not np.array_equal(one, other)


def test_held_out_triples_are_never_trained_on() -> None:
    held = {t for t in all_triples() if held_out(*t)}
    assert 20 <= len(held) <= len(all_triples()) // 6
    rng = random.Random(0)
    trained = {(sc.shape, sc.colour, sc.background) for sc in (random_scene(rng) for _ in range(5000))}
    assert not trained & held
    assert {(sc.shape, sc.colour, sc.background) for sc in eval_scenes()} <= held
    assert {sc.position for sc in eval_scenes()} == set(POSITIONS)


def test_captions_name_what_the_picture_shows() -> None:
    rng = random.Random(1)
    for _ in range(200):
        sc = random_scene(rng)
        text = caption(sc, rng)
        assert sc.colour in text and sc.shape in text and sc.background in text
    assert eval_caption(eval_scenes()[0]).endswith(f"{eval_scenes()[0].background} background")


@pytest.mark.parametrize("seed", [11, 12])
def test_measures_read_the_renders(seed: int) -> None:
    rng = random.Random(seed)
    scenes = [random_scene(rng, held=bool(seed % 2)) for _ in range(150)]
    rates = score([read_image(render(sc, rng)) for sc in scenes], scenes)
    assert min(rates.values()) >= 0.95, rates


def test_evaluation_drops_results_of_other_weights(tmp_path: Path) -> None:
    weights = tmp_path / "unet" / "diffusion_pytorch_model.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(b"first weights")
    first = weights_digest(tmp_path)
    results = tmp_path / "eval.json"
    results.write_text(json.dumps({"weights": first, "speed_cpu": {"seconds_per_image": 0.5}}))
    assert load_results(results, first)["speed_cpu"] == {"seconds_per_image": 0.5}

    weights.write_bytes(b"retrained weights")
    second = weights_digest(tmp_path)
    assert second != first
    assert load_results(results, second) == {"weights": second}


def test_tokenizer_keeps_caption_words_whole() -> None:
    from models.training.tokenizer import build_tokenizer

    tok = build_tokenizer()
    for word in ("purple", "triangle", "background", "bottom", "right", "corner"):
        assert tok.tokenize(word) == [word + "</w>"]
    ids = tok("a red star in the top left, blue background").input_ids
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id


@pytest.mark.timeout(240)
def test_a_tiny_run_exports_a_loadable_pipeline_and_resumes(tmp_path: Path) -> None:
    out, work = tmp_path / "model", tmp_path / "work"
    def train(*options: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "models.training.train", "--out", str(out), "--work", str(work),
               "--images", "96", "--vae-steps", "3", "--vae-batch", "4", "--batch", "4",
               "--checkpoint-every", "2", "--device", "cpu", "--shape-steps", "2", "--shape-scenes", "8",
               *options]
        env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=200)

    first = train("--unet-steps", "3", "--decoder-steps", "2")
    assert first.returncode == 0, first.stderr[-2000:]
    for sub in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (out / sub).is_dir(), sub
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in out.rglob("*") if p.is_file())

    again = train("--unet-steps", "4", "--decoder-steps", "2")  # a longer run picks up the saved state instead of starting over
    assert again.returncode == 0, again.stderr[-2000:]
    log = (work / "train.log").read_text()
    assert "vae: resumed at step 3" in log and "unet: resumed at step 3" in log
    assert "decoder: resumed at step 2" in log

    # The decoder fine-tuning leaves the encoder alone: the UNet's latents stay what it was trained on.
    trained = AutoencoderKL.from_pretrained(str(out), subfolder="vae").state_dict()
    before = torch.load(work / "vae.pt")["model"]
    assert all(torch.equal(trained[k], before[k]) for k in before if k.startswith(("encoder.", "quant_conv.")))
    assert not all(torch.equal(trained[k], before[k]) for k in before if k.startswith("decoder."))

    pipe = StableDiffusionPipeline.from_pretrained(str(out), local_files_only=True)
    image = pipe("a red star in the top left, blue background", num_inference_steps=2,
                 generator=torch.Generator().manual_seed(0)).images[0]
    assert image.size == (64, 64)

    # --decoder-only tunes the exported decoder in place, keeps the rest, and records the run.
    unet_before = (out / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    tuned = train("--decoder-only", "--decoder-steps", "2")
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    after = AutoencoderKL.from_pretrained(str(out), subfolder="vae").state_dict()
    assert all(torch.equal(after[k], trained[k]) for k in trained if k.startswith(("encoder.", "quant_conv.")))
    assert not all(torch.equal(after[k], trained[k]) for k in trained if k.startswith("decoder."))
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == unet_before
    assert "_name_or_path" not in json.loads((out / "vae" / "config.json").read_text())
    assert json.loads((out / "training.json").read_text())["runs"][-1]["part"].startswith("decoder fine-tuning")

    # --shapes-only: the shape fine-tuning alone, in place, the encoder and UNet untouched, the run recorded.
    shaped = train("--shapes-only")
    assert shaped.returncode == 0, shaped.stderr[-2000:]
    final = AutoencoderKL.from_pretrained(str(out), subfolder="vae").state_dict()
    assert all(torch.equal(final[k], after[k]) for k in after if k.startswith(("encoder.", "quant_conv.")))
    assert not all(torch.equal(final[k], after[k]) for k in after if k.startswith("decoder."))
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == unet_before
    run = json.loads((out / "training.json").read_text())["runs"][-1]
    assert run["part"].startswith("shape fine-tuning") and run["args"]["shape_steps"] == "2"
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in out.rglob("*") if p.is_file())
