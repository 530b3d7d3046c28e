"""LoRAs through the APIs: ``loras`` in /api/v1 (webapp/api/v1/), ``<lora:NAME:SCALE>`` prompt tags in the
AUTOMATIC1111 dialect (webapp/api/extra_networks.py), and the studio's rules for both (webapp/generation_rules.py).

The catalog's LoRA files are placeholders: the web reads only their presence (the worker test that applies
one is tests/jobs/test_pipelines.py)."""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import pytest
from PIL import Image as PILImage

from tests.support import Auth, api_token, bearer, queued_jobs, submit
from tests.support.catalogs import write_models_catalog
from webapp.api.extra_networks import lora_tags
from webapp.api.problems import ApiError
from webapp.extensions import db
from webapp.tables import Generation

PROBLEM = "application/problem+json"
A1111_ERROR_KEYS = {"error", "detail", "body", "errors"}


@pytest.fixture
def deployment_env(tmp_path: Path) -> dict[str, str]:
    """tests/support/catalogs.py: the model ``tiny`` (sd), ``xl`` (sdxl) and the LoRAs ink, lcm and xl-style."""
    return {"EASEL_CATALOG": str(write_models_catalog(tmp_path)), "EASEL_MODEL": "tiny", "MAIL_RETRY_INTERVALS": "1,1"}


@pytest.fixture
def ada(app, make_user):
    """Ada's id, her token, a Bearer header and HTTP Basic credentials (the A1111 dialect's)."""
    user_id = make_user("ada@example.com")
    token = api_token(app, user_id)
    return {"id": user_id, "bearer": bearer(token), "basic": ("ada@example.com", token)}


def rows(app) -> list[Generation]:
    with app.app_context():
        found = db.session.scalars(db.select(Generation).order_by(Generation.created_at)).all()
        db.session.expunge_all()
        return found


def nothing_queued(app, redis_url: str) -> bool:
    return rows(app) == [] and queued_jobs(redis_url) == 0


# /api/v1

def test_loras_are_listed_with_what_they_fit_and_their_defaults(client, ada, tmp_path, make_user, app):
    listed = {lora["name"]: lora for lora in client.get("/api/v1/loras", headers=ada["bearer"]).get_json()}
    assert list(listed) == ["ink", "lcm", "xl-style"]
    ink = listed["ink"]
    assert (ink["label"], ink["base_kinds"], ink["default_scale"], ink["trigger_words"]) == (
        "Ink", ["sd"], 0.8, ["ink drawing"])
    assert "tiny" in ink["models"] and "xl" not in ink["models"] and listed["xl-style"]["models"] == ["xl"]
    assert (listed["lcm"]["default_steps"], listed["lcm"]["max_steps"], listed["lcm"]["default_guidance"]) == (4, 8, 1.5)
    assert ink["available"] and ink["unavailable_reason"] is None

    (tmp_path / "ink.safetensors").unlink()
    gone = client.get("/api/v1/loras", headers=ada["bearer"]).get_json()[0]
    assert not gone["available"] and gone["unavailable_reason"] == "not installed on this server"  # no server path
    admin = bearer(api_token(app, make_user("root@example.com", is_admin=True)))
    assert str(tmp_path) in client.get("/api/v1/loras", headers=admin).get_json()[0]["unavailable_reason"]


def test_loras_are_queued_with_their_scales_and_echoed(app, client, ada):
    app.config["MAX_ACTIVE_PER_USER"] = 3
    created = client.post("/api/v1/generations", headers=ada["bearer"], json={
        "prompt": "a red circle", "steps": 4, "loras": [{"name": "ink"}, {"name": "lcm", "scale": 0.5}]})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["loras"] == [{"name": "ink", "scale": 0.8}, {"name": "lcm", "scale": 0.5}]  # the default filled in
    assert client.get(f"/api/v1/generations/{body['id']}", headers=ada["bearer"]).get_json()["loras"] == body["loras"]
    [row] = rows(app)
    assert row.loras == [["ink", 0.8], ["lcm", 0.5]]

    # An LCM-LoRA gives its steps and guidance when the request leaves them out; without LoRAs: none stored.
    lcm = client.post("/api/v1/generations", headers=ada["bearer"],
                      json={"prompt": "a red circle", "loras": [{"name": "lcm", "scale": None}]}).get_json()
    assert (lcm["steps"], lcm["guidance"], lcm["loras"]) == (4, 1.5, [{"name": "lcm", "scale": 1.0}])
    plain = client.post("/api/v1/generations", headers=ada["bearer"], json={"prompt": "a red circle"}).get_json()
    assert plain["loras"] == [] and rows(app)[-1].loras is None


