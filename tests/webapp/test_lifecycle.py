"""The owner of a generation's life (``webapp/lifecycle.py``): each verb's status move and what belongs to it
(the email, the live progress, the job and its fair place), on a real database and a real Redis."""
from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from rq.job import Job, JobStatus

from tests.support import add_generation
from webapp import lifecycle, progress, services
from webapp.extensions import db
from webapp.queues import chore_queue, generation_queue
from webapp.tables import TRANSITIONS, Generation, GenerationStatus, Image, new_id

PAIRS = list(itertools.product(GenerationStatus, GenerationStatus))


def emails(app) -> list[str]:
    """The generations whose result or failure email is queued on the chore queue."""
    with app.app_context():
        return [job.args[0] for job in chore_queue().get_jobs() if job.func_name == "jobs.mail.send_generation_email"]


def row(app, generation_id: str) -> Generation:
    with app.app_context():
        found = db.session.get(Generation, generation_id)
        db.session.expunge(found)
        return found


def live(app, generation_id: str) -> dict:
    """What Redis holds of the generation's live progress: the cancel flag and the preview."""
    with app.app_context():
        redis = services.redis()
        return {"cancel": bool(redis.exists(progress.cancel_key(generation_id))),
                "preview": bool(redis.exists(progress.preview_key(generation_id)))}


def with_progress(app, generation_id: str) -> None:
    with app.app_context():
        redis = services.redis()
        progress.start(redis, generation_id, 4)
        progress.record_step(redis, generation_id, 2, b"RIFF a preview")


def test_the_table_is_the_documented_one() -> None:
    moves = {(a.value, b.value) for a, targets in TRANSITIONS.items() for b in targets}
    assert moves == {("queued", "running"), ("queued", "canceled"), ("queued", "failed"),
                     ("running", "succeeded"), ("running", "failed"), ("running", "canceled"), ("running", "queued"),
                     ("failed", "queued")}
    assert all(not TRANSITIONS[s] for s in (GenerationStatus.SUCCEEDED, GenerationStatus.CANCELED))


@pytest.mark.db
def test_every_move_follows_the_table(app, make_user) -> None:
    user = make_user()
    for source, target in PAIRS:
        generation_id = add_generation(app, user, status=source)
        with app.app_context():
            moved = lifecycle._move(generation_id, target, error="why")
            status = db.session.get(Generation, generation_id).status
        allowed = target in TRANSITIONS[source]
        assert moved is allowed, (source, target)
        assert status == (target if allowed else source), (source, target)
    generation_id = add_generation(app, user, status=GenerationStatus.RUNNING)
    with app.app_context(), pytest.raises(ValueError, match="succeeded → canceled"):
        lifecycle._move(generation_id, GenerationStatus.CANCELED, (GenerationStatus.SUCCEEDED,))


@pytest.mark.db
def test_start_then_succeed_commits_the_images_with_the_status_clears_progress_and_emails(app, make_user) -> None:
    user = make_user()
    generation_id = add_generation(app, user)
    with app.app_context():
        assert lifecycle.start(generation_id)
        assert not lifecycle.start(generation_id)  # a second worker finds it taken
    assert row(app, generation_id).started_at is not None
    with_progress(app, generation_id)
    assert live(app, generation_id)["preview"]
    with app.app_context():
        image = Image(id=new_id(), generation_id=generation_id, user_id=user, index=0, storage_key="k.png",
                      thumbnail_key="k.webp", width=64, height=64)
        assert lifecycle.succeed(generation_id, [image], model_prompt="a blue square, pixel art")
    done = row(app, generation_id)
    assert (done.status, done.error, done.model_prompt) == ("succeeded", None, "a blue square, pixel art")
    assert done.finished_at is not None
    assert live(app, generation_id) == {"cancel": False, "preview": False}
    assert emails(app) == [generation_id]


@pytest.mark.db
def test_succeed_after_a_cancel_commits_nothing(app, make_user) -> None:
    user = make_user()
    generation_id = add_generation(app, user, "canceled")
    with app.app_context():
        image = Image(id=new_id(), generation_id=generation_id, user_id=user, index=0, storage_key="k.png",
                      thumbnail_key="k.webp", width=64, height=64)
        assert not lifecycle.succeed(generation_id, [image])
        assert db.session.scalars(db.select(Image)).all() == []
    assert row(app, generation_id).status == "canceled" and emails(app) == []


