"""The studio form and the models behind it: fields a pipeline lacks, LoRAs that fit, an LCM-LoRA's steps, routing."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from redis import Redis
from rq.job import Job

from tests.support import submit, submit_ok
from tests.support.catalogs import write_models_catalog
from webapp.extensions import db
from webapp.queues import SERIALIZER
from webapp.tables import Generation


@pytest.fixture
def deployment_env(tmp_path: Path) -> dict[str, str]:
    """A catalog with models whose pipelines lack fields, and LoRAs."""
    return {"EASEL_CATALOG": str(write_models_catalog(tmp_path)), "EASEL_MODEL": "tiny", "MAIL_RETRY_INTERVALS": "1,1"}


def page_json(html: str, element_id: str) -> dict:
    match = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S)
    assert match, element_id
    return json.loads(match.group(1))


def test_studio_describes_each_models_fields_and_loras(signed_in) -> None:
    html = signed_in.get("/").get_data(as_text=True)
    models, loras = page_json(html, "model-info"), page_json(html, "lora-info")
    assert models["tiny"]["takes"] == {"negative_prompt": True, "guidance": True}
    assert isinstance(models["tiny"]["guidance"], float)  # the default value, not a flag
    assert models["lcm-model"]["takes"] == {"negative_prompt": False, "guidance": True}
    assert models["cascade"]["takes"]["guidance"] is False
    assert models["tiny"]["loras"] == ["ink", "lcm"] and models["xl"]["loras"] == ["xl-style"]
    assert loras["ink"]["trigger_words"] == ["ink drawing"]
    assert (loras["lcm"]["scheduler"], loras["lcm"]["steps"], loras["lcm"]["max_steps"]) == ("LCMScheduler", 4, 8)
    assert "LoRAs (up to 3)" in html and 'name="loras-2-name"' in html


@pytest.mark.parametrize(("model", "hidden", "note"), [
    ("lcm-model", "negative-prompt-box", "This model takes no negative prompt."),
    ("cascade", "guidance-box", "This model takes no guidance scale."),
])
def test_fields_a_pipeline_lacks_are_hidden_and_explained(app, signed_in, model, hidden, note) -> None:
    app.config["EASEL_MODEL"] = model  # the studio opens on the default model
    html = signed_in.get("/").get_data(as_text=True)
    assert re.search(rf'id="{hidden}"\s+hidden', html), hidden
    assert note in html


def test_negative_prompt_refused_for_a_pipeline_without_one(app, signed_in) -> None:
    response = submit(signed_in, model="lcm-model", steps=4, guidance=1.0, negative_prompt="blurry")
    assert response.status_code == 400
    assert "LCM model takes no negative prompt" in response.get_data(as_text=True)


def test_loras_are_stored_with_their_scales(app, signed_in) -> None:
    generation_id = submit_ok(signed_in, model="tiny", **{"loras-0-name": "ink", "loras-1-name": "lcm",
                                                          "loras-1-scale": "0.5", "steps": 4})
    with app.app_context():
        assert db.session.get(Generation, generation_id).loras == [["ink", 0.8], ["lcm", 0.5]]


@pytest.mark.parametrize(("fields", "message"), [
    ({"loras-0-name": "lcm", "steps": "20"}, "Use 2 to 8 steps with Tiny and LCM-LoRA."),
    ({"loras-0-name": "xl-style"}, "XL style is made for sdxl models, not Tiny."),
    ({"loras-0-name": "ink", "loras-1-name": "ink"}, "Choose each LoRA once."),
    ({"loras-0-name": "nope"}, "Choose one of the listed LoRAs."),
    ({"loras-0-name": "ink", "loras-0-scale": "3"}, "Use a scale from 0 to 2."),
])
def test_lora_choices_are_checked(app, signed_in, fields, message) -> None:
    response = submit(signed_in, model="tiny", **fields)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_each_model_has_its_own_queue(app, signed_in, redis_url) -> None:
    generation_id = submit_ok(signed_in, model="tiny")
    assert Job.fetch(generation_id, connection=Redis.from_url(redis_url), serializer=SERIALIZER).origin == "generate:tiny"
    state = signed_in.get(f"/api/generations/{generation_id}").get_json()
    assert state["queue_position"] == 1
    assert state["notice"].startswith("No worker serves model tiny right now")


def test_remix_keeps_the_loras(app, signed_in) -> None:
    from webapp.tables import Image

    generation_id = submit_ok(signed_in, model="tiny", **{"loras-0-name": "ink", "loras-0-scale": "0.6"})
    with app.app_context():
        generation = db.session.get(Generation, generation_id)
        image = Image(generation_id=generation.id, user_id=generation.user_id, index=0, storage_key="k",
                      thumbnail_key="t", width=64, height=64)
        db.session.add(image)
        db.session.commit()
        image_id = image.id
    html = signed_in.get(f"/?remix={image_id}").get_data(as_text=True)
    assert re.search(r'<option selected value="ink">|<option value="ink" selected>', html), "the LoRA is chosen again"
    assert 'name="loras-0-scale"' in html and 'value="0.6"' in html
