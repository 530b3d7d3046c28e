"""Scaling down: a generation worker told to stop (SIGTERM, as Kubernetes, supervisord and ``docker stop`` do)
finishes the batch it is making and leaves the queued jobs for the next worker; no job is lost or left running."""
from __future__ import annotations

import signal

from redis import Redis
from rq.queue import Queue

from tests.support import sign_in, submit_ok, wait_running, wait_status
from webapp.queues import SERIALIZER, model_queue_name

from .test_batching import BATCH, DONE, cancel


def test_a_stopped_worker_finishes_its_batch_and_leaves_the_rest_queued(app, signed_in, workers, make_user):
    client = signed_in
    app.config["MAX_ACTIVE_PER_USER"] = 10
    make_user("bob@example.com")
    bob = sign_in(app, "bob@example.com")
    blocker = submit_ok(client, model="easel-tiny-slow", steps=1000)
    proc = workers.start(extra_env={**BATCH, "EASEL_BATCH_MAX": "2"})
    wait_running(client, blocker, 1, timeout=180)
    slow = {"model": "easel-tiny-slow", "steps": 40}
    first, second = submit_ok(client, **slow), submit_ok(bob, **slow)
    waiting = submit_ok(client, **slow, seed=7)
    cancel(client, blocker)
    wait_running(client, first, 3, timeout=120)  # the batch of two runs; the third waits its turn

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(180) == 0  # it ended on its own, after the batch
    for owner, generation_id in ((client, first), (bob, second)):
        assert wait_status(owner, generation_id, DONE, timeout=5)["status"] == "succeeded"
    redis = Redis.from_url(app.config["REDIS_URL"])
    queue = Queue(model_queue_name("easel-tiny-slow"), connection=redis, serializer=SERIALIZER)
    assert wait_status(client, waiting, {"queued", "running", *DONE}, timeout=5)["status"] == "queued"
    assert queue.get_job_ids() == [waiting]
    assert queue.started_job_registry.get_job_ids() == [] and queue.failed_job_registry.get_job_ids() == []

    workers.start(extra_env=BATCH)  # the next worker takes what was left
    assert wait_status(client, waiting, DONE, timeout=180)["status"] == "succeeded"
