"""Easel's own API (webapp/api/v1/): generations and images as the token's owner, problem details for
every error, and the OpenAPI document generated from the schemas."""
from __future__ import annotations

import io
import re

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from models.samplers import SAMPLERS
from tests.support import add_generation, api_token, bearer, queued_jobs, submit
from webapp.extensions import db
from webapp.tables import Generation

pytestmark = pytest.mark.db

PROBLEM = "application/problem+json"


@pytest.fixture
def ada(app, make_user):
    """Ada's id and a Bearer header for her."""
    user_id = make_user("ada@example.com")
    return user_id, bearer(api_token(app, user_id))


def test_create_list_get_and_cancel_a_generation(client, ada):
    _, auth = ada
    created = client.post("/api/v1/generations", json={"prompt": "a red circle", "steps": 4, "seed": 7}, headers=auth)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["status"] == "queued" and body["queue_position"] == 1 and body["seed"] == 7
    assert (body["model"], body["width"], body["height"], body["guidance"]) == ("easel-tiny", 64, 64, 3.0)
    assert created.headers["Location"].endswith(f"/api/v1/generations/{body['id']}")
    assert client.get(f"/api/v1/generations/{body['id']}", headers=auth).get_json()["status"] == "queued"
    listed = client.get("/api/v1/generations?status=queued", headers=auth).get_json()
    assert [g["id"] for g in listed["items"]] == [body["id"]] and listed["total"] == 1
    assert client.get("/api/v1/generations?status=succeeded", headers=auth).get_json()["items"] == []
    canceled = client.post(f"/api/v1/generations/{body['id']}/cancel", headers=auth)
    assert canceled.status_code == 200 and canceled.get_json()["status"] == "canceled"
    again = client.post(f"/api/v1/generations/{body['id']}/cancel", headers=auth)
    assert again.status_code == 409 and again.content_type == PROBLEM
    # the old status JSON of the progress page is unchanged
    assert client.get(f"/api/generations/{body['id']}").status_code == 404  # no cookie: JSON 404 as before


def test_another_persons_things_are_404(app, client, ada, make_user, make_image):
    _, auth = ada
    bob = make_user("bob@example.com")
    generation_id = add_generation(app, bob)
    image_id = make_image(bob)
    for method, path in [("get", f"/api/v1/generations/{generation_id}"),
                         ("post", f"/api/v1/generations/{generation_id}/cancel"),
                         ("get", f"/api/v1/generations/{generation_id}/preview"),
                         ("get", f"/api/v1/images/{image_id}"), ("get", f"/api/v1/images/{image_id}/file"),
                         ("delete", f"/api/v1/images/{image_id}"), ("get", "/api/v1/generations/not-a-uuid")]:
        response = getattr(client, method)(path, headers=auth)
        assert response.status_code == 404, path
        assert response.content_type == PROBLEM and response.get_json()["status"] == 404
    response = client.patch(f"/api/v1/images/{image_id}", json={"starred": True}, headers=auth)
    assert response.status_code == 404
    assert client.get("/api/v1/images", headers=auth).get_json()["items"] == []


def test_images_search_get_download_star_publish_delete(client, ada, make_image):
    user_id, auth = ada
    red = make_image(user_id, prompt="a red circle in the top left")
    blue = make_image(user_id, prompt="a blue square")
    found = client.get("/api/v1/images?q=RED+left", headers=auth).get_json()
    assert [i["id"] for i in found["items"]] == [red]
    page = client.get("/api/v1/images?per_page=1&page=2", headers=auth).get_json()
    assert page["total"] == 2 and page["pages"] == 2 and len(page["items"]) == 1
    image = client.get(f"/api/v1/images/{blue}", headers=auth).get_json()
    assert image["prompt"] == "a blue square" and not image["starred"]
    with client.get(image["download_url"], headers=auth) as png:
        assert png.status_code == 200 and png.content_type == "image/png"
        assert PILImage.open(io.BytesIO(png.data)).size == (64, 64)
    changed = client.patch(f"/api/v1/images/{blue}", json={"starred": True, "public": True}, headers=auth).get_json()
    assert changed["starred"] and changed["public"]
    assert client.get("/api/v1/images?starred=true", headers=auth).get_json()["items"][0]["id"] == blue
    assert client.delete(f"/api/v1/images/{blue}", headers=auth).status_code == 204
    assert client.get(f"/api/v1/images/{blue}", headers=auth).status_code == 404


