"""The real ``openai`` and ``webuiapi`` packages against a live Easel over HTTP, with a real generation
worker and the bundled model (webapp/api/openai_images.py, webapp/api/automatic1111.py)."""
from __future__ import annotations

import base64
import io
import json
import threading
import time
from urllib.parse import urlsplit

import numpy as np
import openai
import pytest
import requests
import webuiapi
from PIL import Image as PILImage
from sqlalchemy import func, select

from models.samplers import SAMPLERS
from models.training.data import Scene, render
from models.training.measure import read_image
from tests.support import api_token, bearer, wait_for
from webapp.extensions import db
from webapp.tables import Generation

EXTRAS = {"steps": 4, "guidance": 3.0}


def _decoded(b64: str) -> PILImage.Image:
    image = PILImage.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def _generation(live_server: str, token: str, generation_id: str) -> requests.Response:
    return requests.get(f"{live_server}/api/v1/generations/{generation_id}", headers=bearer(token), timeout=10)


@pytest.fixture
def people(app, make_user):
    """Ada (with a token) and Bob (with a token)."""
    ada, bob = make_user("ada@example.com"), make_user("bob@example.com")
    return {"ada": api_token(app, ada), "bob": api_token(app, bob), "ada_id": ada, "bob_id": bob}


def test_openai_client_makes_images_into_the_gallery(app, live_server, workers, people):
    client = openai.OpenAI(base_url=f"{live_server}/v1", api_key=people["ada"], max_retries=0, timeout=120)
    # No worker yet: the wait runs out with a clear error, and the generation still finishes later.
    app.config["API_WAIT_SECONDS"] = 1
    with pytest.raises(openai.APIStatusError) as timed_out:
        client.images.generate(model="easel-tiny", prompt="a green star", extra_body=EXTRAS)
    assert timed_out.value.status_code == 504 and "gallery" in timed_out.value.message
    late_id = timed_out.value.body["message"].rsplit("generation ", 1)[1].rstrip(").")
    app.config["API_WAIT_SECONDS"] = 120
    workers.start()
    wait_for(lambda: _generation(live_server, people["ada"], late_id).json()["status"] == "succeeded", timeout=120,
             message="the timed-out generation to finish into the gallery")

    result = client.images.generate(model="easel-tiny", prompt="a red circle in the center", n=2, size="64x64",
                                    response_format="b64_json",
                                    extra_body={**EXTRAS, "seed": 11, "negative_prompt": "blue"})
    assert len(result.data) == 2 and result.created > 0
    first, second = (_decoded(item.b64_json) for item in result.data)
    assert first.format == "PNG" and first.size == (64, 64)
    assert "Seed: 11" in first.info["parameters"] and "Seed: 12" in second.info["parameters"]
    assert "Steps: 4" in first.info["parameters"] and json.loads(first.info["easel"])["negative_prompt"] == "blue"

    webp = client.images.generate(model="easel-tiny", prompt="a red circle", extra_body={**EXTRAS, "style": "pencil"},
                                  output_format="webp")
    assert _decoded(webp.data[0].b64_json).format == "WEBP"
    assert webp.data[0].revised_prompt == "a red circle, pencil sketch, graphite drawing"

    linked = client.images.generate(model="easel-tiny", prompt="a red circle", response_format="url", extra_body=EXTRAS)
    path = urlsplit(linked.data[0].url).path  # PUBLIC_BASE_URL is not this test server's address
    fetched = requests.get(live_server + path, timeout=10)  # signed link: no token, no cookie
    assert fetched.status_code == 200 and PILImage.open(io.BytesIO(fetched.content)).format == "PNG"

    mine = requests.get(f"{live_server}/api/v1/images", headers=bearer(people["ada"]), timeout=10).json()
    assert mine["total"] == 1 + 2 + 1 + 1  # every call is an ordinary generation in the gallery
    assert [m.id for m in client.models.list()] == ["easel-tiny", "easel-tiny-slow"]

    with pytest.raises(openai.BadRequestError) as bad_size:
        client.images.generate(model="easel-tiny", prompt="a red circle", size="512x512")
    assert "64x64" in bad_size.value.message and bad_size.value.body["param"] == "size"

    # Bob cannot see Ada's generation; the daily quota gives 429.
    assert _generation(live_server, people["bob"], late_id).status_code == 404
    app.config["DAILY_IMAGE_QUOTA"] = 6
    with pytest.raises(openai.RateLimitError) as limited:
        client.images.generate(model="easel-tiny", prompt="a red circle", n=2, extra_body=EXTRAS)
    assert "limit" in limited.value.message and int(limited.value.response.headers["Retry-After"]) > 0


