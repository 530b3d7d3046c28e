"""The one owner of a generation's life: every status move, with what belongs to it.

A generation moves ``queued → running → succeeded | failed | canceled``, plus ``running → queued`` (a
transient retry) and ``failed → queued`` (an admin's retry); ``webapp.tables.TRANSITIONS`` lists the
allowed moves. Each verb here makes its move by one conditional UPDATE (so a cancel from the web and a
worker never overwrite each other) and then does what goes with it:

========== ======================== ==========================================================
verb       move                     with it
========== ======================== ==========================================================
enqueue    (queued)                 the RQ job, at the person's fair place in the queue
start      queued → running         the start time
succeed    running → succeeded      the image rows in the same commit; progress cleared; email
fail       queued|running → failed  a readable message; job dropped when asked; progress cleared; email
requeue    running → queued         progress cleared (RQ puts the job back at the front)
cancel     queued → canceled        the job dropped; a running one is asked to stop
stopped    running → canceled       progress cleared (the worker saw the cancel)
retry      failed → queued          the job put back (by the admin's RQ registry), at a fair place
resubmit   running → queued         a job Redis lost enqueued again, at a fair place (the row is the truth)
========== ======================== ==========================================================

Jobs, chores, cleanup, the admin pages and the web call these; nothing else writes the status column.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from redis.exceptions import RedisError
from rq import Callback
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.queue import Queue
from sqlalchemy import update

from . import metrics, progress, services
from .extensions import db
from .mail.outbox import notify_generation_finished
from .queues import SERIALIZER, fetch_job, generation_queue, is_generation_queue, place_fairly
from .tables import ACTIVE_STATUSES, TRANSITIONS, Generation, GenerationStatus, Image, Source, utcnow

log = logging.getLogger(__name__)

JOB_FUNCTION = "jobs.generate.run"
JOB_FAILURE_CALLBACK = "jobs.generate.on_failure"
RESULT_TTL = 24 * 3600
FAILURE_TTL = 7 * 24 * 3600
DEFAULT_JOB_TIMEOUT = 600  # a generation whose model left the catalog (its resubmission fails anyway)
UPSCALE_TIMEOUT = 600  # seconds an upscale may run at least (the upscaler, not the catalog model, does the work)
REDIS_LOST = ("The image queue (Redis) lost this generation and it could not be queued again: {reason}. "
              "Please try again.")


def _move(generation_id: str, to: GenerationStatus, only_from: Iterable[GenerationStatus] | None = None,
          *, commit: bool = True, **values) -> bool:
    """Move a generation to ``to`` by one conditional UPDATE, if its status allows that move.

    Args:
        generation_id: the row (and RQ job) id.
        to: the new status.
        only_from: the statuses it may leave (default: every status ``TRANSITIONS`` lets reach ``to``).
        commit: commit at once; False leaves it in the caller's transaction.
        **values: other columns to set in the same UPDATE (times, error).

    Returns:
        True when the row moved; False when it was in another status (a cancel or a worker got there first).

    Raises:
        ValueError: ``only_from`` names a move the table does not allow.
    """
    allowed = {status for status, targets in TRANSITIONS.items() if to in targets}
    sources = allowed if only_from is None else {GenerationStatus(status) for status in only_from}
    if not sources <= allowed:
        moves = ", ".join(f"{status} → {to}" for status in sorted(sources - allowed))
        raise ValueError(f"not an allowed status move: {moves}")
    moved = db.session.execute(
        update(Generation).where(Generation.id == generation_id, Generation.status.in_(sorted(sources)))
        .values(status=to, **values)
    ).rowcount
    if moved:
        metrics.generation_moved(db.session, generation_id, str(to))
    if commit:
        db.session.commit()
    return bool(moved)


def _clear_progress(generation_id: str) -> None:
    """Drop the live preview and cancel flag (the step hash expires on its own); never raises."""
    try:
        progress.clear(services.redis(), generation_id)
    except Exception:
        log.warning("generation %s: could not clear its live progress", generation_id)


def job_timeout_for(generation: Generation) -> int:
    """Seconds a generation's job may run: its model's ``job_timeout`` (upscales: at least the upscale limit)."""
    entry = services.catalog().get(generation.model)
    timeout = entry.job_timeout if entry is not None else DEFAULT_JOB_TIMEOUT
    return max(timeout, UPSCALE_TIMEOUT) if generation.source == Source.UPSCALE else timeout


def enqueue(generation: Generation, job_timeout: int | None = None) -> Job:
    """Put the generation's job (id = row id) on its model's queue at the person's fair place.

    Raises:
        RedisError: the job could not be enqueued (the row is left as it is: the caller decides).
    """
    queue = generation_queue(generation.model)
    job = queue.enqueue(
        JOB_FUNCTION, generation.id, job_id=generation.id,
        job_timeout=job_timeout if job_timeout is not None else job_timeout_for(generation),
        result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL, on_failure=Callback(JOB_FAILURE_CALLBACK),
        description=f"generation {generation.id} for user {generation.user_id}")
    _place_fairly(queue, generation)
    return job


def _place_fairly(queue: Queue, generation: Generation) -> None:
    try:
        place_fairly(queue, generation.id, generation.user_id, generation.num_images)
    except RedisError:  # it stays queued at the end: first come, first served
        log.warning("generation %s: could not place it fairly", generation.id)


def start(generation_id: str) -> bool:
    """A worker takes it: ``queued → running``. False when it is no longer queued (canceled, taken)."""
    return _move(generation_id, GenerationStatus.RUNNING, (GenerationStatus.QUEUED,), started_at=utcnow())


def succeed(generation_id: str, images: list[Image], **values) -> bool:
    """The images are stored: their rows and ``running → succeeded`` in one commit, then the email.

    Args:
        generation_id: the generation.
        images: the new ``Image`` rows (their files are already saved).
        **values: other columns to set with the status (the text the model saw).

    Returns:
        False when it was canceled at the last moment: nothing is committed, the caller removes the files.
    """
    db.session.add_all(images)
    if not _move(generation_id, GenerationStatus.SUCCEEDED, (GenerationStatus.RUNNING,), commit=False,
                 finished_at=utcnow(), error=None, **values):
        db.session.rollback()
        return False
    db.session.commit()
    _clear_progress(generation_id)
    notify_generation_finished(generation_id)  # never raises: an email never fails a generation
    return True


def fail(generation_id: str, message: str, only_from: Iterable[GenerationStatus] = ACTIVE_STATUSES, *,
         drop_job: bool = False, notify: bool = True, now: datetime | None = None) -> bool:
    """``queued | running → failed`` with a message a person can act on, then the email.

    Args:
        generation_id: the generation.
        message: what the person reads.
        only_from: the statuses it may fail from.
        drop_job: also cancel its RQ job and ask a worker still running it to stop (cleanup of a stalled one).
        notify: send the failure email (False when the person sees the failure at once, as a refused submit).
        now: the finish time (default: now).
    """
    if not _move(generation_id, GenerationStatus.FAILED, only_from, finished_at=now or utcnow(), error=message):
        return False
    _clear_progress(generation_id)
    if drop_job:
        try:
            progress.request_cancel(services.redis(), generation_id)  # a worker still at it stops within a step
        except RedisError:
            log.warning("generation %s: Redis unreachable while stopping it", generation_id)
        _drop_job(generation_id)
    if notify:
        notify_generation_finished(generation_id)
    return True


def requeue(generation_id: str) -> bool:
    """A transient error: ``running → queued``; RQ puts the job back at the front (its fair turn was counted)."""
    moved = _move(generation_id, GenerationStatus.QUEUED, (GenerationStatus.RUNNING,), started_at=None)
    if moved:
        _clear_progress(generation_id)
    return moved


def cancel(generation_id: str) -> bool:
    """The person cancels: a queued generation is canceled at once and its job dropped; a running one is asked
    to stop within a step (the worker then calls ``stopped``). True when it was canceled here."""
    canceled = _move(generation_id, GenerationStatus.CANCELED, (GenerationStatus.QUEUED,), finished_at=utcnow(),
                     error=None)
    try:
        progress.request_cancel(services.redis(), generation_id)
        if canceled:
            _drop_job(generation_id)
    except RedisError:
        log.warning("generation %s: Redis unreachable while canceling", generation_id)
    return canceled


def stopped(generation_id: str) -> bool:
    """The worker stopped for a cancel: ``running → canceled``."""
    moved = _move(generation_id, GenerationStatus.CANCELED, (GenerationStatus.RUNNING,), finished_at=utcnow())
    _clear_progress(generation_id)
    return moved


def retry(generation: Generation, put_back: Callable[[], Job]) -> Job | None:
    """An admin retries a failed generation: ``failed → queued``, then ``put_back`` its RQ job, at a fair place.

    The row moves first (committed), so a worker that takes the job at once finds it queued; when
    ``put_back`` raises, the row goes back to failed with its old message and the error is raised.

    Returns:
        The job put back; None when the generation was not failed (nothing changed).
    """
    previous_error = generation.error
    if not _move(generation.id, GenerationStatus.QUEUED, (GenerationStatus.FAILED,),
                 error=None, started_at=None, finished_at=None):
        return None
    try:
        job = put_back()
    except BaseException:
        _move(generation.id, GenerationStatus.FAILED, (GenerationStatus.QUEUED,), error=previous_error,
              finished_at=utcnow())
        raise
    if is_generation_queue(job.origin):  # a fair place, as a new submission gets
        _place_fairly(Queue(job.origin, connection=services.redis(), serializer=SERIALIZER), generation)
    return job


def resubmit(generation: Generation) -> str | None:
    """Redis lost the job of a generation still queued or running: enqueue it again (same id, so the same
    seed and settings) at its fair place; fail it, saying so, only when it cannot be enqueued.

    Returns:
        ``"resubmitted"``, ``"failed"``, or None when the row had moved on (a worker or a cancel got there first).

    Raises:
        RedisError: Redis is unreachable now (the row is left as it is for a later try).
    """
    if generation.status == GenerationStatus.RUNNING and not requeue(generation.id):
        return None
    db.session.refresh(generation)
    if generation.status != GenerationStatus.QUEUED:
        return None
    if generation.model not in services.catalog():
        reason = f"the model {generation.model} is no longer offered"
        return "failed" if fail(generation.id, REDIS_LOST.format(reason=reason), (GenerationStatus.QUEUED,)) else None
    queue = generation_queue(generation.model)
    for registry in (queue.failed_job_registry, queue.finished_job_registry, queue.canceled_job_registry,
                     queue.scheduled_job_registry):  # what is left of the lost job's last run
        registry.remove(generation.id)
    enqueue(generation)
    log.warning("generation %s: Redis lost its job; queued again", generation.id)
    return "resubmitted"


def _drop_job(generation_id: str) -> None:
    """Best effort: drop the job from its queue so no worker takes it."""
    try:
        fetch_job(generation_id).cancel()
    except (NoSuchJobError, InvalidJobOperation):
        pass
    except RedisError:
        log.warning("generation %s: Redis unreachable while dropping its job", generation_id)
