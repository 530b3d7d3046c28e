"""Pictures with one worker: one image per wildcard combination, each with its own prompt; the A1111 client with a
weighted prompt; an X/Y/Z grid from the studio (six ordinary generations and one labelled picture with its
settings in the PNG text); A1111's X/Y/Z plot script through the real webuiapi client; limits before anything."""
from __future__ import annotations

import io
import json
from urllib.parse import urlsplit

import numpy as np
import openai
import pytest
import requests
import webuiapi
from PIL import Image as PILImage
from sqlalchemy import func, select

from tests.support import FIELDS, api_token, bearer, csrf_token, queued_jobs, submit_ok, wait_for, wait_status
from webapp.extensions import db
from webapp.grids.picture import layout
from webapp.tables import Generation, GridCell, User

VARIANTS_PROMPT = "a {red|blue|green} (circle:1.2) in the center, yellow background"

# X: seed (3 values), Y: guidance (2 values), the rest from the studio form
GRID = {"grid_x_type": "seed", "grid_x_values": "1-3", "grid_y_type": "guidance", "grid_y_values": "2, 6"}


def post_grid(client, **fields):
    data = {**FIELDS, "steps": "3", **fields, "csrf_token": csrf_token(client, "/")}
    return client.post("/grids", data=data)


def user_id_of(app, email: str) -> int:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.email == email))


def count(app, table) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(table))


def test_variants_weights_and_a_grid_of_six_generations_and_a_labelled_picture(app, signed_in, workers, live_server,
                                                                              redis_url) -> None:
    client = signed_in
    app.config["MAX_GRID_CELLS"] = 5
    too_big = post_grid(client, **GRID)
    assert too_big.status_code == 400 and "at most 5" in too_big.get_data(as_text=True)
    app.config["MAX_GRID_CELLS"] = 36
    refused = post_grid(client, **{**GRID, "grid_y_values": "2, 99"})
    assert refused.status_code == 400 and "Use a guidance from 0 to 15" in refused.get_data(as_text=True)
    assert post_grid(client, grid_x_type="sampler", grid_x_values="a").status_code == 400
    unknown = post_grid(client, grid_x_type="scheduler", grid_x_values="Euler, Model default, Euler b")
    assert unknown.status_code == 400 and "There is no sampler “Euler b”" in unknown.get_data(as_text=True)
    assert count(app, Generation) == 0 and queued_jobs(redis_url) == 0, "nothing starts for a refused grid"

    response = post_grid(client, **GRID)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    grid_url = response.headers["Location"]
    assert count(app, GridCell) == 6 and count(app, Generation) == 6
    workers.start()
    one_image_per_combination(app, client, live_server)
    state = wait_for(lambda: (s := client.get(grid_url, headers={"Accept": "application/json"}).get_json())["image_id"]
                     and s, timeout=180, message="the grid's picture")
    assert [cell["status"] for cell in state["cells"]] == ["succeeded"] * 6
    with app.app_context():
        seeds = db.session.execute(select(Generation.seed, Generation.guidance).join(
            GridCell, GridCell.generation_id == Generation.id).order_by(GridCell.position)).all()
    assert [tuple(row) for row in seeds] == [(1, 2.0), (2, 2.0), (3, 2.0), (1, 6.0), (2, 6.0), (3, 6.0)]

    response = client.get(f"/images/{state['image_id']}/file")
    png = PILImage.open(io.BytesIO(response.get_data()))
    response.close()
    settings = json.loads(png.text["easel"])["grid"]
    assert [(axis["type"], axis["values"]) for axis in settings["axes"]] == [("seed", [1, 2, 3]),
                                                                            ("guidance", [2.0, 6.0])]
    width, height, _, _, left, top = layout(settings, 64, 64)
    assert png.size == (width, height)
    pixels = np.asarray(png.convert("L"))
    assert (pixels[:top, left:] < 100).sum() > 50, "the X values are written above the columns"
    assert (pixels[top:, :left] < 100).sum() > 50, "the Y values are written beside the rows"
    assert "grid" in client.get("/gallery").get_data(as_text=True) or state["image_id"] in client.get(
        "/gallery").get_data(as_text=True)

    # A1111's X/Y/Z plot script (seed is its txt2img axis 1, Sampler 9; Sigma Churn, 13, is not made here: 422)
    api = webuiapi.WebUIApi(host="127.0.0.1", port=urlsplit(live_server).port, username="ada@example.com",
                            password=api_token(app, user_id_of(app, "ada@example.com")))
    options = [True, False, False, False, False, False, False, 0, False]
    result = api.txt2img(prompt="a (red:1.3) star in the top left, blue background", steps=3, width=64, height=64,
                         script_name="x/y/z plot", script_args=[1, "5, 6", [], 9, "", ["Euler", "DDIM"], 0, "", [],
                                                                *options])
    assert len(result.images) == 5 and [axis["values"] for axis in result.info["xyz_plot"]["axes"]] == [
        [5, 6], ["Euler", "DDIM"]]
    with app.app_context():
        made = db.session.scalars(select(Generation.scheduler).where(Generation.source != "grid").order_by(
            Generation.created_at.desc()).limit(4)).all()
    assert sorted(made) == ["DDIM", "DDIM", "Euler", "Euler"]
    with pytest.raises(RuntimeError, match="422"):
        api.txt2img(prompt="a star", steps=3, width=64, height=64, script_name="x/y/z plot",
                    script_args=[13, "0, 1", [], 0, "", [], 0, "", [], *options])


