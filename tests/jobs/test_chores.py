"""The reconciliation chores: the row is the truth. Rows whose job Redis lost are queued again, running rows whose
job is over end final, work in progress is left alone; the queue weights come back to a Redis that lost them."""
from __future__ import annotations

from datetime import timedelta

from rq.job import JobStatus

from jobs.chores import JOB_ENDED, reconcile_generations, restore_queue_weights
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


def test_rows_whose_job_is_over_end_final_and_lost_ones_are_queued_again(app, make_user):
    user = make_user()
    old = timedelta(minutes=5)
    retry_lost = add_generation(app, user, "queued", age=old)  # settled for a retry that Redis never recorded
    failed_running = add_generation(app, user, "running", age=old)  # the worker could not mark itself failed
    finished_running = add_generation(app, user, "running", age=old)  # retried after the row kept "running"
    stopped = add_generation(app, user, "running", age=old)
    canceled = add_generation(app, user, "queued", age=old)
    lost = add_generation(app, user, "running", age=old)  # Redis lost the job, and no worker is at it
    listless = add_generation(app, user, "queued", age=old)  # its job says queued, but is in no queue
    for generation_id, status in [(retry_lost, JobStatus.FAILED), (failed_running, JobStatus.FAILED),
                                  (finished_running, JobStatus.FINISHED), (stopped, JobStatus.STOPPED),
                                  (canceled, JobStatus.CANCELED), (listless, None)]:
        _job(app, generation_id, status)
    with app.app_context():
        generation_queue().connection.lrem(generation_queue().key, 0, listless)

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
        assert reconcile_generations() == {"failed": 3, "canceled": 1, "resubmitted": 3}
        rows = {g.id: g for g in db.session.scalars(db.select(Generation))}
        queued_again = set(generation_queue("easel-tiny").get_job_ids())
    for generation_id in (failed_running, finished_running, stopped):
        assert (rows[generation_id].status, rows[generation_id].error) == ("failed", JOB_ENDED)
        assert rows[generation_id].finished_at is not None
    assert rows[canceled].status == "canceled"
    for generation_id in (retry_lost, lost, listless):  # the same row, seed and settings, its job queued again
        assert (rows[generation_id].status, rows[generation_id].error, rows[generation_id].seed) == ("queued", None, 7)
    assert queued_again == {retry_lost, lost, listless}
    assert [rows[g].status for g in (waiting, retrying, taken, running, just_inserted, done)] == [
        "queued", "queued", "queued", "running", "queued", "succeeded"]

    with app.app_context():  # a minute later the row that never got its job is queued too, and only once
        assert reconcile_generations(now=utcnow() + timedelta(minutes=2)) == {"resubmitted": 1}
        assert reconcile_generations(now=utcnow() + timedelta(minutes=2)) == {}
        assert set(generation_queue("easel-tiny").get_job_ids()) == queued_again | {just_inserted}


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
            queue.enqueue("jobs.generate.run", generation_id, job_id=generation_id)
        assert not being_retried(generation_id)
        assert reconcile_generations() == {}  # the job is queued again: nothing to settle
        assert db.session.get(Generation, generation_id).status == "queued"