def test_openai_client_with_revoked_expired_or_banned_token_gets_401(app, live_server, people):
    from webapp.api_tokens import revoke_token
    from webapp.extensions import db
    from webapp.tables import ApiToken, User, utcnow

    def refused(token: str) -> None:
        client = openai.OpenAI(base_url=f"{live_server}/v1", api_key=token, max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            client.images.generate(model="easel-tiny", prompt="a red circle")

    with app.app_context():
        tokens = {t.user_id: t for t in db.session.scalars(db.select(ApiToken))}
        revoke_token(tokens[people["ada_id"]])
    refused(people["ada"])
    expiring = api_token(app, people["ada_id"], expires_at=utcnow())
    refused(expiring)
    with app.app_context():
        db.session.get(User, people["bob_id"]).is_banned = True
        db.session.commit()
    refused(people["bob"])


def test_webuiapi_client_txt2img_progress_models_and_options(app, live_server, workers, people):
    workers.start()
    port = urlsplit(live_server).port
    api = webuiapi.WebUIApi(host="127.0.0.1", port=port, username="ada@example.com", password=people["ada"],
                            steps=4)
    assert api.get_scripts() == {"txt2img": [], "img2img": []}
    assert api.util_get_model_names() == ["easel-tiny", "easel-tiny-slow"]
    result = api.txt2img(prompt="a blue square on the left", negative_prompt="red", width=64, height=64, seed=5,
                         cfg_scale=3, batch_size=2, sampler_name="Euler a", alwayson_scripts={})
    assert [image.size for image in result.images] == [(64, 64), (64, 64)]
    assert result.info["all_seeds"] == [5, 6] and result.info["seed"] == 5
    assert "Seed: 5" in result.info["infotexts"][0] and "Steps: 4" in result.info["infotexts"][0]
    # sampler_name is honoured (webuiapi sends "Euler a" unless told otherwise), and listed as it is named
    assert result.info["sampler_name"] == "Euler a" and "Steps: 4, Sampler: Euler a," in result.info["infotexts"][0]
    assert [sampler["name"] for sampler in api.get_samplers()] == list(SAMPLERS)
    with app.app_context():
        made = db.session.scalar(select(func.count()).select_from(Generation))
        assert db.session.scalar(select(Generation.scheduler).order_by(Generation.created_at.desc())) == "Euler a"
    with pytest.raises(RuntimeError) as unknown:
        api.txt2img(prompt="a blue square", width=64, height=64, sampler_name="Euler b")
    assert unknown.value.args[0] == 422 and "“DPM++ 2M Karras”" in unknown.value.args[1]
    with pytest.raises(RuntimeError) as karras:  # A1111 1.9's sampler and schedule apart: "DPM++ 2M Karras"
        api.txt2img(prompt="a blue square", width=64, height=64, sampler_name="DPM++ 2M", scheduler="Karras")
    assert karras.value.args[0] == 422 and "DPM++ 2M Karras does not fit" in karras.value.args[1]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Generation)) == made, "nothing was queued"
    assert result.parameters["prompt"] == "a blue square on the left"
    progress = api.get_progress()
    assert progress["state"]["job_count"] == 0 and progress["progress"] == 0

    raw = result.json["images"][0]
    info = requests.post(f"{live_server}/sdapi/v1/png-info", json={"image": raw},
                         auth=("ada@example.com", people["ada"]), timeout=10).json()
    assert "Seed: 5" in info["info"]

    # The model choice is this token's: Ada's other token and the site keep the default.
    api.util_set_model("easel-tiny-slow")
    assert api.get_options()["sd_model_checkpoint"] == "easel-tiny-slow"
    other = api_token(app, people["ada_id"])
    assert requests.get(f"{live_server}/sdapi/v1/options", auth=("ada@example.com", other),
                        timeout=10).json()["sd_model_checkpoint"] == "easel-tiny"
    slow = api.txt2img(prompt="a blue square", width=64, height=64, seed=1)
    assert slow.info["sd_model_name"] == "easel-tiny-slow"

    with pytest.raises(RuntimeError) as bad:
        api.txt2img(prompt="a blue square")  # webuiapi's default 512x512 is not offered by this model
    assert bad.value.args[0] == 422 and "64×64" in bad.value.args[1]

    app.config["MAX_QUEUED_PER_USER"] = 0
    with pytest.raises(RuntimeError) as limited:
        api.txt2img(prompt="a blue square", width=64, height=64)
    assert limited.value.args[0] == 429


