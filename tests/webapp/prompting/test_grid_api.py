"""Grids in /api/v1 and their limits (no worker: only what is accepted, refused and queued); the OpenAI and A1111
dialects' ``variants`` through the real clients, and A1111's ``styles`` list of several styles."""
from __future__ import annotations

import json
from base64 import b64encode
from urllib.parse import urlsplit

import openai
import pytest
import requests
import webuiapi
from sqlalchemy import func, select

from tests.support import api_token, bearer, post, queued_jobs
from webapp.extensions import db
from webapp.prompting.styles import apply_style
from webapp.tables import Generation, GenerationPrompts, GridCell

TWELVE = {"prompt": "a red star", "steps": 3, "seed": 5,
          "axes": [{"type": "seed", "values": "1-4"}, {"type": "guidance", "values": [2, 4, 6]}]}


def count(app, table) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(table))


@pytest.fixture
def ada(app, make_user):
    user_id = make_user("ada@example.com")
    return user_id, api_token(app, user_id)


@pytest.mark.db
def test_a_grid_is_one_request_of_all_its_cells_images(app, client, ada, make_user, make_image, redis_url):
    ada_id, token = ada
    auth = bearer(token)
    assert app.config["MAX_QUEUED_PER_USER"] == 10 and app.config["MAX_GRID_CELLS"] == 36  # the defaults
    app.config["DAILY_IMAGE_QUOTA"] = 14
    over_quota = client.post("/api/v1/grids", json={**TWELVE, "num_images": 2}, headers=auth)  # 24 images > 14
    assert over_quota.status_code == 429 and "today's limit of 14 images" in over_quota.get_json()["detail"]
    too_big = client.post("/api/v1/grids", headers=auth, json={
        **TWELVE, "axes": [{"type": "seed", "values": "1-16"}, {"type": "steps", "values": "2, 3, 4"}]})  # 48
    assert too_big.status_code == 400 and "at most 36" in too_big.get_json()["detail"]
    for axes, says in [([{"type": "sampler", "values": "a"}], "Must be one of"),
                       ([{"type": "seed", "values": [True]}], "Give a list"),
                       ([{"type": "strength", "values": "0.2, 0.5"}], "init_image_id"),
                       ([{"type": "guidance", "values": "2, 99"}], "guidance from 0 to 15"),
                       ([{"type": "prompt_sr", "values": "blue, green"}], "not in the prompt")]:
        refused = client.post("/api/v1/grids", json={**TWELVE, "axes": axes}, headers=auth)
        assert refused.status_code == 400 and says in json.dumps(refused.get_json()), (axes, refused.get_json())
    assert count(app, Generation) == 0 and queued_jobs(redis_url) == 0, "nothing starts for a refused grid"

    # 12 cells with the default limits: one waiting request, twelve of the day's images
    created = client.post("/api/v1/grids", json=TWELVE, headers=auth)
    assert created.status_code == 202, created.get_json()
    grid = created.get_json()
    assert len(grid["cells"]) == 12 and grid["status"] == "making cells" and grid["image_url"] is None
    assert created.headers["Location"].endswith(f"/api/v1/grids/{grid['id']}")
    assert count(app, GridCell) == 12 and queued_jobs(redis_url) == 12
    cell = client.get(f"/api/v1/generations/{grid['cells'][5]['generation_id']}", headers=auth).get_json()
    assert (cell["seed"], cell["guidance"], cell["status"]) == (2, 4.0, "queued")
    state = client.get(f"/api/v1/grids/{grid['id']}", headers=auth).get_json()
    assert [c["generation_id"] for c in state["cells"]] == [c["generation_id"] for c in grid["cells"]]
    assert state["settings"]["axes"][1]["values"] == [2.0, 4.0, 6.0]
    bob_id = make_user("bob@example.com")
    bob = bearer(api_token(app, bob_id))
    assert client.get(f"/api/v1/grids/{grid['id']}", headers=bob).status_code == 404
    assert client.get(f"/api/v1/grids/{grid['id']}").status_code == 401

    # the day's images: 12 used of 14, so a 3-cell grid is refused whole
    small = {**TWELVE, "axes": [{"type": "seed", "values": "1-3"}]}
    refused = client.post("/api/v1/grids", json=small, headers=auth)
    assert refused.status_code == 429 and count(app, Generation) == 12 and queued_jobs(redis_url) == 12
    # waiting places: the grid is one of them
    app.config.update(DAILY_IMAGE_QUOTA=200, MAX_QUEUED_PER_USER=2)
    assert client.post("/api/v1/generations", json={"prompt": "a blue sky", "steps": 3}, headers=auth).status_code == 201
    full = client.post("/api/v1/grids", json=small, headers=auth)
    assert full.status_code == 429 and "2 generations waiting" in full.get_json()["detail"]
    assert client.post("/api/v1/generations", json={"prompt": "a sky", "steps": 3}, headers=auth).status_code == 429
    assert count(app, Generation) == 13 and queued_jobs(redis_url) == 13

    # a strength axis from an image of the gallery; another person's private image is 404
    app.config["MAX_QUEUED_PER_USER"] = 10
    strength = {**small, "steps": 10, "axes": [{"type": "strength", "values": "0.3, 0.7"}]}
    others = client.post("/api/v1/grids", json={**strength, "init_image_id": make_image(bob_id)}, headers=auth)
    assert others.status_code == 404 and queued_jobs(redis_url) == 13
    started = client.post("/api/v1/grids", json={**strength, "init_image_id": make_image(ada_id)}, headers=auth)
    assert started.status_code == 202, started.get_json()
    with app.app_context():
        cells = [db.session.get(Generation, c["generation_id"]) for c in started.get_json()["cells"]]
        assert [(c.strength, c.source) for c in cells] == [(0.3, "image"), (0.7, "image")]

    document = client.get("/api/v1/openapi.json").get_json()
    assert {"/api/v1/grids", "/api/v1/grids/{grid_id}"} <= set(document["paths"])
    assert "202" in document["paths"]["/api/v1/grids"]["post"]["responses"]


