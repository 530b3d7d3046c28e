"""The studio form and the models behind it: fields a pipeline lacks, LoRAs that fit, an LCM-LoRA's steps, routing."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from redis import Redis
from rq.job import Job

from tests.support import post, submit, submit_ok
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


def image_of(app, generation_id: str) -> str:
    """An image row for the generation (its file is never read by the web side)."""
    from webapp.tables import Image

    with app.app_context():
        generation = db.session.get(Generation, generation_id)
        image = Image(generation_id=generation.id, user_id=generation.user_id, index=0, storage_key="k",
                      thumbnail_key="t", width=64, height=64)
        db.session.add(image)
        db.session.commit()
        return image.id


def test_remix_keeps_the_loras(app, signed_in) -> None:
    generation_id = submit_ok(signed_in, model="tiny", **{"loras-0-name": "ink", "loras-0-scale": "0.6"})
    image_id = image_of(app, generation_id)
    html = signed_in.get(f"/?remix={image_id}").get_data(as_text=True)
    assert re.search(r'<option selected value="ink">|<option value="ink" selected>', html), "the LoRA is chosen again"
    assert 'name="loras-0-scale"' in html and 'value="0.6"' in html


def variation(client, image_id: str, strength: str = "0.35"):
    return post(client, f"/images/{image_id}/variations", token_page="/", num_images="2", strength=strength)


def generations(app) -> list[Generation]:
    with app.app_context():
        return list(db.session.scalars(db.select(Generation).order_by(Generation.created_at, Generation.id)))


def child_of(app, response) -> dict:
    """The queued variation's columns a variation inherits."""
    assert response.status_code == 303 and "/generations/" in response.headers["Location"], response.headers
    with app.app_context():
        child = db.session.get(Generation, response.headers["Location"].rsplit("/", 1)[1])
        return {"source": child.source, "parent": child.parent_image_id, "model": child.model, "steps": child.steps,
                "loras": child.loras}


def test_a_variation_keeps_the_model_and_the_loras_with_their_scales(app, signed_in) -> None:
    app.config["MAX_ACTIVE_PER_USER"] = 5
    parent = submit_ok(signed_in, model="tiny", steps=4, **{"loras-0-name": "ink", "loras-0-scale": "0.6",
                                                            "loras-1-name": "lcm", "loras-1-scale": "0.5"})
    image_id = image_of(app, parent)
    assert child_of(app, variation(signed_in, image_id)) == {
        "source": "variation", "parent": image_id, "model": "tiny", "steps": 4,
        "loras": [["ink", 0.6], ["lcm", 0.5]]}
    # At a low strength the steps grow only as far as the LCM-LoRA allows (8), where one still changes the picture.
    child = child_of(app, variation(signed_in, image_id, "0.15"))
    assert (child["steps"], child["loras"]) == (7, [["ink", 0.6], ["lcm", 0.5]])
    response = variation(signed_in, image_id, "0.1")
    assert response.headers["Location"] == f"/images/{image_id}"
    assert ("At strength 0.1 a variation changes nothing in the 8 steps Tiny and LCM-LoRA allow; use a strength of "
            "at least 0.13.") in signed_in.get(f"/images/{image_id}").get_data(as_text=True)
    # Without LoRAs a variation has none.
    plain = image_of(app, submit_ok(signed_in, model="tiny"))
    assert child_of(app, variation(signed_in, plain))["loras"] is None


@pytest.mark.parametrize(("loras", "file_removed", "message"), [
    ([["ink", 0.8]], True, "Ink is not available on this site: not installed on this server"),
    ([["gone", 1.0]], False, "gone is no longer offered on this site."),
    ([["xl-style", 1.0]], False, "XL style is made for sdxl models, not Tiny."),
], ids=["file-removed", "no-longer-listed", "no-longer-fits"])
def test_a_variation_whose_lora_cannot_be_used_now_is_refused(app, signed_in, tmp_path, loras, file_removed,
                                                               message) -> None:
    parent = submit_ok(signed_in, model="tiny")
    with app.app_context():  # the catalog changed since the image was made
        db.session.get(Generation, parent).loras = loras
        db.session.commit()
    if file_removed:
        (tmp_path / "ink.safetensors").unlink()
    image_id = image_of(app, parent)
    response = variation(signed_in, image_id)
    assert response.status_code == 303 and response.headers["Location"] == f"/images/{image_id}"
    page = signed_in.get(f"/images/{image_id}").get_data(as_text=True)
    assert "A variation uses the same LoRAs as its image, and one of them cannot be used now: " + message in page
    assert [g.id for g in generations(app)] == [parent]