@pytest.mark.db
def test_fail_says_why_once_and_emails_once(app, make_user) -> None:
    user = make_user()
    running, refused = add_generation(app, user, "running"), add_generation(app, user)
    with_progress(app, running)
    with app.app_context():
        assert lifecycle.fail(running, "The model is not available.")
        assert not lifecycle.fail(running, "again")  # final: no second move, no second email
        assert lifecycle.fail(refused, "The image queue is down.", notify=False)  # the person was told at once
    assert (row(app, running).status, row(app, running).error) == ("failed", "The model is not available.")
    assert live(app, running)["preview"] is False
    assert emails(app) == [running]


@pytest.mark.db
def test_requeue_goes_back_to_queued_without_its_start(app, make_user) -> None:
    generation_id = add_generation(app, make_user(), "running")
    with_progress(app, generation_id)
    with app.app_context():
        assert lifecycle.requeue(generation_id)
        assert not lifecycle.requeue(generation_id)
    again = row(app, generation_id)
    assert (again.status, again.started_at) == ("queued", None)
    assert not live(app, generation_id)["preview"] and emails(app) == []


@pytest.mark.db
def test_cancel_drops_a_queued_job_and_asks_a_running_one_to_stop(app, make_user) -> None:
    user = make_user()
    queued, running = add_generation(app, user), add_generation(app, user, "running")
    with app.app_context():
        job = lifecycle.enqueue(db.session.get(Generation, queued), job_timeout=60)
        assert lifecycle.cancel(queued)
        assert job.get_status(refresh=True) == JobStatus.CANCELED
        assert not lifecycle.cancel(running)  # the worker stops it within a step
    assert row(app, queued).status == "canceled" and row(app, running).status == "running"
    assert live(app, running)["cancel"]
    with app.app_context():
        assert lifecycle.stopped(running)
    assert row(app, running).status == "canceled" and not live(app, running)["cancel"]
    assert emails(app) == []


@pytest.mark.db
def test_retry_puts_a_failed_generation_back_or_leaves_it_failed(app, make_user) -> None:
    user = make_user()
    generation_id = add_generation(app, user, "failed")
    with app.app_context():
        db.session.get(Generation, generation_id).error = "The worker stopped."
        db.session.commit()
        generation = db.session.get(Generation, generation_id)

        def broken():
            raise ConnectionError("Redis went away")

        with pytest.raises(ConnectionError):
            lifecycle.retry(generation, broken)
    assert (row(app, generation_id).status, row(app, generation_id).error) == ("failed", "The worker stopped.")
    with app.app_context():
        generation = db.session.get(Generation, generation_id)
        job = lifecycle.retry(generation, lambda: lifecycle.enqueue(generation, job_timeout=60))
        assert job.id == generation_id
        assert lifecycle.retry(db.session.get(Generation, generation_id), broken) is None  # not failed: nothing
    assert (row(app, generation_id).status, row(app, generation_id).error) == ("queued", None)


@pytest.mark.db
def test_resubmit_enqueues_a_lost_job_again_at_its_fair_place(app, make_user) -> None:
    ada, bob = make_user("ada@example.com"), make_user("bob@example.com")
    old = timedelta(minutes=5)
    ada_ids = [add_generation(app, ada, age=old) for _ in range(3)]
    lost = add_generation(app, bob, "running", age=old)  # Bob's job vanished with Redis
    with app.app_context():
        for generation_id in ada_ids:
            lifecycle.enqueue(db.session.get(Generation, generation_id), job_timeout=60)
        assert lifecycle.resubmit(db.session.get(Generation, lost)) == "resubmitted"
        queue = generation_queue("easel-tiny")
        order = queue.get_job_ids()
        job = Job.fetch(lost, connection=queue.connection, serializer=queue.serializer)
        assert (job.func_name, list(job.args)) == ("jobs.generate.run", [lost])
    assert order.index(lost) == 1, order  # after Ada's first, not behind all three
    again = row(app, lost)
    assert (again.status, again.seed, again.prompt) == ("queued", 7, "a blue square")

    gone = add_generation(app, bob, age=old)
    with app.app_context():
        db.session.get(Generation, gone).model = "retired-model"
        db.session.commit()
        assert lifecycle.resubmit(db.session.get(Generation, gone)) == "failed"
    failed = row(app, gone)
    assert failed.status == "failed" and "lost this generation" in failed.error and "retired-model" in failed.error
    assert emails(app) == [gone]