def generation_of_timeout(message: str) -> str:
    return message.split("(generation ")[1].split(")")[0]


def test_variants_and_several_styles_in_the_dialects(app, client, ada, live_server, auth):
    """No worker runs: each call waits 0 s and answers 504 naming its generation, whose prompts are checked."""
    user_id, token = ada
    app.config["API_WAIT_SECONDS"] = 0
    prompt = "a {red|blue|green} circle"
    oai = openai.OpenAI(base_url=f"{live_server}/v1", api_key=token, max_retries=0, timeout=30)
    with pytest.raises(openai.APIStatusError) as waited:
        oai.images.generate(model="easel-tiny", prompt=prompt, extra_body={"variants": "all", "steps": 3})
    assert waited.value.status_code == 504
    generation_id = generation_of_timeout(waited.value.message)
    with pytest.raises(openai.BadRequestError, match="variants is random"):
        oai.images.generate(model="easel-tiny", prompt=prompt, extra_body={"variants": "every"})

    # webuiapi's txt2img takes no extra field; clients that post JSON (SillyTavern, scripts) add it to the body
    waited_a1111 = requests.post(f"{live_server}/sdapi/v1/txt2img", auth=("ada@example.com", token), timeout=10,
                                 json={"prompt": prompt, "steps": 3, "width": 64, "height": 64, "variants": "all"})
    assert waited_a1111.status_code == 504
    a1111_id = generation_of_timeout(waited_a1111.json()["detail"])
    with app.app_context():
        for made in (generation_id, a1111_id):
            picks = db.session.get(GenerationPrompts, made)
            assert picks.variants == "all" and picks.prompts == [f"a {c} circle" for c in ("red", "blue", "green")]
            assert db.session.get(Generation, made).num_images == 3
    basic = {"Authorization": "Basic " + b64encode(f"ada@example.com:{token}".encode()).decode()}
    refused = client.post("/sdapi/v1/txt2img", headers=basic, json={"prompt": prompt, "variants": 3})
    assert refused.status_code == 422 and "variants" in refused.get_data(as_text=True)

    # A1111's styles list (the real webuiapi client): applied in order; an unknown name refused, naming it
    api = webuiapi.WebUIApi(host="127.0.0.1", port=urlsplit(live_server).port, username="ada@example.com",
                            password=token)
    auth.login("ada@example.com")
    post(client, "/styles", "/styles", name="glow", template="{prompt}, glowing", negative_prompt="blurry")
    post(client, "/styles", "/styles", name="frame", template="a framed picture of {prompt}", negative_prompt="text")
    before = count(app, Generation)
    unknown = requests.post(f"{live_server}/sdapi/v1/txt2img", auth=("ada@example.com", token), timeout=10,
                            json={"prompt": "a star", "styles": ["glow", "nope"]})
    assert unknown.status_code == 422 and "“nope”" in unknown.json()["detail"] and count(app, Generation) == before
    with pytest.raises(RuntimeError, match="504") as waited:
        api.txt2img(prompt="a star", steps=3, width=64, height=64, styles=["glow", "frame", "pencil"])
    with app.app_context():
        made = db.session.get(Generation, generation_of_timeout(str(waited.value)))
        assert made.style == "glow,frame,pencil" and made.prompt == "a star"  # what was written is kept
        assert apply_style(made.prompt, made.negative_prompt, made.style, user_id) == (
            "a framed picture of a star, glowing, pencil sketch, graphite drawing", "blurry, text")
