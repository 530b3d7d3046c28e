"""Control images end to end: a real worker with the bundled model and its scribble ControlNet, driven through
``/api/v1`` (JSON with base64, multipart), the real ``webuiapi`` client's ``ControlNetUnit``, and refusals of bad
input that write and queue nothing (webapp/controls.py, webapp/api/control_input.py, jobs/control.py)."""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests
import webuiapi
from PIL import Image as PILImage
from PIL import ImageDraw
from sqlalchemy import func, select

from models.training.data import COLOURS, shape_polygon
from models.training.evaluate_control import centroid, object_mask
from tests.support import api_token, bearer, wait_for, worker_report
from webapp.extensions import db
from webapp.tables import Generation

PROMPT = "a red star, blue background"  # names no position: where the star goes is the scribble's to say
SEED = 3
FAST = {"steps": 8, "guidance": 2.0, "seed": SEED, "model": "easel-tiny"}
CORNER = (46.0, 46.0)  # the bottom-right of a 64x64 picture


def scribble_png(centre: tuple[float, float] = CORNER, radius: float = 10, size: int = 256) -> bytes:
    """A star drawn as a person draws it on the studio's canvas: black strokes on white, at 4x the picture."""
    k = size / 64
    img = PILImage.new("RGB", (size, size), "white")
    points = shape_polygon("star", centre[0] * k, centre[1] * k, radius * k)
    ImageDraw.Draw(img).line([*points, points[0]], fill="black", width=int(2 * k), joint="curve")
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def render_png(centre: tuple[float, float], radius: float = 10) -> bytes:
    """A photo-like render: a filled yellow square on green (the canny preprocessor finds its edges)."""
    img = PILImage.new("RGB", (64, 64), COLOURS["green"])
    ImageDraw.Draw(img).rectangle([centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius],
                                  fill=COLOURS["yellow"])
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def distance(png: bytes, target: tuple[float, float]) -> float:
    """How far the object's centroid lies from ``target``, in pixels of the 64x64 picture."""
    found = centroid(object_mask(PILImage.open(io.BytesIO(png))))
    return float("inf") if found is None else float(np.hypot(found[0] - target[0], found[1] - target[1]))


def finished(live_server: str, token: str, generation_id: str) -> dict:
    def done() -> dict | None:
        state = requests.get(f"{live_server}/api/v1/generations/{generation_id}", headers=bearer(token),
                             timeout=10).json()
        return state if state["status"] in ("succeeded", "failed") else None

    # at most two polls a second: the account's API limit (120 per minute) must last the whole test
    state = wait_for(done, timeout=120, interval=0.5, message=f"generation {generation_id} to finish")
    assert state["status"] == "succeeded", state["error"]
    return state


def picture(live_server: str, token: str, state: dict) -> bytes:
    return requests.get(live_server + state["images"][0]["download_url"], headers=bearer(token), timeout=10).content


@pytest.fixture
def ada(app, make_user):
    user = make_user("ada@example.com")
    return {"id": user, "token": api_token(app, user)}


