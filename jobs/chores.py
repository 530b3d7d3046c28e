"""Chores run on the ``default`` queue: small, idempotent, safe to repeat."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from sqlalchemy import select

from webapp.cleanup import delete_expired_images
from webapp.extensions import db
from webapp.mail.outbox import notify_generation_finished
from webapp.queue_weights import restore_queue_weights as restore_weights
from webapp.queues import being_retried, generation_queue, generation_queues
from webapp.tables import ACTIVE_STATUSES, Generation, GenerationStatus, move_generation, utcnow

from .app_context import with_app

log = logging.getLogger(__name__)

# A row is committed before its job is enqueued: a row this young without a job may still get one.
ENQUEUE_GRACE = timedelta(seconds=60)
JOB_ENDED = "This generation stopped because part of the site failed while it ran. Please try again."
JOB_LOST = "This generation was lost by the image queue, so it never finished. Please try again."
JOB_CANCELED = "This generation was canceled."
# What the row becomes when its job is over but the row is not final (its own writes failed, e.g. the database
# was down); jobs still waiting (queued, scheduled for a retry, deferred) or running are left alone.
SETTLE = {
    JobStatus.FINISHED: (GenerationStatus.FAILED, JOB_ENDED),
    JobStatus.FAILED: (GenerationStatus.FAILED, JOB_ENDED),
    JobStatus.STOPPED: (GenerationStatus.FAILED, JOB_ENDED),
    JobStatus.CANCELED: (GenerationStatus.CANCELED, JOB_CANCELED),
    None: (GenerationStatus.FAILED, JOB_LOST),  # no such job: expired, deleted, or Redis lost it
}


@with_app
def reap_abandoned_generations() -> None:
    """Settle jobs whose worker died mid-way.

    RQ's cleanup of the started registry retries them or moves them to failed, calling the
    job's failure callback, which marks the generation row.
    """
    for queue in generation_queues():
        StartedJobRegistry(queue=queue).cleanup()


@with_app
def reconcile_generations(now: datetime | None = None) -> dict[str, int]:
    """Bring every queued or running row whose RQ job is over or gone to a final status.

    The worker marks its row itself, but when the database fails at that moment (and the job's failure
    callback with it) RQ records the job as failed or finished while the row still says queued or
    running; the reaper never sees it, because the job is no longer started. Each row moves by
    ``move_generation``'s conditional UPDATE, so a worker that got there first wins.

    Args:
        now: the time to judge the enqueue grace by (naive UTC; tests move it forward). Default: now.

    Returns:
        How many rows were settled, by the status they got.
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
        job_status = job.get_status(refresh=False) if job is not None else None
        if job_status not in SETTLE or (job is None and row.created_at > now - ENQUEUE_GRACE):
            continue
        if job is not None:
            # An admin may be putting it back on its queue (row queued first, then the job), or just did.
            if being_retried(row.id) or (job_status := job.get_status(refresh=True)) not in SETTLE:
                continue
        to, message = SETTLE[job_status]
        if move_generation(row.id, to, (GenerationStatus(row.status),), finished_at=utcnow(), error=message):
            log.warning("generation %s was %s with its job %s: now %s", row.id, row.status, job_status or "gone", to)
            settled[to.value] = settled.get(to.value, 0) + 1
            if to == GenerationStatus.FAILED:
                notify_generation_finished(row.id)
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
