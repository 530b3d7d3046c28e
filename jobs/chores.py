"""Chores run on the ``default`` queue: small, idempotent, safe to repeat."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import StartedJobRegistry
from sqlalchemy import select

from webapp import lifecycle, progress, services
from webapp.cleanup import delete_expired_images
from webapp.extensions import db
from webapp.queue_weights import restore_queue_weights as restore_weights
from webapp.queues import being_retried, generation_queue, generation_queues
from webapp.tables import ACTIVE_STATUSES, Generation, GenerationStatus, utcnow

from .app_context import with_app

log = logging.getLogger(__name__)

# A row is committed before its job is enqueued: a row this young without a job may still get one.
ENQUEUE_GRACE = timedelta(seconds=60)
JOB_ENDED = "This generation stopped because part of the site failed while it ran. Please try again."
# What a running row becomes when its job is over but the row is not final (its own writes failed, e.g. the
# database was down). Jobs still waiting (queued, scheduled for a retry, deferred) or running are left alone.
SETTLE = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED}
# RQ's words for a job whose worker died under it (the worker's own handler says the same, if it gets there first).
WORKER_DIED = ("AbandonedJobError", "Work-horse terminated unexpectedly")


def _ended_message(job: Job) -> str:
    """Why a running row's job ended without it: the worker stopped under it, or another part of the site failed."""
    from .generate import WORKER_STOPPED  # the one wording, which the worker's failure handler also writes

    result = job.latest_result()
    text = (result.exc_string or "") if result is not None else ""
    return WORKER_STOPPED if any(words in text for words in WORKER_DIED) else JOB_ENDED
WAITING = {JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED}  # the scheduler and the reaper watch these


@with_app
def reap_abandoned_generations() -> None:
    """Settle jobs whose worker died mid-way.

    RQ's cleanup of the started registry retries them or moves them to failed, calling the
    job's failure callback, which marks the generation row.
    """
    for queue in generation_queues():
        StartedJobRegistry(queue=queue).cleanup()


def _waits_in_its_queue(job: Job) -> bool:
    """Whether a job that says it is queued is really in its queue's list (or taken into the intermediate one)."""
    queue = Queue(job.origin, connection=job.connection, serializer=job.serializer)
    return any(job.connection.lpos(key, job.id) is not None for key in (queue.key, queue.intermediate_queue_key))


def _lost(row, job: Job | None, job_status: JobStatus | None) -> bool:
    """Whether Redis lost the job of an active row: no job, a job queued nowhere, or (for a row waiting for its
    retry) a job already over; a running row with live progress is still being worked on."""
    if job is None or (job_status == JobStatus.QUEUED and not _waits_in_its_queue(job)):
        if row.status == GenerationStatus.RUNNING:
            try:
                updated = progress.read(services.redis(), row.id).get("updated", 0)
            except RedisError:
                return False
            return time.time() - updated > current_app.config["EASEL_HEARTBEAT_TTL"]
        return True
    return row.status == GenerationStatus.QUEUED and job_status in SETTLE


@with_app
def reconcile_generations(now: datetime | None = None) -> dict[str, int]:
    """Bring every queued or running row whose RQ job is over or gone to where the row says it is.

    The database row is the truth. A row still queued (or running with no live job) whose job Redis no
    longer has (a Redis that crashed and came back from its append-only file without the last writes, or
    with none) is enqueued again at its fair place, with its seed and settings (``lifecycle.resubmit``);
    once its job is queued again it is left alone, so it is enqueued once per outage. A running row whose
    job is over failed: the worker's own writes failed (the database was down), so RQ recorded the job as
    failed or finished while the row still says running; the reaper never sees it, because the job is no
    longer started. Each move is conditional, so a worker that got there first wins.

    Args:
        now: the time to judge the enqueue grace by (naive UTC; tests move it forward). Default: now.

    Returns:
        How many rows were settled, by what became of them (``resubmitted``, ``failed``, ``canceled``).
    """
    now = now or utcnow()
    rows = db.session.execute(select(Generation.id, Generation.status, Generation.created_at)
                              .where(Generation.status.in_(list(ACTIVE_STATUSES)))).all()
    db.session.rollback()  # hold no read transaction (SQLite locks) while asking Redis
    if not rows:
        return {}
    queue = generation_queue()
    jobs = Job.fetch_many([row.id for row in rows], connection=queue.connection, serializer=queue.serializer)
    settled: dict[str, int] = {}
    for row, job in zip(rows, jobs, strict=True):
        if job is None and row.created_at > now - ENQUEUE_GRACE:
            continue
        if being_retried(row.id):  # an admin is putting it back on its queue (row queued first, then the job)
            continue
        job_status = job.get_status(refresh=True) if job is not None else None
        if job_status == JobStatus.CANCELED:
            done = (lifecycle.cancel if row.status == GenerationStatus.QUEUED else lifecycle.stopped)(row.id)
            outcome = "canceled"
        elif _lost(row, job, job_status):
            generation = db.session.get(Generation, row.id)
            outcome = lifecycle.resubmit(generation) if generation is not None else None
            done = outcome is not None
        elif row.status == GenerationStatus.RUNNING and job_status in SETTLE:
            done = lifecycle.fail(row.id, _ended_message(job), (GenerationStatus.RUNNING,))
            outcome = "failed"
        else:
            continue
        if done:
            log.warning("generation %s was %s with its job %s: %s", row.id, row.status, job_status or "gone", outcome)
            settled[outcome] = settled.get(outcome, 0) + 1
    return settled


@with_app
def restore_queue_weights() -> int:
    """Copy the queue weights from the users table back into Redis when they differ (a Redis that lost its data).

    Returns:
        How many people's weights were written or removed in Redis.
    """
    return restore_weights()


@with_app
def cleanup() -> dict:
    """Delete expired images, orphan files and generations that never finished (daily, from cron)."""
    return delete_expired_images().counts()