def test_a_scribble_puts_the_object_where_it_is_drawn(app, app_env, live_server, workers, ada):
    worker = workers.start()
    token, url = ada["token"], f"{live_server}/api/v1/generations"
    controls = requests.get(f"{live_server}/api/v1/controls", headers=bearer(token), timeout=10).json()
    listed = {c["name"]: c for c in controls}
    assert listed["easel-scribble"]["available"] and listed["easel-scribble"]["type"] == "controlnet"
    assert listed["easel-scribble"]["models"] == ["easel-tiny", "easel-tiny-slow", "missing-model"]  # all SD ones
    assert not listed["missing-control"]["available"] and "config.json missing" in listed["missing-control"][
        "unavailable_reason"]

    # The same prompt and seed, without and with a star drawn in the bottom-right corner (JSON, base64).
    plain = requests.post(url, json={"prompt": PROMPT, **FAST}, headers=bearer(token), timeout=10)
    drawn = requests.post(url, json={"prompt": PROMPT, **FAST, "control_image": base64.b64encode(scribble_png()).decode(),
                                     "control_scale": 1.0}, headers=bearer(token), timeout=10)
    assert plain.status_code == drawn.status_code == 201, drawn.text
    without = picture(live_server, token, finished(live_server, token, plain.json()["id"]))
    with_control = picture(live_server, token, finished(live_server, token, drawn.json()["id"]))
    assert distance(with_control, CORNER) <= 8 < distance(without, CORNER)

    # What was used is recorded: the row, the PNG's parameters, a stored copy of the control image.
    info = PILImage.open(io.BytesIO(with_control)).info
    assert 'ControlNet 0: "Module: scribble, Model: easel-scribble, Weight: 1.0"' in info["parameters"]
    recorded = json.loads(info["easel"])["controls"][0]
    assert (recorded["name"], recorded["scale"], recorded["preprocessor"]) == ("easel-scribble", 1.0, "scribble")
    assert PILImage.open(io.BytesIO(stored_bytes(app_env, [recorded]))).size == (64, 64)

    # multipart, with canny edges of a photo-like render on the left: the object follows them there.
    left = (16.0, 32.0)
    sent = requests.post(f"{url}/with-control", headers=bearer(token), timeout=10,
                         data={"prompt": PROMPT, **{k: str(v) for k, v in FAST.items()}, "control": "easel-scribble",
                               "control_preprocessor": "canny"},
                         files={"control_image": ("render.png", render_png(left), "image/png")})
    assert sent.status_code == 201, sent.text
    assert distance(picture(live_server, token, finished(live_server, token, sent.json()["id"])), left) <= 8

    # The real webuiapi client: ControlNetUnit as it sends it, the extension's model and module lists.
    api = webuiapi.WebUIApi(host="127.0.0.1", port=urlsplit(live_server).port, username="ada@example.com",
                            password=token, steps=FAST["steps"])
    assert api.controlnet_model_list() == ["easel-scribble", "scribble-for-sdxl"]
    assert api.controlnet_module_list() == ["none", "scribble", "canny"]
    unit = webuiapi.ControlNetUnit(image=PILImage.open(io.BytesIO(scribble_png((18.0, 46.0)))), module="scribble",
                                   model="easel-scribble", weight=1.0)
    # a fresh alwayson_scripts each call: webuiapi writes the units into its shared default dict otherwise, and
    # every later call in this process would send them
    result = api.txt2img(prompt=PROMPT, width=64, height=64, seed=SEED, cfg_scale=2, controlnet_units=[unit],
                         alwayson_scripts={})
    assert 'Model: easel-scribble' in result.info["infotexts"][0]
    buffer = io.BytesIO()
    result.image.save(buffer, format="PNG")
    assert distance(buffer.getvalue(), (18.0, 46.0)) <= 8

    # ... and ControlNet inpainting as it sends it: img2img with a mask and a unit; the star lands in the masked
    # bottom-right quarter, the rest of the starting picture is kept to the pixel
    start = PILImage.new("RGB", (64, 64), COLOURS["blue"])
    mask = PILImage.new("L", (64, 64), 0)
    mask.paste(255, (32, 32, 64, 64))
    inpainted = api.img2img(images=[start], mask_image=mask, prompt=PROMPT, width=64, height=64, seed=SEED,
                            cfg_scale=2, denoising_strength=1.0, mask_blur=0, inpainting_fill=1, alwayson_scripts={},
                            controlnet_units=[webuiapi.ControlNetUnit(image=PILImage.open(io.BytesIO(scribble_png())),
                                                                      module="scribble", model="easel-scribble")])
    made = np.asarray(inpainted.image.convert("RGB"), np.int16)
    assert np.abs(made[:32] - np.asarray(start, np.int16)[:32]).max() == 0
    assert np.abs(made[:, :32] - np.asarray(start, np.int16)[:, :32]).max() == 0
    buffer = io.BytesIO()
    inpainted.image.save(buffer, format="PNG")
    assert distance(buffer.getvalue(), CORNER) <= 8

    # One load of the base model and of the control model for all of it: the control pipeline is made from
    # the warm one, the control model stays warm.
    report = worker_report(app_env["REDIS_URL"], worker, 5)
    assert report["loads"] == 1 and report["control_loads"] == 1


def _nothing_written(app, app_env) -> None:
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Generation)) == 0
    media = Path(app_env["MEDIA_DIR"])
    assert not media.exists() or not [p for p in media.rglob("*") if p.is_file()]