def test_webuiapi_interrupt_and_progress_of_a_running_job(app, live_server, workers, people):
    workers.start()
    auth = ("ada@example.com", people["ada"])
    created = requests.post(f"{live_server}/api/v1/generations", headers=bearer(people["ada"]), timeout=10,
                            json={"prompt": "a red circle", "model": "easel-tiny-slow", "steps": 1000}).json()
    api = webuiapi.WebUIApi(host="127.0.0.1", port=urlsplit(live_server).port, username=auth[0], password=auth[1])
    running = wait_for(lambda: (p := api.get_progress())["state"]["sampling_step"] >= 2 and p, timeout=120,
                       interval=0.5, message="the job to run")  # polled as clients do, within the rate limit
    assert running["state"]["job_count"] == 1 and running["state"]["sampling_steps"] == 1000
    assert 0 < running["progress"] < 1 and running["eta_relative"] > 0
    bob = requests.post(f"{live_server}/sdapi/v1/interrupt", auth=("bob@example.com", people["bob"]), timeout=10)
    assert bob.status_code == 200
    assert _generation(live_server, people["ada"], created["id"]).json()["status"] == "running"  # Bob stops nothing
    api.interrupt()
    wait_for(lambda: _generation(live_server, people["ada"], created["id"]).json()["status"] == "canceled",
             timeout=60, message="the interrupted job to stop")
    assert api.get_progress()["state"]["job_count"] == 0


SCENE = Scene(shape="square", colour="red", background="green", position="center", size="large")


def _encoded(picture: PILImage.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def _assert_inpainted(start: PILImage.Image, result: PILImage.Image, colour: str) -> None:
    """The middle (16..48) repainted to ``colour``; outside it not one pixel changed."""
    before, after = np.asarray(start.convert("RGB"), np.int16), np.asarray(result.convert("RGB"), np.int16)
    outside = np.ones((64, 64), bool)
    outside[16:48, 16:48] = False
    assert np.abs(after[outside] - before[outside]).max() == 0
    assert read_image(result.convert("RGB")).colour == colour


def _png(colour: str, size: tuple[int, int] = (96, 80)) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def test_images_from_images_through_both_clients(app, live_server, workers, people):
    workers.start()
    client = openai.OpenAI(base_url=f"{live_server}/v1", api_key=people["ada"], max_retries=0, timeout=120)
    edited = client.images.edit(image=("start.png", _png("red"), "image/png"), prompt="a red circle", n=1,
                                size="64x64", extra_body={"strength": 0.5, "steps": 8, "seed": 3})
    picture = _decoded(edited.data[0].b64_json)
    assert picture.size == (64, 64) and "Denoising strength: 0.5" in picture.info["parameters"]
    with pytest.raises(openai.BadRequestError) as opaque:  # OpenAI's mask marks the edit by transparency
        client.images.edit(image=("start.png", _png("red"), "image/png"), mask=("m.png", _png("white"), "image/png"),
                           prompt="a red circle")
    assert opaque.value.body["param"] == "mask" and "transparency" in opaque.value.message
    # Inpainting: the transparent middle is repainted blue, every pixel around it kept
    scene, hole = render(SCENE), PILImage.new("RGBA", (64, 64), (0, 0, 0, 255))
    hole.paste((0, 0, 0, 0), (16, 16, 48, 48))
    painted = client.images.edit(image=("scene.png", _encoded(scene), "image/png"),
                                 mask=("mask.png", _encoded(hole), "image/png"), size="64x64",
                                 prompt="a large blue square in the center, green background",
                                 extra_body={"strength": 1.0, "steps": 8, "seed": 3})
    _assert_inpainted(scene, _decoded(painted.data[0].b64_json), "blue")
    with pytest.raises(openai.BadRequestError) as not_an_image:
        client.images.edit(image=("start.png", b"not a picture", "image/png"), prompt="a red circle")
    assert not_an_image.value.body["param"] == "image"

    api = webuiapi.WebUIApi(host="127.0.0.1", port=urlsplit(live_server).port, username="ada@example.com",
                            password=people["ada"])
    result = api.img2img(images=[PILImage.new("RGB", (64, 64), "blue")], prompt="a blue square", width=64, height=64,
                         steps=8, denoising_strength=0.5, seed=9, cfg_scale=3)
    assert result.image.size == (64, 64) and result.info["denoising_strength"] == 0.5
    assert "Denoising strength: 0.5" in result.info["infotexts"][0] and result.info["all_seeds"] == [9]
    # A1111's inpainting as webuiapi sends it (fill 0, only the masked area, padding 0): white repaints
    square = PILImage.new("L", (64, 64), 0)
    square.paste(255, (16, 16, 48, 48))
    inpainted = api.img2img(images=[scene], mask_image=square, prompt="a large yellow square in the center, green "
                            "background", width=64, height=64, steps=8, denoising_strength=1.0, seed=4, cfg_scale=3)
    _assert_inpainted(scene, inpainted.image, "yellow")
    with pytest.raises(RuntimeError) as nothing:
        api.img2img(images=[scene], mask_image=square, prompt="a square", inpainting_fill=3)
    assert nothing.value.args[0] == 422 and "inpainting_fill" in nothing.value.args[1]
    with pytest.raises(RuntimeError) as no_larger:  # a hires fix needs a larger size the model makes (64x64 only)
        api.txt2img(prompt="a square", width=64, height=64, enable_hr=True, hr_scale=2, hr_upscaler="Latent")
    assert no_larger.value.args[0] == 422 and "128×128" in no_larger.value.args[1]
    mine = requests.get(f"{live_server}/api/v1/generations", headers=bearer(people["ada"]), timeout=10).json()
    assert mine["total"] == 4 and {g["status"] for g in mine["items"]} == {"succeeded"}

    # A1111's extras: upscale an uploaded picture with a listed upscaler
    assert [u["name"] for u in api.get_upscalers()] == ["lanczos", "easel-compact-x4"]  # tests/catalog.toml
    # webuiapi's own enum sends A1111's spelling, "Lanczos": names match in any case (it was a 422)
    bigger = api.extra_single_image(image=PILImage.new("RGB", (40, 30), "green"),
                                    upscaler_1=webuiapi.Upscaler.Lanczos, upscaling_resize=2)
    assert bigger.image.size == (80, 60)
    with pytest.raises(RuntimeError) as no_upscaler:
        api.extra_single_image(image=PILImage.new("RGB", (40, 30), "green"), upscaling_resize=2)  # upscaler_1 "None"
    assert no_upscaler.value.args[0] == 422

    # Easel's API: an upscale and variations of that image, made by the worker
    image_id = _generation(live_server, people["ada"], result.info["easel_generation_id"]).json()["images"][0]["id"]
    upscale = requests.post(f"{live_server}/api/v1/images/{image_id}/upscale", json={"factor": 2},
                            headers=bearer(people["ada"]), timeout=10).json()
    done = wait_for(lambda: (g := _generation(live_server, people["ada"], upscale["id"]).json())["status"]
                    in {"succeeded", "failed"} and g, timeout=120, interval=0.5, message="the upscale")
    assert done["status"] == "succeeded" and (done["images"][0]["width"], done["images"][0]["height"]) == (128, 128)
    variation = requests.post(f"{live_server}/api/v1/images/{image_id}/variations", json={"num_images": 1},
                              headers=bearer(people["ada"]), timeout=10).json()
    done = wait_for(lambda: (g := _generation(live_server, people["ada"], variation["id"]).json())["status"]
                    in {"succeeded", "failed"} and g, timeout=120, interval=0.5, message="the variation")
    assert done["status"] == "succeeded" and len(done["images"]) == 1


def _generations(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Generation))


