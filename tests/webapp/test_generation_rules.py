"""webapp/generation_rules.py: the studio form and /api/v1 refuse the same bad inputs with the same words."""
from __future__ import annotations

import html
from pathlib import Path

import pytest

from models.catalog import LoraEntry, load_catalog
from tests.support import TEST_CATALOG, api_token, bearer, submit

BAD_INPUTS = [
    pytest.param({"prompt": "   "}, "prompt", "Describe the picture you want.", id="blank prompt"),
    pytest.param({"prompt": "x" * 1001}, "prompt", "Keep the prompt under 1000 characters.", id="long prompt"),
    pytest.param({"negative_prompt": "x" * 1001}, "negative_prompt", "Keep it under 1000 characters.", id="long negative"),
    pytest.param({"model": "missing-model"}, "model", "Not installed is not available on this site", id="absent model"),
    pytest.param({"model": "no-such-model"}, "model", "Choose one of the listed models.", id="unknown model"),
    pytest.param({"width": 512, "height": 512}, "width", "Easel Tiny makes these sizes only: 64×64.", id="size"),
    pytest.param({"steps": 51}, "steps", "Use 1 to 50 steps with Easel Tiny.", id="too many steps"),
    pytest.param({"steps": 0}, "steps", "Use 1 to 50 steps with Easel Tiny.", id="no steps"),
    pytest.param({"guidance": 15.5}, "guidance", "Use a guidance from 0 to 15 with Easel Tiny.", id="guidance"),
    pytest.param({"guidance": -1}, "guidance", "Use a guidance from 0 to 15 with Easel Tiny.", id="negative guidance"),
    pytest.param({"num_images": 5}, "num_images", "Choose 1 to 4 images.", id="too many images"),
    pytest.param({"num_images": 0}, "num_images", "Choose 1 to 4 images.", id="no images"),
    pytest.param({"seed": 2**32}, "seed", "The seed is a whole number from 0 to 4294967295", id="seed too big"),
    pytest.param({"style": "cubism"}, "style", "Choose one of the styles", id="unknown style"),
    pytest.param({"scheduler": "Euler b"}, "scheduler", "There is no sampler “Euler b”; choose one of “Euler”",
                 id="unknown sampler"),
]


@pytest.mark.parametrize(("bad", "field", "message"), BAD_INPUTS)
def test_form_and_api_refuse_alike(app, signed_in, bad, field, message):
    form = submit(signed_in, **bad)
    assert form.status_code == 400
    assert message in html.unescape(form.get_data(as_text=True))
    from webapp.extensions import db
    from webapp.tables import User

    with app.app_context():
        user_id = db.session.scalar(db.select(User.id))
    body = {"prompt": "a red circle", "model": "easel-tiny", "width": 64, "height": 64, "steps": 8, "guidance": 5.0,
            "num_images": 1, **bad}
    api = app.test_client().post("/api/v1/generations", json=body, headers=bearer(api_token(app, user_id)))
    assert api.status_code == 400
    assert any(message in text for text in api.get_json()["errors"][field]), api.get_json()



def _lora(folder: Path, name: str, scheduler: str | None = None, **steps) -> LoraEntry:
    """A catalog LoRA for sd models whose file is a placeholder (the rules read only its presence)."""
    path = folder / f"{name}.safetensors"
    path.write_bytes(b"placeholder")
    return LoraEntry(name=name, label=name.upper(), path=path, base_kinds=("sd",), default_scale=0.7,
                     trigger_words=(), scheduler=scheduler, min_steps=steps.get("min_steps"),
                     max_steps=steps.get("max_steps"), default_steps=None, default_guidance=None, description="")


def test_lora_rules_schedulers_steps_and_scales(tmp_path):
    from webapp import generation_rules as rules

    entry = load_catalog(TEST_CATALOG)["easel-tiny"]
    loras = {"lcm": _lora(tmp_path, "lcm", "LCMScheduler", min_steps=2, max_steps=8),
             "tcd": _lora(tmp_path, "tcd", "TCDScheduler"), "ink": _lora(tmp_path, "ink")}
    assert rules.loras_problem(loras, entry, [("ink", None), ("lcm", 1.5)]) is None
    assert rules.loras_problem(loras, entry, [("lcm", None), ("tcd", None)]) == \
        "LCM and TCD need different schedulers; choose one of them."
    assert rules.loras_problem(loras, entry, [("ink", float("nan"))]) == "Use a scale from 0 to 2."
    assert rules.loras_problem(loras, entry, [("x" * 100, None)]).startswith(f"There is no LoRA “{'x' * 60}…”")
    chosen = rules.chosen_loras(loras, [("ink", None), ("lcm", 0.5), ("nope", 1.0)])
    assert [(lora.name, scale) for lora, scale in chosen] == [("ink", 0.7), ("lcm", 0.5)]
    assert rules.steps_range(entry, chosen) == (2, 8, "Easel Tiny and LCM")
    assert rules.steps_problem(entry, 20, chosen) == "Use 2 to 8 steps with Easel Tiny and LCM."
    assert rules.steps_problem(entry, 20) is None


def test_sampler_rules(tmp_path):
    """A sampler by name fits SD and SDXL models, not SD 3's flow matching, not beside an LCM-LoRA, and Karras's
    sigmas not on a schedule that ends at pure noise (the bundled model's)."""
    from dataclasses import replace

    from webapp import generation_rules as rules

    entry = load_catalog(TEST_CATALOG)["easel-tiny"]
    lcm = [(_lora(tmp_path, "lcm", "LCMScheduler"), 1.0)]
    assert rules.scheduler_problem(entry, "Euler a") is rules.scheduler_problem(entry, "") is None
    assert rules.scheduler_problem(entry, "euler A") is None  # any case; stored as the table spells it
    assert rules.scheduler_problem(entry, None, lcm) is None
    assert rules.scheduler_problem(entry, "UniPC", lcm) == "The chosen LoRA runs with LCMScheduler; leave the sampler empty."
    assert "runs its own scheduler" in rules.scheduler_problem(replace(entry, kind="sd3"), "Euler")
    assert "zero terminal SNR" in rules.scheduler_problem(entry, "DPM++ 2M Karras")
    assert rules.scheduler_problem(entry, 7).startswith("The sampler is one of “Euler”")

