"""The reconciliation chores: rows whose job is over or gone end final, work in progress is left alone; the queue
weights come back to a Redis that lost them."""
from __future__ import annotations

from datetime import timedelta

from rq.job import Job, JobStatus

from jobs.chores import JOB_CANCELED, JOB_ENDED, JOB_LOST, reconcile_generations, restore_queue_weights
from tests.support import add_generation, sign_in, submit_ok
from webapp import services
from webapp.extensions import db
from webapp.queue_weights import set_queue_weight
from webapp.queues import FAIR_WEIGHTS, generation_queue
from webapp.tables import Generation, User, utcnow


def _job(app, generation_id: str, status: JobStatus | None = None, later: bool = False) -> None:
    """Enqueue the generation's job as the web does, then put it in ``status`` (or schedule it for later)."""
    with app.app_context():
        queue = generation_queue()
        if later:  # a retry waiting for its interval
            queue.enqueue_in(timedelta(seconds=60), "jobs.generate.run", generation_id, job_id=generation_id)
            return
        job = queue.enqueue("jobs.generate.run", generation_id, job_id=generation_id)
        if status == JobStatus.CANCELED:
            job.cancel()
        elif status is not None:
            job.set_status(status)


def test_rows_whose_job_is_over_or_gone_end_final(app, make_user):
    user = make_user()
    old = timedelta(minutes=5)
    failed_queued = add_generation(app, user, "queued", age=old)  # the worker could not even mark it running
    failed_running = add_generation(app, user, "running", age=old)  # nor mark itself failed
    finished_running = add_generation(app, user, "running", age=old)  # retried after the row kept "running": skipped
    stopped = add_generation(app, user, "running", age=old)
    canceled = add_generation(app, user, "queued", age=old)
    lost = add_generation(app, user, "running", age=old)  # Redis lost the job (or it expired)
    for generation_id, status in [(failed_queued, JobStatus.FAILED), (failed_running, JobStatus.FAILED),
                                  (finished_running, JobStatus.FINISHED), (stopped, JobStatus.STOPPED),
                                  (canceled, JobStatus.CANCELED)]:
        _job(app, generation_id, status)

    waiting = add_generation(app, user, "queued", age=old)
    retrying = add_generation(app, user, "queued", age=old)
    taken = add_generation(app, user, "queued", age=old)  # a worker took the job and is about to mark the row
    running = add_generation(app, user, "running", age=old)  # the heartbeat and the reaper watch this one
    just_inserted = add_generation(app, user, "queued")  # its enqueue has not happened yet
    done = add_generation(app, user, "succeeded", age=old)
    _job(app, waiting)
    _job(app, retrying, later=True)
    _job(app, taken, JobStatus.STARTED)
    _job(app, running, JobStatus.STARTED)
    _job(app, done, JobStatus.FAILED)

    with app.app_context():
        assert reconcile_generations() == {"failed": 5, "canceled": 1}
        rows = {g.id: g for g in db.session.scalars(db.select(Generation))}
    for generation_id in (failed_queued, failed_running, finished_running, stopped):
        assert (rows[generation_id].status, rows[generation_id].error) == ("failed", JOB_ENDED)
        assert rows[generation_id].finished_at is not None
    assert (rows[canceled].status, rows[canceled].error) == ("canceled", JOB_CANCELED)
    assert (rows[lost].status, rows[lost].error) == ("failed", JOB_LOST)
    assert [rows[g].status for g in (waiting, retrying, taken, running, just_inserted, done)] == [
        "queued", "queued", "queued", "running", "queued", "succeeded"]

    with app.app_context():  # a minute later the row that never got its job is settled too
        assert reconcile_generations(now=utcnow() + timedelta(minutes=2)) == {"failed": 1}
        assert db.session.get(Generation, just_inserted).error == JOB_LOST
        assert reconcile_generations(now=utcnow() + timedelta(minutes=2)) == {}


def test_reconciliation_is_scheduled(redis_url):
    from redis import Redis
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=Redis.from_url(redis_url))
    scheduler.load_config_from_file("jobs.cron")
    entries = {job.func_name: job for job in scheduler.get_jobs()}
    reconcile = entries["jobs.chores.reconcile_generations"]
    assert (reconcile.interval, reconcile.queue_name) == (30, "default")


def test_queue_weights_come_back_after_redis_loses_them(app, make_user):
    app.config["MAX_ACTIVE_PER_USER"] = 10
    make_user("ada@example.com")
    teacher, pupil, gone = make_user("teacher@example.com"), make_user("pupil@example.com"), make_user()
    with app.app_context():
        set_queue_weight(db.session.get(User, teacher), 2)
        set_queue_weight(db.session.get(User, pupil), 0.5)
        redis = services.redis()
        assert restore_queue_weights() == 0  # the copy already matches
        redis.flushall()  # Redis restarted without its data
        redis.hset(FAIR_WEIGHTS, mapping={gone: 4, "junk": 1})  # and entries the table does not have
        assert restore_queue_weights() == 4
        assert {key: float(value) for key, value in redis.hgetall(FAIR_WEIGHTS).items()} == {
            str(teacher).encode(): 2.0, str(pupil).encode(): 0.5}
        assert restore_queue_weights() == 0

    # and the queue honours them again: the teacher gets two turns per round (sessions went with the flush)
    ada, teacher_client = sign_in(app, "ada@example.com"), sign_in(app, "teacher@example.com")
    ids = {f"a{n}": submit_ok(ada, seed=n) for n in range(1, 3)}
    ids |= {f"t{n}": submit_ok(teacher_client, seed=n) for n in range(1, 5)}
    names = {gid: name for name, gid in ids.items()}
    with app.app_context():
        order = [names[gid] for gid in generation_queue("easel-tiny").get_job_ids()]
    assert order == ["a1", "t1", "t2", "a2", "t3", "t4"]


def test_a_generation_an_admin_is_retrying_is_left_alone(app, make_user):
    """The admin's retry moves the row to queued, then requeues the job: in between, the chore must not settle it."""
    from webapp.queues import being_retried, retrying

    user = make_user()
    generation_id = add_generation(app, user, "queued", age=timedelta(minutes=5))  # row already moved back
    _job(app, generation_id, JobStatus.FAILED)  # the job not yet requeued
    with app.app_context():
        with retrying(generation_id):
            assert being_retried(generation_id)
            assert reconcile_generations() == {}
            queue = generation_queue()  # the retry's second step: the job is queued again
            Job.fetch(generation_id, connection=queue.connection, serializer=queue.serializer).set_status(JobStatus.QUEUED)
        assert not being_retried(generation_id)
        assert reconcile_generations() == {}  # the job is queued again: nothing to settle
        assert db.session.get(Generation, generation_id).status == "queued"
