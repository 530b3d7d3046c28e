"""A transient error (the database blipping while images are stored) retries the generation through RQ,
at the front of its queue, in a real worker: alone and inside a batch."""
from __future__ import annotations

from redis import Redis
from rq.job import Job
from rq.queue import Queue
from sqlalchemy import select

from tests.support import csrf_token, sign_in, state, submit_ok, wait_for, wait_running, wait_status
from webapp.extensions import db
from webapp.queues import SERIALIZER, model_queue_name
from webapp.tables import Generation

DONE = {"succeeded", "failed", "canceled"}
SLOW = {"model": "easel-tiny-slow"}


def flaky_worker(workers, tmp_path, **env: str):
    return workers.start(module="tests.support.flaky_worker", extra_env={"TEST_FLAKY_DIR": str(tmp_path), **env})


def job(app, generation_id: str) -> Job:
    return Job.fetch(generation_id, connection=Redis.from_url(app.config["REDIS_URL"]), serializer=SERIALIZER)


def returned(app, generation_id: str) -> dict:
    """The job's return value; the worker writes it just after the generation's row says succeeded."""
    return wait_for(lambda: job(app, generation_id).return_value(), timeout=30, message=f"{generation_id}'s result")


def assert_retried_once(app, generation_id: str) -> None:
    """The job finished after one retry, and no RQ registry still holds it anywhere else."""
    retried = job(app, generation_id)
    assert retried.get_status() == "finished" and retried.number_of_retries == 1
    queue = Queue(model_queue_name(SLOW["model"]), connection=retried.connection, serializer=SERIALIZER)
    assert generation_id in queue.finished_job_registry.get_job_ids()
    for registry in (queue.scheduled_job_registry, queue.started_job_registry, queue.failed_job_registry):
        assert generation_id not in registry.get_job_ids()


def test_a_retried_generation_resumes_its_turn_at_the_front(app, signed_in, workers, make_user, tmp_path):
    app.config["MAX_ACTIVE_PER_USER"] = 10
    make_user("bob@example.com")
    bob = sign_in(app, "bob@example.com")
    flaky = submit_ok(signed_in, prompt="a flaky lighthouse", steps=20, **SLOW)
    others = [submit_ok(bob, prompt=f"picture {n}", steps=60, seed=n, **SLOW) for n in range(8)]
    flaky_worker(workers, tmp_path, EASEL_BATCH_MAX="1")
    # While the retry waits its 5 s, the progress page says why the picture went back to the queue.
    wait_for(lambda: (state(signed_in, flaky)["notice"] or "").startswith("A service the worker needs"),
             timeout=90, interval=0.2, message="the retry's notice")
    assert state(signed_in, flaky)["status"] == "queued"

    final = wait_status(signed_in, flaky, DONE, timeout=180)
    assert final["status"] == "succeeded" and len(final["images"]) == 1, final
    assert (tmp_path / flaky).exists()  # it did fail once
    for gid in others:
        assert wait_status(bob, gid, DONE, timeout=180)["status"] == "succeeded"
    with app.app_context():
        started = {row.id: row.started_at for row in db.session.scalars(select(Generation))}
    # Retried 5 s later, it went to the front: Bob's images still queued then ran after it, not before.
    assert sum(started[gid] > started[flaky] for gid in others) >= 2, sorted(started.values())
    assert_retried_once(app, flaky)


def test_one_transient_error_in_a_batch_retries_that_generation_alone(app, signed_in, workers, make_user, tmp_path):
    app.config["MAX_ACTIVE_PER_USER"] = 10
    make_user("bob@example.com")
    bob = sign_in(app, "bob@example.com")
    blocker = submit_ok(signed_in, steps=1000, **SLOW)
    flaky_worker(workers, tmp_path, EASEL_BATCH_MAX="4", EASEL_BATCH_WAIT_MS="0", MAX_ACTIVE_PER_USER="10")
    wait_running(signed_in, blocker, 1, timeout=180)
    flaky = submit_ok(signed_in, prompt="a flaky lighthouse", steps=20, **SLOW)
    others = [submit_ok(bob, prompt=f"picture {n}", steps=20, seed=n, **SLOW) for n in range(2)]
    response = signed_in.post(f"/generations/{blocker}/cancel",
                              data={"csrf_token": csrf_token(signed_in, f"/generations/{blocker}")})
    assert response.status_code == 303  # the three queued behind it start together

    for gid in others:
        assert wait_status(bob, gid, DONE, timeout=120)["status"] == "succeeded"
        assert returned(app, gid)["batch"] == 3  # the three shared one call
    final = wait_status(signed_in, flaky, DONE, timeout=120)
    assert final["status"] == "succeeded" and len(final["images"]) == 1, final
    assert (tmp_path / flaky).exists()
    assert returned(app, flaky)["batch"] == 1  # the retry ran alone, later (a batch of one)
    assert_retried_once(app, flaky)