def one_image_per_combination(app, client, live_server) -> None:
    """variants=all: each colour once, each image with its own prompt (JSON, PNG, API, search); the A1111
    client with a weighted prompt."""
    generation_id = submit_ok(client, prompt=VARIANTS_PROMPT, variants="all", num_images=1, steps=4)
    final = wait_status(client, generation_id, {"succeeded", "failed"})
    assert final["status"] == "succeeded", final
    prompts = [image["prompt"] for image in final["images"]]
    assert prompts == [f"a {colour} (circle:1.2) in the center, yellow background" for colour in ("red", "blue", "green")]
    for image, prompt in zip(final["images"], prompts, strict=True):
        response = client.get(image["url"])
        png = PILImage.open(io.BytesIO(response.get_data()))
        response.close()
        assert png.text["parameters"].splitlines()[0] == prompt  # A1111 reads the weights back
        assert json.loads(png.text["easel"])["prompt_template"] == VARIANTS_PROMPT
    token = api_token(app, user_id_of(app, "ada@example.com"))
    listed = requests.get(f"{live_server}/api/v1/generations/{generation_id}", headers=bearer(token), timeout=10).json()
    assert [image["prompt"] for image in listed["images"]] == prompts
    assert "circle" in client.get("/gallery?q=green").get_data(as_text=True)  # the choices are in the prompt's words

    # the real A1111 client with a weighted prompt: kept as written, and it changes the picture
    api = webuiapi.WebUIApi(host="127.0.0.1", port=urlsplit(live_server).port, username="ada@example.com",
                            password=token)
    settings = {"seed": 3, "steps": 4, "cfg_scale": 3.0, "width": 64, "height": 64}
    up = api.txt2img(prompt="a (red:1.5) star in the top left, blue background", **settings)
    down = api.txt2img(prompt="a (red:0.5) star in the top left, blue background", **settings)
    assert up.info["prompt"] == "a (red:1.5) star in the top left, blue background"
    assert up.image.convert("RGB").tobytes() != down.image.convert("RGB").tobytes()
    styled = api.txt2img(prompt="a star", styles=["pencil", "watercolor"], **settings)
    assert styled.info["styles"] == ["pencil", "watercolor"] and styled.info["prompt"] == "a star"

    # the OpenAI client: one image per combination (an extension field), each with its own revised prompt
    client = openai.OpenAI(base_url=f"{live_server}/v1", api_key=token, max_retries=0, timeout=120)
    made = client.images.generate(model="easel-tiny", prompt="a {red|blue} circle", extra_body={
        "variants": "all", "steps": 3, "style": "pencil"})
    assert [item.revised_prompt for item in made.data] == [
        f"a {colour} circle, pencil sketch, graphite drawing" for colour in ("red", "blue")]
