"""Cross-user batching (``jobs/batching.py``, ``jobs/generate.py``) with real workers, Redis and files."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from redis import Redis
from rq.job import Job
from rq.queue import Queue
from sqlalchemy import func, select

from tests.support import FIELDS, csrf_token, sign_in, submit_ok, wait_for, wait_running, wait_status
from webapp.extensions import db
from webapp.queues import SERIALIZER, model_queue_name
from webapp.tables import Generation, Image

BATCH = {"EASEL_BATCH_MAX": "4", "EASEL_BATCH_WAIT_MS": "0", "MAX_ACTIVE_PER_USER": "10"}
DONE = {"succeeded", "failed", "canceled"}


def pixels(client, image: dict) -> np.ndarray:
    response = client.get(image["url"])
    data = response.get_data()
    response.close()
    return np.asarray(PILImage.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def cancel(client, generation_id: str) -> None:
    response = client.post(f"/generations/{generation_id}/cancel",
                           data={"csrf_token": csrf_token(client, f"/generations/{generation_id}")})
    assert response.status_code == 303


def result(redis: Redis, job_id: str) -> dict:
    """The job's return value; the worker writes it just after the generation's row says succeeded."""
    return wait_for(lambda: Job.fetch(job_id, connection=redis, serializer=SERIALIZER).return_value(), timeout=30,
                    message=f"job {job_id}'s result")


def queue_behind_blocker(client, many: list[dict], workers, extra_env: dict | None = None) -> list[str]:
    """Keep a worker busy on a long generation, queue ``many`` behind it, then cancel it: they run together."""
    blocker = submit_ok(client, model="easel-tiny-slow", steps=1000)
    workers.start(extra_env={**BATCH, **(extra_env or {})})
    wait_running(client, blocker, 1, timeout=180)
    ids = [submit_ok(client, **fields) for fields in many]
    cancel(client, blocker)
    return ids


def test_batched_images_equal_solo_ones_and_registries_stay_truthful(app, signed_in, workers):
    client = signed_in
    app.config["MAX_ACTIVE_PER_USER"] = 10
    many = [{"prompt": "a red circle", "seed": 3, "num_images": 2},
            {"prompt": "a green square", "negative_prompt": "blurry", "seed": 11},
            {"prompt": "a blue sky", "seed": 5, "style": "pixel-art"}]
    batched = queue_behind_blocker(client, many, workers)
    finals = [wait_status(client, gid, DONE, timeout=120) for gid in batched]
    assert [f["status"] for f in finals] == ["succeeded"] * 3, finals
    redis = Redis.from_url(app.config["REDIS_URL"])
    assert [result(redis, gid)["batch"] for gid in batched] == [3, 3, 3]  # one pipeline call for the three

    queue = Queue(model_queue_name("easel-tiny"), connection=redis, serializer=SERIALIZER)
    assert set(batched) <= set(queue.finished_job_registry.get_job_ids())
    assert queue.started_job_registry.get_job_ids() == []
    assert redis.llen(queue.intermediate_queue_key) == 0
    assert all(Job.fetch(gid, connection=redis, serializer=SERIALIZER).get_status() == "finished" for gid in batched)

    for fields, final in zip(many, finals, strict=True):  # the same requests alone: an idle queue, no company
        solo = wait_status(client, submit_ok(client, **fields), DONE, timeout=120)
        assert solo["status"] == "succeeded"
        assert len(solo["images"]) == len(final["images"]) == fields.get("num_images", 1)
        for alone, together in zip(solo["images"], final["images"], strict=True):
            difference = np.abs(pixels(client, alone) - pixels(client, together))
            assert difference.max() <= 8 and difference.mean() < 0.5, (difference.max(), difference.mean())


def submit_start(client, color: tuple[int, int, int], **fields) -> str:
    """Submit an image-to-image generation from a plain picture of ``color``."""
    buffer = io.BytesIO()
    PILImage.new("RGB", (64, 64), color).save(buffer, "PNG")
    data = {**FIELDS, **{k: str(v) for k, v in fields.items()}, "csrf_token": csrf_token(client, "/"),
            "init_image": (io.BytesIO(buffer.getvalue()), "start.png")}
    response = client.post("/generations", data=data, content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return response.headers["Location"].rsplit("/", 1)[1]


def test_image_to_image_and_timelapses_batch_too(app, signed_in, workers):
    client = signed_in
    app.config["MAX_ACTIVE_PER_USER"] = 10
    requests = [lambda: submit_start(client, (255, 255, 0), seed=1, strength=0.5),
                lambda: submit_start(client, (0, 128, 255), seed=2, strength=0.5, prompt="a green field"),
                lambda: submit_ok(client, seed=4, timelapse="y"),
                lambda: submit_ok(client, seed=5, timelapse="y", prompt="a yellow sun")]
    blocker = submit_ok(client, model="easel-tiny-slow", steps=1000)
    workers.start(extra_env=BATCH)
    wait_running(client, blocker, 1, timeout=180)
    batched = [make() for make in requests]
    cancel(client, blocker)
    finals = [wait_status(client, gid, DONE, timeout=120) for gid in batched]
    assert [f["status"] for f in finals] == ["succeeded"] * 4, finals
    redis = Redis.from_url(app.config["REDIS_URL"])
    assert [result(redis, gid)["batch"] for gid in batched] == [2, 2, 2, 2]  # two calls: the keys differ
    for make, final in zip(requests, finals, strict=True):
        solo = wait_status(client, make(), DONE, timeout=120)
        assert solo["status"] == "succeeded"
        difference = np.abs(pixels(client, solo["images"][0]) - pixels(client, final["images"][0]))
        assert difference.max() <= 8 and difference.mean() < 0.5, (difference.max(), difference.mean())
    for final in finals[2:]:
        response = client.get(f"/images/{final['images'][0]['id']}/timelapse")
        assert response.status_code == 200 and response.headers["Content-Type"] == "image/webp"
        response.close()


def test_cancel_and_storage_failure_stay_with_their_generation(app, signed_in, workers, make_user):
    client = signed_in
    app.config["MAX_ACTIVE_PER_USER"] = 10
    make_user("bob@example.com")
    bob = sign_in(app, "bob@example.com")
    blocker = submit_ok(client, model="easel-tiny-slow", steps=1000)
    workers.start(extra_env=BATCH)
    wait_running(client, blocker, 1, timeout=180)
    slow = {"model": "easel-tiny-slow", "steps": 150}
    kept, dropped = submit_ok(client, **slow), submit_ok(client, **slow, seed=9)
    broken = submit_ok(bob, **slow)
    media = Path(app.config["MEDIA_DIR"])
    with app.app_context():
        bob_id = db.session.get(Generation, broken).user_id
    (media / "users" / str(bob_id)).mkdir(parents=True)
    (media / "users" / str(bob_id) / broken).write_text("a file where the folder should be")
    cancel(client, blocker)
    wait_running(client, dropped, 3, timeout=120)
    cancel(client, dropped)
    finals = {gid: wait_status(client if gid != broken else bob, gid, DONE, timeout=180)
              for gid in (kept, dropped, broken)}
    assert finals[kept]["status"] == "succeeded" and len(finals[kept]["images"]) == 1
    assert finals[dropped]["status"] == "canceled"
    assert finals[broken]["status"] == "failed" and finals[broken]["error"]
    redis = Redis.from_url(app.config["REDIS_URL"])
    assert result(redis, kept)["batch"] == 3
    with app.app_context():
        for gid, count in ((kept, 1), (dropped, 0), (broken, 0)):
            assert db.session.scalar(select(func.count()).select_from(Image).where(Image.generation_id == gid)) == count
    assert not [path for path in media.rglob("*") if dropped in str(path)]  # its files were never written
    queue = Queue(model_queue_name("easel-tiny-slow"), connection=redis, serializer=SERIALIZER)
    # RQ files the job as failed just after the worker wrote the row's status
    wait_for(lambda: broken in queue.failed_job_registry.get_job_ids(), timeout=30,
             message="RQ's failed registry to list the broken generation")
    assert queue.started_job_registry.get_job_ids() == []


def test_two_workers_never_run_one_job_twice(app, signed_in, workers, make_user):
    client = signed_in
    app.config.update(MAX_ACTIVE_PER_USER=20, MAX_QUEUED_PER_USER=20)
    ids = [submit_ok(client, prompt=f"picture {n}", seed=n) for n in range(12)]
    first = workers.start(extra_env=BATCH)
    second = workers.start(extra_env=BATCH)
    finals = [wait_status(client, gid, DONE, timeout=240) for gid in ids]
    assert [f["status"] for f in finals] == ["succeeded"] * len(ids)
    redis = Redis.from_url(app.config["REDIS_URL"])
    results = [result(redis, gid) for gid in ids]
    assert all("images" in r for r in results), results  # none was "skipped" by a second run
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Image).where(Image.generation_id.in_(ids))) == 12
    finished = [line for proc in (first, second) for line in proc.log_path.read_text().splitlines() if " done: " in line]
    assert sorted(gid for line in finished for gid in ids if f"generation {gid} done" in line) == sorted(ids), finished


def test_a_late_person_waits_about_two_batches_not_behind_twenty(app, signed_in, workers, make_user):
    app.config.update(MAX_ACTIVE_PER_USER=25, MAX_QUEUED_PER_USER=25)
    make_user("bob@example.com")
    bob = sign_in(app, "bob@example.com")
    workers.start(extra_env=BATCH)
    slow = {"model": "easel-tiny-slow", "steps": 30}
    ada_ids = [submit_ok(signed_in, **slow, seed=n) for n in range(20)]
    bob_id = submit_ok(bob, **slow)
    assert bob.get(f"/api/generations/{bob_id}").get_json()["queue_position"] <= 2
    assert wait_status(bob, bob_id, DONE, timeout=240)["status"] == "succeeded"
    with app.app_context():
        bob_done = db.session.get(Generation, bob_id).finished_at
        before = db.session.scalar(select(func.count()).select_from(Generation).where(
            Generation.id.in_(ada_ids), Generation.status == "succeeded", Generation.finished_at < bob_done))
    assert before <= 8  # at most the batch running when he asked and one more, not twenty


def test_a_batch_shares_one_preview_budget(app):
    """Four generations in one call spend on previews what one generation may, not four times as much."""
    from types import SimpleNamespace

    import pytest

    from jobs.generate import PREVIEW_BUDGET, BatchReporter, ProgressReporter

    with app.app_context():
        alone = ProgressReporter("alone", 20, previewer=None)
        members = [SimpleNamespace(reporter=ProgressReporter(f"member-{n}", 20, previewer=None)) for n in range(4)]
        BatchReporter(members)
    assert alone.budget == PREVIEW_BUDGET
    assert sum(member.reporter.budget for member in members) == pytest.approx(PREVIEW_BUDGET)


def test_different_samplers_never_share_a_call(app):
    """The sampler is switched for a whole pipeline call, so it is in the batch key; no choice is its own."""
    from jobs.batching import batch_key

    def row(scheduler: str | None) -> Generation:
        return Generation(prompt="a red circle", negative_prompt="", model="easel-tiny", width=64, height=64, steps=4,
                          guidance=2.0, seed=1, num_images=1, source="text", scheduler=scheduler)

    with app.app_context():
        keys = [batch_key(row(name)) for name in (None, "Euler", "Euler a", "Euler")]
    assert keys[1] == keys[3] and len({keys[0], keys[1], keys[2]}) == 3


def test_waiting_for_company_only_after_a_call_that_had_some(app, signed_in):
    """``claim_companions`` waits up to EASEL_BATCH_WAIT_MS for a compatible arrival only when asked to."""
    import threading
    import time

    from jobs.batching import claim_companions

    app.config.update(EASEL_BATCH_MAX=4, EASEL_BATCH_WAIT_MS=3000, MAX_ACTIVE_PER_USER=10)
    redis = Redis.from_url(app.config["REDIS_URL"])
    queue = Queue(model_queue_name("easel-tiny"), connection=redis, serializer=SERIALIZER)
    lead_id = submit_ok(signed_in, prompt="the lead")
    queue.remove(lead_id)  # a worker's dequeue took it
    lead = Job.fetch(lead_id, connection=redis, serializer=SERIALIZER)
    with app.app_context():
        began = time.monotonic()
        assert claim_companions(lead, queue, wait=False) == []
        assert time.monotonic() - began < 1
        arrived: list[str] = []
        later = threading.Timer(0.5, lambda: arrived.append(submit_ok(signed_in, prompt="company")))
        later.start()
        began = time.monotonic()
        claimed = claim_companions(lead, queue, wait=True)
        later.join()
    assert [job.id for job in claimed] == arrived and 2.9 < time.monotonic() - began < 5  # then room for more


def test_one_call_runs_at_most_max_active_per_user_of_a_persons_generations(app, signed_in, make_user):
    """Past MAX_ACTIVE_PER_USER a person's compatible generations stay queued; someone else's join the call."""
    from jobs.batching import claim_companions

    app.config.update(EASEL_BATCH_MAX=8, MAX_ACTIVE_PER_USER=2, MAX_QUEUED_PER_USER=10)
    make_user("bob@example.com")
    bob = sign_in(app, "bob@example.com")
    redis = Redis.from_url(app.config["REDIS_URL"])
    queue = Queue(model_queue_name("easel-tiny"), connection=redis, serializer=SERIALIZER)
    lead_id = submit_ok(signed_in, prompt="the lead")
    ada_more = [submit_ok(signed_in, prompt=f"ada {n}", seed=n) for n in range(3)]
    bob_ids = [submit_ok(bob, prompt=f"bob {n}", seed=n) for n in range(3)]
    queue.remove(lead_id)  # a worker's dequeue took it
    lead = Job.fetch(lead_id, connection=redis, serializer=SERIALIZER)
    with app.app_context():
        claimed = {job.id for job in claim_companions(lead, queue, wait=False)}
    assert len(claimed & set(ada_more)) == 1  # the lead and one more of Ada's
    assert len(claimed & set(bob_ids)) == 2  # and two of Bob's
    assert set(queue.get_job_ids()) == (set(ada_more) | set(bob_ids)) - claimed  # the rest still wait


def test_a_lone_persons_images_do_not_wait_for_company(app, signed_in, workers):
    """However long EASEL_BATCH_WAIT_MS is, a worker whose last call was alone runs the next one at once."""
    import time

    workers.start(extra_env={"EASEL_BATCH_MAX": "4", "EASEL_BATCH_WAIT_MS": "10000"})
    for n in range(3):
        began = time.monotonic()
        assert wait_status(signed_in, submit_ok(signed_in, seed=n), DONE, timeout=120)["status"] == "succeeded"
        if n:  # the first also waits for the worker to load the model
            assert time.monotonic() - began < 8