# (studio form fields, /api/v1 loras, the words both answer with)
REFUSALS = [
    pytest.param({"loras-0-name": "nope"}, [{"name": "nope"}], "There is no LoRA “nope” on this site.", id="unknown"),
    pytest.param({"loras-0-name": "xl-style"}, [{"name": "xl-style"}], "XL style is made for sdxl models, not Tiny.",
                 id="wrong kind"),
    pytest.param({"loras-0-name": "ink", "loras-1-name": "ink"}, [{"name": "ink"}, {"name": "ink", "scale": 0.5}],
                 "Choose each LoRA once.", id="twice"),
    pytest.param({"loras-0-name": "ink", "loras-0-scale": "2.5"}, [{"name": "ink", "scale": 2.5}],
                 "Use a scale from 0 to 2.", id="scale too high"),
    pytest.param({"loras-0-name": "ink", "loras-0-scale": "-0.1"}, [{"name": "ink", "scale": -0.1}],
                 "Use a scale from 0 to 2.", id="negative scale"),
    pytest.param({"loras-0-name": "lcm", "steps": "20"}, [{"name": "lcm"}], "Use 2 to 8 steps with Tiny and LCM-LoRA.",
                 id="LCM steps"),
]


@pytest.mark.parametrize(("form_fields", "api_loras", "message"), REFUSALS)
def test_the_studio_and_the_api_refuse_alike_and_queue_nothing(app, client, ada, redis_url, form_fields, api_loras,
                                                               message):
    api = client.post("/api/v1/generations", headers=ada["bearer"],
                      json={"prompt": "a red circle", "steps": int(form_fields.get("steps", 8)), "loras": api_loras})
    assert api.status_code == 400 and api.content_type == PROBLEM
    assert message in json.dumps(api.get_json(), ensure_ascii=False), api.get_json()
    assert set(api.get_json()["errors"]) <= {"loras", "steps"}
    assert nothing_queued(app, redis_url)

    Auth(client).login("ada@example.com")  # the same person, through the studio form this time
    form = submit(client, model="tiny", **form_fields)
    assert form.status_code == 400 and message in html.unescape(form.get_data(as_text=True))
    assert nothing_queued(app, redis_url)


@pytest.mark.parametrize(("loras", "field_message"), [
    pytest.param([{"name": n} for n in ("ink", "lcm", "xl-style", "ink")], "Choose at most 3 LoRAs.", id="four"),
    pytest.param([{"name": "ink", "scale": "much"}], "Not a valid number.", id="scale not a number"),
    pytest.param([{"scale": 0.5}], "Missing data for required field.", id="no name"),
    pytest.param([{"name": "ink", "weight": 1}], "Unknown field.", id="unknown key"),
    pytest.param({"name": "ink"}, "Not a valid list.", id="not a list"),
])
def test_malformed_loras_are_400_with_the_field_named(app, client, ada, redis_url, loras, field_message):
    response = client.post("/api/v1/generations", headers=ada["bearer"], json={"prompt": "a red circle",
                                                                               "loras": loras})
    assert response.status_code == 400 and field_message in " ".join(response.get_json()["errors"]["loras"])
    assert nothing_queued(app, redis_url)


def test_an_unavailable_lora_is_refused_without_its_path(app, client, ada, redis_url, tmp_path):
    (tmp_path / "ink.safetensors").unlink()
    response = client.post("/api/v1/generations", headers=ada["bearer"],
                           json={"prompt": "a red circle", "loras": [{"name": "ink"}]})
    assert response.status_code == 400
    assert response.get_json()["errors"]["loras"] == ["Ink is not available on this site: not installed on this server"]
    assert nothing_queued(app, redis_url)


def _png() -> io.BytesIO:
    out = io.BytesIO()
    PILImage.new("RGB", (64, 64), "red").save(out, "PNG")
    out.seek(0)
    return out


def test_from_image_takes_loras_as_a_json_part(app, client, ada, redis_url):
    def post(loras: str):
        return client.post("/api/v1/generations/from-image", headers=ada["bearer"], content_type="multipart/form-data",
                           data={"prompt": "a red circle", "strength": "0.5", "steps": "8", "loras": loras,
                                 "init_image": (_png(), "start.png")})

    refused = post('[{"name": "xl-style"}]')
    assert refused.status_code == 400 and "made for sdxl models" in refused.get_json()["errors"]["loras"][0]
    broken = post("ink")
    assert broken.status_code == 400 and "JSON" in broken.get_json()["errors"]["loras"][0]
    assert nothing_queued(app, redis_url)
    created = post('[{"name": "ink", "scale": 0.3}]')
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["loras"] == [{"name": "ink", "scale": 0.3}] and rows(app)[0].loras == [["ink", 0.3]]
    spec = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert spec["GenerationCreate"]["properties"]["loras"]["maxItems"] == 3
    assert spec["GenerationFromImage"]["properties"]["loras"]["items"]["$ref"].endswith("/LoraPick")


# AUTOMATIC1111: <lora:NAME:SCALE> in the prompt