def test_requests_that_wait_for_images_are_bounded_per_web_process(app, live_server, people):
    """Each waiting OpenAI or A1111 call holds a web thread: past API_MAX_WAITING they are turned away at once."""
    app.config.update(API_MAX_WAITING=1, API_WAIT_SECONDS=4)
    client = openai.OpenAI(base_url=f"{live_server}/v1", api_key=people["ada"], max_retries=0, timeout=30)
    first: list[BaseException] = []

    def wait_for_an_image() -> None:  # no worker runs: it waits its 4 s, then 504
        try:
            client.images.generate(model="easel-tiny", prompt="a green star", extra_body=EXTRAS)
        except openai.APIStatusError as exc:
            first.append(exc)

    waiting = threading.Thread(target=wait_for_an_image)
    waiting.start()
    wait_for(lambda: _generations(app) == 1, timeout=10, message="the first request to start its generation")

    began = time.monotonic()
    with pytest.raises(openai.InternalServerError) as busy:
        client.images.generate(model="easel-tiny", prompt="a red circle", extra_body=EXTRAS)
    # Retry-After: at least our 10 s (Flask-Limiter moves it to the end of the token's rate window, never earlier)
    assert busy.value.status_code == 503 and int(busy.value.response.headers["Retry-After"]) >= 10
    assert "/api/v1" in busy.value.message and time.monotonic() - began < 2
    a1111 = requests.post(f"{live_server}/sdapi/v1/txt2img", auth=("ada@example.com", people["ada"]), timeout=10,
                          json={"prompt": "a red circle", "steps": 4})
    assert a1111.status_code == 503 and int(a1111.headers["Retry-After"]) >= 10
    assert _generations(app) == 1  # neither refused request started anything
    queued = requests.post(f"{live_server}/api/v1/generations", headers=bearer(people["bob"]), timeout=10,
                           json={"prompt": "a blue sky", "model": "easel-tiny", **EXTRAS})
    assert queued.status_code == 201  # the API that does not wait is not bounded

    waiting.join(30)
    assert first and first[0].status_code == 504
    app.config["API_WAIT_SECONDS"] = 1  # the place is free again: the next call waits (504), not 503
    with pytest.raises(openai.APIStatusError) as late:
        client.images.generate(model="easel-tiny", prompt="a red circle", extra_body=EXTRAS)
    assert late.value.status_code == 504
