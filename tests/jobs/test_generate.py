"""The generation loop end to end: real Redis, real worker processes, real files."""
from __future__ import annotations

import io
import json
import os
import signal

import numpy as np
from PIL import Image as PILImage
from redis import Redis
from rq.job import Job
from sqlalchemy import func, select

from models import precision
from tests.support import point_redis_at, state, submit, submit_ok, wait_for, wait_running, wait_status, worker_report
from webapp.extensions import db
from webapp.queues import SERIALIZER
from webapp.tables import Generation, Image


def fetch(client, url: str):
    """GET ``url`` and close the response (file responses hold the file open until then)."""
    response = client.get(url)
    response.get_data()
    response.close()
    return response


def png_pixels(client, image: dict) -> bytes:
    response = fetch(client, image["url"])
    assert response.status_code == 200
    return PILImage.open(io.BytesIO(response.data)).convert("RGB").tobytes()


def test_submit_run_succeed_download(app, signed_in, workers):
    client = signed_in
    generation_id = submit_ok(client, model="easel-tiny-slow", steps=150, num_images=2, style="pixel-art")
    first = state(client, generation_id)
    assert first["status"] == "queued" and first["queue_position"] == 1
    workers.start()
    seen_steps = set()

    def finished():
        s = state(client, generation_id)
        if s["status"] == "running":
            seen_steps.add(s["step"])
            assert s["total_steps"] == 150
        return s if s["status"] in {"succeeded", "failed"} else None

    final = wait_for(finished, timeout=180, interval=0.1, message="the generation to finish")
    assert final["status"] == "succeeded", final
    assert len([s for s in seen_steps if s > 0]) >= 2, seen_steps  # the step rose while we watched
    assert final["error"] is None and len(final["images"]) == 2

    image = final["images"][0]
    response = fetch(client, image["url"])
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    png = PILImage.open(io.BytesIO(response.data))
    assert png.size == (64, 64)
    params = json.loads(png.text["easel"])
    assert params["prompt"] == "a red circle on a blue background"
    assert (params["seed"], params["steps"], params["style"], params["model"]) == (42, 150, "pixel-art", "easel-tiny-slow")
    assert "Seed: 42" in png.text["parameters"]
    auto = precision.resolve("auto", "cpu")  # bf16 on a CPU with AVX-512 BF16 or AMX, else fp32
    assert params["precision"] == auto and f", Precision: {auto}" in png.text["parameters"]
    assert len(png.convert("RGB").getcolors(maxcolors=4096)) <= 16  # pixel art: reduced palette

    thumb = fetch(client, image["thumbnail_url"])
    assert thumb.headers["Content-Type"] == "image/webp"
    assert PILImage.open(io.BytesIO(thumb.data)).format == "WEBP"
    download = fetch(client, image["url"] + "?download=1")
    assert "attachment" in download.headers["Content-Disposition"]

    gallery = client.get("/gallery").get_data(as_text=True)
    assert all(img["id"] in gallery for img in final["images"])
    detail = client.get(f"/images/{image['id']}").get_data(as_text=True)
    assert "a red circle on a blue background" in detail and ">42<" in detail
    assert f'<td id="precision">{auto}</td>' in detail

    with app.app_context():
        assert db.session.get(Generation, generation_id).precision == auto
        rows = db.session.scalars(select(Image).where(Image.generation_id == generation_id)).all()
        media = app.config["MEDIA_DIR"]
        for row in rows:
            assert row.storage_key.startswith(f"users/{row.user_id}/{generation_id}/")
            assert os.path.isfile(os.path.join(media, row.storage_key))


def test_same_seed_same_pixels_and_pipeline_loaded_once(app, signed_in, workers):
    client = signed_in
    app.config["MAX_ACTIVE_PER_USER"] = 5
    first = submit_ok(client, seed=7)
    second = submit_ok(client, seed=7)
    third = submit_ok(client, seed=8)
    proc = workers.start()
    results = [wait_status(client, gid, {"succeeded", "failed"}) for gid in (first, second, third)]
    assert [r["status"] for r in results] == ["succeeded"] * 3
    pixels = [png_pixels(client, r["images"][0]) for r in results]
    assert pixels[0] == pixels[1]
    assert pixels[0] != pixels[2]

    # A sampler by name: the same seed makes another picture, the row and the PNG say which; the next
    # generation without one is the model's own again (nothing of the swap stays on the warm pipeline).
    euler = wait_status(client, submit_ok(client, seed=7, scheduler="Euler a"), {"succeeded", "failed"})
    unipc = wait_status(client, submit_ok(client, seed=7, scheduler="UniPC"), {"succeeded", "failed"})
    again = wait_status(client, submit_ok(client, seed=7), {"succeeded", "failed"})
    assert [r["status"] for r in (euler, unipc, again)] == ["succeeded"] * 3
    assert (euler["params"]["scheduler"], again["params"]["scheduler"]) == ("Euler a", "")
    seven, *sampled, own = [np.frombuffer(picture, np.uint8).astype(int) for picture in (
        pixels[0], *(png_pixels(client, r["images"][0]) for r in (euler, unipc, again)))]
    # the first three may have shared a call, which moves a pixel by a level or two (tests/jobs/test_batching.py)
    assert np.abs(own - seven).max() <= 8 and np.abs(own - seven).mean() < 0.5
    for one, other in ((seven, sampled[0]), (seven, sampled[1]), (sampled[0], sampled[1])):
        assert np.abs(one - other).max() > 24, "each sampler makes its own picture (beyond a shared call's levels)"
    png = PILImage.open(io.BytesIO(fetch(client, unipc["images"][0]["url"]).data))
    assert "Steps: 8, Sampler: UniPC, CFG scale" in png.text["parameters"]
    assert '<td id="sampler">Euler a</td>' in client.get(f"/images/{euler['images'][0]['id']}").get_data(as_text=True)
    with app.app_context():
        assert [db.session.get(Generation, r["id"]).scheduler for r in (euler, unipc, again)] == [
            "Euler a", "UniPC", None]
    report = worker_report(app.config["REDIS_URL"], proc, generations=6)
    assert (report["loads"], report["catalog_reads"]) == (1, 1)  # warm: loaded at start, never again