def test_bad_control_input_is_refused_and_nothing_is_written(app, app_env, live_server, ada):
    token, url = ada["token"], f"{live_server}/api/v1/generations"
    good = base64.b64encode(scribble_png()).decode()
    refusals = {
        "not an image": ({"control_image": base64.b64encode(b"hello").decode()}, "not a PNG, JPEG or WebP"),
        "not base64": ({"control_image": "%%%"}, "not valid base64"),
        "scale": ({"control_image": good, "control_scale": 2.5}, "between 0 and 2"),
        "fit": ({"control_image": good, "control": "scribble-for-sdxl"}, "fits sdxl models, not Easel Tiny"),
        "absent": ({"control_image": good, "control": "missing-control"}, "not available here"),
        "preprocessor": ({"control_image": good, "control_preprocessor": "sobel"}, "Unknown preprocessor"),
        "depth": ({"control_image": good, "control_preprocessor": "depth"}, "[preprocessors.depth] path ="),
        "no image": ({"control": "easel-scribble"}, "need a control_image"),
    }
    for name, (fields, message) in refusals.items():
        answer = requests.post(url, json={"prompt": PROMPT, **FAST, **fields}, headers=bearer(token), timeout=10)
        assert answer.status_code == 400 and message in answer.json()["detail"], (name, answer.text)

    # A decompression bomb in multipart.
    bomb = io.BytesIO()
    PILImage.new("1", (20000, 20000)).save(bomb, format="PNG")
    answer = requests.post(f"{url}/with-control", headers=bearer(token), timeout=10, data={"prompt": PROMPT},
                           files={"control_image": ("bomb.png", bomb.getvalue(), "image/png")})
    assert answer.status_code == 400 and "decompression bomb" in answer.json()["detail"], answer.text

    # AUTOMATIC1111: more units than MAX_CONTROLS, and a unit feature Easel lacks, each named (422).
    a1111 = f"{live_server}/sdapi/v1/txt2img"
    auth = ("ada@example.com", token)
    unit = {"image": good, "module": "scribble", "model": "easel-scribble", "weight": 1.0}
    body = {"prompt": PROMPT, "width": 64, "height": 64, "steps": 4}
    three = requests.post(a1111, json={**body, "alwayson_scripts": {"controlnet": {"args": [unit] * 3}}}, auth=auth,
                          timeout=10)
    assert three.status_code == 422 and "At most 2 control images" in three.text
    timed = requests.post(a1111, json={**body, "alwayson_scripts": {"controlnet": {"args": [
        {**unit, "guidance_start": 0.3, "pixel_perfect": True}]}}}, auth=auth, timeout=10)
    assert timed.status_code == 422 and "guidance_start, pixel_perfect" in timed.text
    module = requests.post(a1111, json={**body, "alwayson_scripts": {"controlnet": {"args": [
        {**unit, "module": "openpose"}]}}}, auth=auth, timeout=10)
    assert module.status_code == 422 and "openpose" in module.text
    cropped = requests.post(f"{live_server}/sdapi/v1/img2img", auth=auth, timeout=10, json={
        **body, "init_images": [good], "mask": good, "inpaint_full_res": True,
        "alwayson_scripts": {"controlnet": {"args": [unit, unit]}}})
    assert cropped.status_code == 422 and "only the masked area works with one control image" in cropped.text
    _nothing_written(app, app_env)


def test_the_studio_form_takes_a_drawing_checks_it_and_reuses_it(app, signed_in, app_env):
    from tests.support import FIELDS, csrf_token, queued_jobs

    def post(**fields):
        data = {**FIELDS, "csrf_token": csrf_token(signed_in, "/"), **fields}
        return signed_in.post("/generations", data=data, content_type="multipart/form-data",
                              headers={"Accept": "application/json"})

    refused = {
        "not an image": ({"control_image": (io.BytesIO(b"GIF89a"), "x.png")}, "control_image", "not a PNG"),
        "scale": ({"control_image": (io.BytesIO(scribble_png()), "s.png"), "control_scale": "3"}, "control_scale",
                  "between 0 and 2"),
        "fit": ({"control_image": (io.BytesIO(scribble_png()), "s.png"), "control": "scribble-for-sdxl"}, "control",
                "fits sdxl models"),
    }
    for name, (fields, field, words) in refused.items():
        answer = post(**fields)
        assert answer.status_code == 400 and words in " ".join(answer.get_json()["errors"][field]), (name, answer.json)
    _nothing_written(app, app_env)
    assert queued_jobs(app_env["REDIS_URL"]) == 0

    made = post(control_image=(io.BytesIO(scribble_png()), "scribble.png"), control_scale="0.8")
    assert made.status_code == 202, made.get_json()
    state = made.get_json()
    with app.app_context():
        controls = db.session.get(Generation, state["id"]).controls
    assert [(c["name"], c["scale"], c["preprocessor"]) for c in controls] == [("easel-scribble", 0.8, "scribble")]
    stored = PILImage.open(io.BytesIO(stored_bytes(app_env, controls)))
    assert stored.size == (64, 64) and np.asarray(stored.convert("L"))[:32, :32].max() == 0  # the star is bottom-right
    # "Reuse settings" brings the control back: the model, the scale, and the stored image by generation.
    assert {k: state["params"][k] for k in ("control", "control_scale", "control_from")} == {
        "control": "easel-scribble", "control_scale": 0.8, "control_from": state["id"]}
    again = post(control_from=state["id"], control="easel-scribble")
    assert again.status_code == 202
    served = signed_in.get(f"/generations/{state['id']}/control.png")
    assert served.data == stored_bytes(app_env, controls)
    served.close()


def stored_bytes(app_env, controls) -> bytes:
    return (Path(app_env["MEDIA_DIR"]) / controls[0]["image_key"]).read_bytes()