def test_publishing_a_hidden_image_is_refused(client, ada, make_image):
    user_id, auth = ada
    hidden = make_image(user_id, is_hidden=True)
    response = client.patch(f"/api/v1/images/{hidden}", json={"public": True}, headers=auth)
    assert response.status_code == 409 and "public" in response.get_json()["errors"]


def test_models_list_limits_and_availability(app, client, ada, make_user):
    models = {m["name"]: m for m in client.get("/api/v1/models", headers=ada[1]).get_json()}
    assert models["easel-tiny"]["available"] and models["easel-tiny"]["default"]
    assert models["easel-tiny"]["sizes"] == [[64, 64]] and models["easel-tiny"]["max_steps"] == 50
    assert not models["missing-model"]["available"]
    assert models["missing-model"]["unavailable_reason"] == "not installed on this server"  # no server path
    admin = bearer(api_token(app, make_user("root@example.com", is_admin=True)))
    models = {m["name"]: m for m in client.get("/api/v1/models", headers=admin).get_json()}
    assert "no-such-model" in models["missing-model"]["unavailable_reason"]  # admins get the path to fix


def test_invalid_requests_are_400_problems_with_per_field_messages(client, ada):
    _, auth = ada
    response = client.post("/api/v1/generations", json={"prompt": "x", "steps": 500, "width": 512, "height": 512},
                           headers=auth)
    assert response.status_code == 400 and response.content_type == PROBLEM
    problem = response.get_json()
    assert set(problem["errors"]) == {"steps", "width"} and "64×64" in problem["errors"]["width"][0]
    typed = client.post("/api/v1/generations", json={"prompt": "x", "steps": "many", "extra": 1}, headers=auth)
    assert typed.status_code == 400 and set(typed.get_json()["errors"]) == {"steps", "extra"}
    broken = client.post("/api/v1/generations", data="{not json", content_type="application/json", headers=auth)
    assert broken.status_code == 400 and broken.content_type == PROBLEM



def test_an_unknown_sampler_is_refused_naming_the_samplers_and_nothing_is_queued(app, client, auth, ada, redis_url):
    _, bearer_auth = ada
    response = client.post("/api/v1/generations", json={"prompt": "x", "scheduler": "Euler b"}, headers=bearer_auth)
    assert response.status_code == 400 and response.content_type == PROBLEM
    message = response.get_json()["errors"]["scheduler"][0]
    assert "Euler b" in message and all(f"“{name}”" in message for name in SAMPLERS)
    auth.login()
    form = submit(client, scheduler="DPM++ 9M")  # the studio form, with the same words
    assert form.status_code == 400 and "There is no sampler “DPM++ 9M”" in form.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Generation)) == 0
    assert queued_jobs(redis_url) == 0
    spec = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert "DPM++ 2M Karras" in spec["GenerationCreate"]["properties"]["scheduler"]["description"]
    karras = client.post("/api/v1/generations", json={"prompt": "x", "scheduler": "DPM++ 2M Karras"},
                         headers=bearer_auth)  # the bundled model's schedule ends at pure noise (zero terminal SNR)
    assert karras.status_code == 400 and "zero terminal SNR" in karras.get_json()["errors"]["scheduler"][0]
    made = client.post("/api/v1/generations", json={"prompt": "x", "scheduler": "dpm++ 2m"}, headers=bearer_auth)
    assert made.status_code == 201 and made.get_json()["scheduler"] == "DPM++ 2M"  # the table's spelling


def test_limits_give_429_with_retry_after(app, client, ada):
    _, auth = ada
    for _ in range(app.config["MAX_QUEUED_PER_USER"]):
        assert client.post("/api/v1/generations", json={"prompt": "a red circle"}, headers=auth).status_code == 201
    refused = client.post("/api/v1/generations", json={"prompt": "a red circle"}, headers=auth)
    assert refused.status_code == 429 and refused.content_type == PROBLEM
    assert int(refused.headers["Retry-After"]) > 0 and "limit" in refused.get_json()["detail"]


def test_blocked_terms_apply_to_the_api(app, client, ada):
    from webapp.extensions import db
    from webapp.tables import BlockedTerm

    with app.app_context():
        db.session.add(BlockedTerm(term="forbidden"))
        db.session.commit()
    response = client.post("/api/v1/generations", json={"prompt": "a forbidden circle"}, headers=ada[1])
    assert response.status_code == 400 and "prompt" in response.get_json()["errors"]