def test_cancel_queued_never_runs(app, signed_in, workers):
    client = signed_in
    generation_id = submit_ok(client)
    response = client.post(f"/generations/{generation_id}/cancel",
                           data={"csrf_token": _token(client, generation_id)})
    assert response.status_code == 303
    assert state(client, generation_id)["status"] == "canceled"
    workers.start()
    # A second, later job proves the worker ran past the canceled one.
    later = submit_ok(client)
    assert wait_status(client, later, {"succeeded"})["status"] == "succeeded"
    assert state(client, generation_id)["status"] == "canceled"
    assert Job.fetch(generation_id, connection=Redis.from_url(app.config["REDIS_URL"])).get_status() == "canceled"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Image).where(Image.generation_id == generation_id)) == 0


def test_cancel_running_stops_within_a_step(app, signed_in, workers):
    client = signed_in
    workers.start()
    generation_id = submit_ok(client, model="easel-tiny-slow", steps=1000)
    wait_running(client, generation_id, 3)
    client.post(f"/generations/{generation_id}/cancel", data={"csrf_token": _token(client, generation_id)})
    final = wait_status(client, generation_id, {"canceled", "succeeded", "failed"}, timeout=30)
    assert final["status"] == "canceled"
    assert final["step"] < 1000
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Image).where(Image.generation_id == generation_id)) == 0
    assert not os.path.exists(os.path.join(app.config["MEDIA_DIR"], "users"))


def test_failing_job_shows_readable_error(app, signed_in, workers):
    client = signed_in
    generation_id = submit_ok(client)
    with app.app_context():  # the model vanished after submission (e.g. removed from this worker)
        db.session.get(Generation, generation_id).model = "missing-model"
        db.session.commit()
    workers.start()
    final = wait_status(client, generation_id, {"failed", "succeeded"})
    assert final["status"] == "failed"
    assert final["error"].startswith("The model is not available: model 'missing-model'")
    assert "Traceback" not in final["error"]
    job = Job.fetch(generation_id, connection=Redis.from_url(app.config["REDIS_URL"]), serializer=SERIALIZER)
    # Re-raised, so RQ records the failure too (just after the row is marked).
    wait_for(lambda: job.get_status(refresh=True) == "failed", timeout=15, message="RQ to record the failure")
    assert "ModelUnavailable" in job.latest_result().exc_string


def test_killed_worker_job_ends_failed(app, signed_in, workers, monkeypatch):
    client = signed_in
    proc = workers.start(extra_env={"EASEL_HEARTBEAT_TTL": "2"})
    generation_id = submit_ok(client, model="easel-tiny-slow", steps=1000)
    wait_running(client, generation_id, 2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert state(client, generation_id)["status"] == "running"
    from jobs.chores import reap_abandoned_generations

    def reaped():
        reap_abandoned_generations()
        return state(client, generation_id)["status"] != "running"

    wait_for(reaped, timeout=30, interval=0.5, message="the reaper to settle the job")
    final = state(client, generation_id)
    assert final["status"] == "failed"
    assert "worker stopped" in final["error"]


def test_queue_down_marks_row_failed(app, signed_in):
    point_redis_at(app, "redis://127.0.0.1:1/0")
    response = submit(signed_in)
    assert response.status_code == 503
    assert "queue is not reachable" in response.get_data(as_text=True)
    with app.app_context():
        generation = db.session.scalar(select(Generation))
        assert generation.status == "failed" and "not reachable" in generation.error


def test_queued_limit(app, signed_in):
    app.config["MAX_QUEUED_PER_USER"] = 2
    submit_ok(signed_in)
    submit_ok(signed_in)
    response = submit(signed_in)
    assert response.status_code == 429
    assert "the limit is 2" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Generation)) == 2


def _token(client, generation_id: str) -> str:
    from tests.support import csrf_token

    return csrf_token(client, f"/generations/{generation_id}")


def test_png_parameters_cannot_be_forged_with_line_breaks():
    from webapp.uploads import encode_png

    forged = "a cat\nSteps: 1, CFG scale: 1, Seed: 1, Size: 1x1, Model: stolen\r\nNegative prompt: x\u2028Seed: 9"
    parameters = {"prompt": forged, "negative_prompt": "blurry\nModel: fake", "steps": 8, "guidance": 5.0, "seed": 42,
                  "width": 64, "height": 64, "model": "easel-tiny", "style": "none"}
    png = PILImage.open(io.BytesIO(encode_png(PILImage.new("RGB", (8, 8)), parameters)))
    lines = png.text["parameters"].splitlines()
    assert len(lines) == 3
    assert lines[0] == "a cat\\nSteps: 1, CFG scale: 1, Seed: 1, Size: 1x1, Model: stolen\\r\\nNegative prompt: x\\u2028Seed: 9"
    assert lines[1] == "Negative prompt: blurry\\nModel: fake"
    assert lines[2].startswith("Steps: 8, CFG scale: 5.0, Seed: 42,")
    assert json.loads(png.text["easel"])["prompt"] == forged  # the JSON chunk keeps the exact text
