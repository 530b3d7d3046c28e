"""Image-to-image through the real worker: the warm pipeline's twin, strength measured in pixels."""
from __future__ import annotations

import importlib
import io
import json

import numpy as np
from PIL import Image as PILImage

from tests.jobs.test_generate import fetch
from tests.support import FIELDS, csrf_token, wait_status, worker_report
from tests.support.tiny_pipelines import catalog_entry, save_tiny, save_tiny_lora


def submit_start(client, picture: PILImage.Image, **fields) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    data = {**FIELDS, **{k: str(v) for k, v in fields.items()}, "csrf_token": csrf_token(client, "/"),
            "init_image": (io.BytesIO(buffer.getvalue()), "start.png")}
    response = client.post("/generations", data=data, content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return response.headers["Location"].rsplit("/", 1)[1]


def result_png(client, state: dict) -> PILImage.Image:
    response = fetch(client, state["images"][0]["url"])
    assert response.status_code == 200
    return PILImage.open(io.BytesIO(response.data))


def distance(a: PILImage.Image, b: PILImage.Image) -> float:
    """Mean absolute difference per channel, 0..255."""
    return float(np.abs(np.asarray(a.convert("RGB"), np.float32) - np.asarray(b.convert("RGB"), np.float32)).mean())


def test_strength_keeps_or_replaces_the_start_without_a_second_load(app, signed_in, workers):
    """The start is a picture of the bundled model's own world (it knows nothing else); the prompt differs."""
    app.config["MAX_ACTIVE_PER_USER"] = 4
    token = csrf_token(signed_in, "/")
    made = signed_in.post("/generations", data={**FIELDS, "prompt": "a large yellow square in the center, green background",
                                                "seed": "1", "steps": "20", "csrf_token": token})
    text_id = made.headers["Location"].rsplit("/", 1)[1]
    proc = workers.start()
    source = wait_status(signed_in, text_id, {"succeeded", "failed"}, timeout=240)
    assert source["status"] == "succeeded", source
    start = result_png(signed_in, source).convert("RGB")
    gentle = signed_in.post("/generations", data={**FIELDS, "steps": "20", "strength": "0.2", "csrf_token": token,
                                                  "init_image_id": source["images"][0]["id"]})
    assert gentle.status_code == 303, gentle.get_data(as_text=True)[:2000]
    gentle = gentle.headers["Location"].rsplit("/", 1)[1]
    full = submit_start(signed_in, start, steps=20, strength=1.0)
    states = {gid: wait_status(signed_in, gid, {"succeeded", "failed"}, timeout=240) for gid in (gentle, full)}
    assert all(s["status"] == "succeeded" for s in states.values()), states
    assert (states[gentle]["step"], states[gentle]["total_steps"]) == (4, 4)  # int(20 * 0.2) steps really run
    assert states[full]["total_steps"] == 20

    near, far = result_png(signed_in, states[gentle]), result_png(signed_in, states[full])
    near_distance, far_distance = distance(near, start), distance(far, start)
    assert near_distance < 25, near_distance
    assert far_distance > 3 * near_distance and far_distance > 60, (near_distance, far_distance)
    red, green, blue = np.asarray(far.convert("RGB"), np.float32).reshape(-1, 3).mean(axis=0)
    assert blue > 1.5 * max(red, green), (red, green, blue)  # the prompt's blue background, not the green start

    params = json.loads(near.text["easel"])
    assert (params["source"], params["strength"], params["resize_mode"]) == ("image", 0.2, "crop")
    assert params["lineage"] == [{"image_id": source["images"][0]["id"], "source": "image"}]
    assert "Denoising strength: 0.2" in near.text["parameters"]
    assert json.loads(far.text["easel"])["source"] == "upload"
    assert worker_report(app.config["REDIS_URL"], proc, generations=3)["loads"] == 1  # image-to-image reuses the weights


def test_cancel_and_a_deleted_start_on_image_to_image(app, signed_in, workers):
    """Cancel stops image-to-image within a step; the next one is not left interrupted; a vanished start fails."""
    from pathlib import Path

    from tests.support import wait_running
    from webapp.extensions import db
    from webapp.tables import Generation, Upload

    app.config["MAX_ACTIVE_PER_USER"] = 4
    start = PILImage.new("RGB", (64, 64), (255, 255, 0))
    long_one = submit_start(signed_in, start, model="easel-tiny-slow", steps=1000, strength=0.9, timelapse="y")
    vanished = submit_start(signed_in, start, steps=10, strength=0.5)  # queued behind it; its file goes now
    with app.app_context():
        upload = db.session.get(Upload, db.session.get(Generation, vanished).upload_id)
        (Path(app.config["MEDIA_DIR"]) / upload.storage_key).unlink()
    workers.start()
    running = wait_running(signed_in, long_one, 3)
    assert running["total_steps"] == 900
    signed_in.post(f"/generations/{long_one}/cancel", data={"csrf_token": csrf_token(signed_in, f"/generations/{long_one}")})
    final = wait_status(signed_in, long_one, {"canceled", "succeeded", "failed"}, timeout=60)
    assert final["status"] == "canceled" and final["images"] == []
    after = submit_start(signed_in, start, steps=10, strength=0.5)
    assert wait_status(signed_in, after, {"succeeded", "failed", "canceled"})["status"] == "succeeded"
    failed = wait_status(signed_in, vanished, {"succeeded", "failed"})
    assert failed["status"] == "failed" and "starting image is no longer there" in failed["error"]


def test_the_image_to_image_twin_runs_with_the_scheduler_a_lora_sets(app, tmp_path):
    """An LCM-LoRA swaps the warm pipeline's scheduler; the twin made before must follow (variations keep LoRAs)."""
    from jobs.pipelines import STATE, apply_to
    from models import loader

    folder = save_tiny("sd", tmp_path / "sd")
    save_tiny_lora(folder, tmp_path / "fast.safetensors")
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(catalog_entry("tiny-sd", "sd", folder) + '\n[loras.fast]\npath = "fast.safetensors"\n'
                       'base_kinds = ["sd"]\nscheduler = "LCMScheduler"\n', encoding="utf-8")
    app.config.update(EASEL_CATALOG=str(catalog), EASEL_DEVICE="cpu")
    with app.app_context():
        warm = STATE.warm("tiny-sd")
        base = type(warm.img2img().scheduler)
        apply_to(warm, [["fast", None]])
        assert type(warm.img2img().scheduler).__name__ == "LCMScheduler"
        apply_to(warm, [])
        assert type(warm.img2img().scheduler) is base
    importlib.reload(loader)  # the next test's worker state starts without this catalog's pipeline