@pytest.fixture
def small_bodies(app_env, monkeypatch):
    monkeypatch.setenv("MAX_CONTENT_LENGTH", "100")


def test_no_html_error_ever_answers_an_api_client(small_bodies, app, client, ada):
    _, auth = ada
    cases = {
        404: client.get("/api/v1/no-such-thing", headers=auth),
        405: client.put("/api/v1/models", headers=auth),
        413: client.post("/api/v1/generations", json={"prompt": "x" * 500}, headers=auth),
    }
    for status, response in cases.items():
        assert response.status_code == status
        assert response.content_type == PROBLEM and response.get_json()["status"] == status
    for path in ["/v1/no-such-thing", "/sdapi/v1/no-such-thing"]:
        response = client.get(path, headers=auth)
        assert response.status_code in (401, 404) and response.is_json, path
    assert client.post("/v1/images/generations", data="x" * 500, headers=auth).is_json


def test_a_crash_is_a_500_problem(app, ada, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    monkeypatch.setattr("webapp.api.v1.catalog.default_model_name", lambda: 1 / 0)
    response = app.test_client().get("/api/v1/models", headers=ada[1])
    assert response.status_code == 500 and response.content_type == PROBLEM
    assert "ZeroDivision" not in response.get_data(as_text=True)


def test_openapi_document_is_generated_from_the_schemas(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    create = spec["components"]["schemas"]["GenerationCreate"]
    assert create["required"] == ["prompt"] and create["properties"]["num_images"]["maximum"] == 4
    assert {"/api/v1/generations", "/api/v1/images/{image_id}/file", "/api/v1/models"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    tags = {tag["name"] for tag in spec["tags"]}  # named for people, not after the blueprints
    assert tags == {"Generations", "Comparison grids (X/Y/Z plot)", "Images", "Models, LoRAs and upscalers"}
    assert {tag for path in spec["paths"].values() for op in path.values() if isinstance(op, dict)
            for tag in op.get("tags", [])} == tags


def test_docs_page_is_swagger_ui_from_our_own_static_files(client):
    html = client.get("/api/v1/docs").get_data(as_text=True)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="/static/' in attrs and not body.strip() for attrs, body in scripts)
    assert "/api/v1/openapi.json" in html
    for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        with client.get(src) as response:
            assert response.status_code == 200, src


def test_variations_of_an_image_i_may_see(app, client, ada, make_user, make_image):
    user_id, auth = ada
    app.config["MAX_QUEUED_PER_USER"] = 2
    mine = make_image(user_id, prompt="a red circle", generation={"scheduler": "Euler a"})
    created = client.post(f"/api/v1/images/{mine}/variations", json={"num_images": 2, "strength": 0.4}, headers=auth)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["status"] == "queued" and body["num_images"] == 2 and body["prompt"] == "a red circle"
    from webapp.extensions import db
    from webapp.tables import Generation

    with app.app_context():
        row = db.session.get(Generation, body["id"])
        assert (row.source, row.parent_image_id, row.strength) == ("variation", mine, 0.4)
        assert row.scheduler == body["scheduler"] == "Euler a"  # the image's sampler
    bad = client.post(f"/api/v1/images/{mine}/variations", json={"strength": 2}, headers=auth)
    assert bad.status_code == 400 and "strength" in bad.get_json()["errors"]
    bob = make_user("bob@example.com")
    private, public = make_image(bob), make_image(bob, is_public=True)
    assert client.post(f"/api/v1/images/{private}/variations", json={}, headers=auth).status_code == 404
    assert client.post(f"/api/v1/images/{public}/variations", json={"num_images": 1}, headers=auth).status_code == 201
    limited = client.post(f"/api/v1/images/{public}/variations", json={}, headers=auth)  # MAX_QUEUED_PER_USER
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0


def test_upscalers_are_listed_with_their_availability(client, ada):
    upscalers = {u["name"]: u for u in client.get("/api/v1/upscalers", headers=ada[1]).get_json()}
    assert not upscalers["missing-upscaler"]["available"]
    assert upscalers["missing-upscaler"]["unavailable_reason"] == "not installed on this server"


def test_upscale_an_image(app, client, ada, make_user, make_image):
    user_id, auth = ada
    mine = make_image(user_id)
    for bad, field in [({"factor": 3}, "factor"), ({"factor": 2, "upscaler": "missing-upscaler"}, "upscaler"),
                       ({"factor": 2, "upscaler": "no-such"}, "upscaler"), ({}, "factor")]:
        refused = client.post(f"/api/v1/images/{mine}/upscale", json=bad, headers=auth)
        assert refused.status_code == 400 and field in refused.get_json()["errors"], bad
    created = client.post(f"/api/v1/images/{mine}/upscale", json={"factor": 4}, headers=auth)
    assert created.status_code == 201
    body = created.get_json()
    assert (body["width"], body["height"], body["num_images"]) == (256, 256, 1)
    private = make_image(make_user("bob@example.com"))
    assert client.post(f"/api/v1/images/{private}/upscale", json={"factor": 2}, headers=auth).status_code == 404


def _png_file(size=(96, 80), colour="red") -> io.BytesIO:
    out = io.BytesIO()
    PILImage.new("RGB", size, colour).save(out, "PNG")
    out.seek(0)
    return out


def test_create_from_an_uploaded_image_multipart(app, client, ada):
    _, auth = ada
    created = client.post("/api/v1/generations/from-image", headers=auth, content_type="multipart/form-data",
                          data={"prompt": "a red circle", "strength": "0.5", "steps": "8", "resize_mode": "fit",
                                "init_image": (_png_file(), "start.png")})
    assert created.status_code == 201, created.get_json()
    from webapp.extensions import db
    from webapp.tables import Generation

    with app.app_context():
        row = db.session.get(Generation, created.get_json()["id"])
        assert (row.source, row.strength, row.resize_mode, row.init_image_key is not None) == ("upload", 0.5, "fit", True)
    cases = [({"prompt": "x", "strength": "3"}, "strength"), ({"prompt": "x", "steps": "1", "strength": "0.5"}, "strength"),
             ({"prompt": "x", "init_image": (io.BytesIO(b"no picture"), "x.png")}, "init_image"), ({"prompt": "x"}, "init_image")]
    for fields, field in cases:
        data = {"init_image": (_png_file(), "start.png"), **fields} if field != "init_image" or "init_image" in fields \
            else fields
        refused = client.post("/api/v1/generations/from-image", headers=auth, content_type="multipart/form-data",
                              data=data)
        assert refused.status_code == 400 and field in refused.get_json()["errors"], (fields, refused.get_json())
    spec = client.get("/api/v1/openapi.json").get_json()
    body = spec["paths"]["/api/v1/generations/from-image"]["post"]["requestBody"]["content"]["multipart/form-data"]
    schema = spec["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {"prompt", "strength", "init_image"} <= set(schema["properties"])
    assert schema["properties"]["init_image"]["format"] == "binary"


def test_a_mask_on_from_image_and_outpaint_on_images(app, client, ada, make_user, make_image):
    """Inpainting and outpainting through /api/v1 (webapp/editing.py): stored with the generation, every bad mask a
    400 naming its field, another person's private image a 404, both in the OpenAPI document."""
    from webapp.extensions import db
    from webapp.tables import Generation

    user_id, auth = ada
    mask = PILImage.new("L", (96, 80), 0)
    mask.paste(255, (40, 30, 60, 50))
    masked = io.BytesIO()
    mask.save(masked, "PNG")
    masked.seek(0)
    created = client.post("/api/v1/generations/from-image", headers=auth, content_type="multipart/form-data",
                          data={"prompt": "a red circle", "strength": "0.9", "steps": "8", "mask_blur": "6",
                                "inpaint_area": "masked", "init_image": (_png_file(), "s.png"), "mask": (masked, "m.png")})
    assert created.status_code == 201, created.get_json()
    with app.app_context():
        edit = db.session.get(Generation, created.get_json()["id"]).edit
        assert (edit.kind, edit.mask_blur, edit.inpaint_area) == ("inpaint", 6, "masked")
    cases = [({"mask": (_png_file(colour="black"), "m.png")}, "mask"), ({"mask": (io.BytesIO(b"nope"), "m.png")}, "mask"),
             ({"mask": (_png_file(colour="white"), "m.png"), "mask_blur": "99"}, "mask_blur"),
             ({"mask": (_png_file(colour="white"), "m.png"), "inpaint_area": "all"}, "inpaint_area")]
    for fields, field in cases:
        refused = client.post("/api/v1/generations/from-image", headers=auth, content_type="multipart/form-data",
                              data={"prompt": "x", "init_image": (_png_file(), "s.png"), **fields})
        assert refused.status_code == 400 and field in refused.get_json()["errors"], (fields, refused.get_json())

    mine, theirs = make_image(user_id), make_image(make_user("bob@example.com"))
    square = PILImage.new("L", (64, 64), 0)
    square.paste(255, (0, 0, 32, 32))
    by_id = client.post("/api/v1/generations/from-image", headers=auth, content_type="multipart/form-data",
                        data={"prompt": "a red circle", "strength": "0.9", "steps": "8", "init_image_id": mine,
                              "mask": (io.BytesIO(_encoded_png(square)), "m.png")})
    assert by_id.status_code == 201, by_id.get_json()
    with app.app_context():
        row = db.session.get(Generation, by_id.get_json()["id"])
        assert (row.source, row.parent_image_id, row.upload_id) == ("inpaint", mine, None)
        count = db.session.scalar(db.select(db.func.count()).select_from(Generation))
    private = client.post("/api/v1/generations/from-image", headers=auth, content_type="multipart/form-data",
                          data={"prompt": "x", "init_image_id": theirs, "mask": (io.BytesIO(_encoded_png(square)), "m.png")})
    assert private.status_code == 404
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Generation)) == count  # nothing queued

    grown = client.post(f"/api/v1/images/{mine}/outpaint", headers=auth, json={"left": 32, "top": 0.25})
    assert grown.status_code == 201, grown.get_json()
    with app.app_context():
        row = db.session.get(Generation, grown.get_json()["id"])
        assert (row.source, row.parent_image_id, row.width, row.height) == ("outpaint", mine, 64, 64)
        assert row.edit.grow == [32, 0, 16, 0]
    assert client.post(f"/api/v1/images/{mine}/outpaint", headers=auth, json={}).status_code == 400  # no side
    assert client.post(f"/api/v1/images/{theirs}/outpaint", headers=auth, json={"left": 8}).status_code == 404
    spec = client.get("/api/v1/openapi.json").get_json()
    body = spec["paths"]["/api/v1/generations/from-image"]["post"]["requestBody"]["content"]["multipart/form-data"]
    schema = spec["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {"mask", "mask_blur", "inpaint_area"} <= set(schema["properties"])
    assert "/api/v1/images/{image_id}/outpaint" in spec["paths"]


def _encoded_png(picture: PILImage.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def test_the_hires_fix_of_an_image(app, client, ada, make_user, make_image, tmp_path):
    """``POST /api/v1/images/<id>/hires``: the image enlarged and refined, its parent recorded ("hires of"); a size
    the model does not make a 400 naming the scale, another person's private image a 404, nothing queued."""
    from pathlib import Path

    from tests.jobs.test_editing import CATALOG
    from webapp.extensions import db
    from webapp.tables import Generation, Image

    catalog = tmp_path / "catalog.toml"  # the bundled model, also allowed at 128×128
    catalog.write_text(CATALOG.format(path=Path(__file__).resolve().parents[3] / "models" / "easel-tiny",
                                      depth=tmp_path / "no-depth"))
    app.config.update(EASEL_CATALOG=str(catalog))
    user_id, auth = ada
    mine, theirs = make_image(user_id), make_image(make_user("bob@example.com"))
    for body, field in (({"scale": 3}, "scale"), ({"scale": 0.5}, "scale"), ({"strength": 0}, "strength")):
        refused = client.post(f"/api/v1/images/{mine}/hires", headers=auth, json=body)
        assert refused.status_code == 400 and field in refused.get_json()["errors"], refused.get_json()
    assert "does not make 192×192" in client.post(f"/api/v1/images/{mine}/hires", headers=auth,
                                                   json={"scale": 3}).get_json()["detail"]
    assert client.post(f"/api/v1/images/{theirs}/hires", headers=auth, json={}).status_code == 404
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Generation)) == 2  # the two images' own
    made = client.post(f"/api/v1/images/{mine}/hires", headers=auth, json={"strength": 0.5})
    assert made.status_code == 201, made.get_json()
    with app.app_context():
        row = db.session.get(Generation, made.get_json()["id"])
        assert (row.source, row.parent_image_id, row.width, row.height, row.strength) == ("hires", mine, 128, 128, 0.5)
        assert row.init_image_key == db.session.get(Image, mine).storage_key  # the image, enlarged by the worker
    assert "/api/v1/images/{image_id}/hires" in client.get("/api/v1/openapi.json").get_json()["paths"]