@pytest.mark.parametrize(("prompt", "cleaned", "picks"), [
    ("a red circle <lora:ink:0.5>", "a red circle", [("ink", 0.5)]),
    ("<lora:ink>, a red circle, <lyco:lcm:1>, on blue", "a red circle, on blue", [("ink", None), ("lcm", 1.0)]),
    ("a red circle <lora:ink:>", "a red circle", [("ink", None)]),
    ("a <b>red</b> circle", "a <b>red</b> circle", []),
])
def test_lora_tags_are_read_out_of_the_prompt(prompt, cleaned, picks):
    assert lora_tags(prompt) == (cleaned, picks)


@pytest.mark.parametrize("prompt", ["x <hypernet:ink:1>", "x <lora:ink:strong>", "x <lora:ink:0.5:0.2>",
                                    "x <lora:ink:te=0.5>"])
def test_tags_easel_cannot_honour_are_refused(prompt):
    with pytest.raises(ApiError) as refused:
        lora_tags(prompt)
    assert refused.value.code == 422 and refused.value.errors["prompt"]


def test_a1111_prompt_tags_are_queued_as_loras(app, client, ada):
    app.config["API_WAIT_SECONDS"] = 0  # no worker: the wait runs out at once, the generation stays queued
    response = client.post("/sdapi/v1/txt2img", auth=ada["basic"], json={
        "prompt": "a red circle <lora:ink:0.5>, <lora:lcm>", "steps": 4, "width": 64, "height": 64})
    assert response.status_code == 504 and set(response.get_json()) == A1111_ERROR_KEYS
    [row] = rows(app)
    assert row.prompt == "a red circle" and row.loras == [["ink", 0.5], ["lcm", 1.0]]


@pytest.mark.parametrize(("body", "words"), [
    pytest.param({"prompt": "a red circle <lora:nope:1>"}, "There is no LoRA “nope” on this site.", id="unknown"),
    pytest.param({"prompt": "a red circle <lora:xl-style:1>"}, "made for sdxl models", id="wrong kind"),
    pytest.param({"prompt": "x <lora:ink> <lora:lcm> <lora:xl-style> <lora:ink>"}, "Choose at most 3", id="four"),
    pytest.param({"prompt": "x <lora:ink:3>"}, "Use a scale from 0 to 2.", id="scale"),
    pytest.param({"prompt": "x", "negative_prompt": "<lora:ink:1>"}, "belong in the prompt", id="negative prompt"),
    pytest.param({"prompt": "x <hypernet:ink:1>"}, "only LoRAs are offered", id="hypernetwork"),
])
def test_a1111_refuses_bad_tags_in_its_own_error_shape(app, client, ada, redis_url, body, words):
    response = client.post("/sdapi/v1/txt2img", auth=ada["basic"],
                           json={"steps": 4, "width": 64, "height": 64, **body})
    assert response.status_code == 422
    error = response.get_json()
    assert set(error) == A1111_ERROR_KEYS and words in error["detail"], error
    assert nothing_queued(app, redis_url)


def test_a1111_img2img_reads_the_tags_too(app, client, ada):
    app.config["API_WAIT_SECONDS"] = 0
    picture = base64.b64encode(_png().getvalue()).decode()
    response = client.post("/sdapi/v1/img2img", auth=ada["basic"], json={
        "prompt": "<lora:ink:0.25> a red circle", "init_images": [picture], "steps": 8, "width": 64, "height": 64})
    assert response.status_code == 504
    [row] = rows(app)
    assert (row.prompt, row.loras, row.strength) == ("a red circle", [["ink", 0.25]], 0.75)


def test_a1111_lists_usable_loras_and_models_without_server_paths(app, client, ada, make_user, tmp_path):
    listed = client.get("/sdapi/v1/loras", auth=ada["basic"]).get_json()
    assert [(lora["name"], lora["alias"], lora["path"]) for lora in listed] == [
        ("ink", "ink", "ink"), ("lcm", "lcm", "lcm"), ("xl-style", "xl-style", "xl-style")]
    assert listed[0]["metadata"]["trigger_words"] == ["ink drawing"] and listed[0]["metadata"]["base_kinds"] == ["sd"]
    assert client.post("/sdapi/v1/refresh-loras", auth=ada["basic"]).status_code == 200

    assert {m["filename"] for m in client.get("/sdapi/v1/sd-models", auth=ada["basic"]).get_json()} == {
        "tiny", "lcm-model", "cascade", "xl"}

    root = ("root@example.com", api_token(app, make_user("root@example.com", is_admin=True)))
    assert client.get("/sdapi/v1/loras", auth=root).get_json()[0]["path"] == str(tmp_path / "ink.safetensors")
    assert str(tmp_path) in client.get("/sdapi/v1/sd-models", auth=root).get_json()[-1]["filename"]
    (tmp_path / "ink.safetensors").unlink()
    assert [lora["name"] for lora in client.get("/sdapi/v1/loras", auth=ada["basic"]).get_json()] == ["lcm", "xl-style"]
