"""What the admin dashboard shows: queues, workers, recent generations, failed jobs (retry, discard)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from rq import Queue, Worker
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.results import Result
from sqlalchemy import func, select

from .. import lifecycle, services
from ..extensions import db
from ..generations import cancel_generation
from ..moderation.audit import record
from ..queues import SERIALIZER, chore_queue, fetch_job, generation_queues, retrying
from ..tables import Generation, GenerationStatus, User, utcnow

FAILED_SHOWN = 50
JOB_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class JobActionRefused(Exception):
    """The failed job cannot be retried or discarded (gone, or its generation is not failed)."""


@dataclass
class QueueInfo:
    """One queue's depth and registries."""

    name: str
    queued: int
    started: int
    scheduled: int
    failed: int


@dataclass
class WorkerInfo:
    """One worker that is online, and the job it runs."""

    name: str
    queues: list[str]
    state: str
    job_id: str | None
    job_description: str | None
    last_heartbeat: datetime | None


@dataclass
class FailedJob:
    """A job in a failed registry, with the last line of its error."""

    id: str
    queue: str
    function: str
    description: str
    ended_at: datetime | None
    error: str


@dataclass
class QueueOverview:
    """Everything the dashboard reads from Redis."""

    queues: list[QueueInfo]
    workers: list[WorkerInfo]
    failed_jobs: list[FailedJob]


def _queues() -> list[Queue]:
    """The generation queues (one per model) and the chore queue."""
    return [*generation_queues(), chore_queue()]


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _failed_job(job: Job, queue: str) -> FailedJob:
    result = job.latest_result()
    error = _last_line(result.exc_string) if result and result.type == Result.Type.FAILED else ""
    return FailedJob(id=job.id, queue=queue, function=job.func_name or "?", description=job.description or "",
                     ended_at=job.ended_at, error=error)


def queue_overview() -> QueueOverview:
    """Read queues, workers and failed jobs from Redis.

    Raises:
        redis.exceptions.RedisError: Redis is unreachable.
    """
    queues, failed = [], []
    for queue in _queues():
        failed_ids = queue.failed_job_registry.get_job_ids(0, FAILED_SHOWN - 1, desc=True)
        queues.append(QueueInfo(name=queue.name, queued=queue.count, started=queue.started_job_registry.count,
                                scheduled=queue.scheduled_job_registry.count, failed=queue.failed_job_registry.count))
        jobs = Job.fetch_many(failed_ids, connection=services.redis(), serializer=SERIALIZER)
        failed += [_failed_job(job, queue.name) for job in jobs if job]
    workers = []
    for worker in Worker.all(connection=services.redis(), serializer=SERIALIZER):
        try:
            job = worker.get_current_job()
        except NoSuchJobError:
            job = None
        state = worker.get_state()
        workers.append(WorkerInfo(name=worker.name, queues=worker.queue_names(), state=getattr(state, "value", state),
                                  job_id=job.id if job else None, job_description=job.description if job else None,
                                  last_heartbeat=worker.last_heartbeat))
    failed.sort(key=lambda f: f.ended_at or datetime.min, reverse=True)
    return QueueOverview(queues=queues, workers=sorted(workers, key=lambda w: w.name), failed_jobs=failed[:FAILED_SHOWN])


def generation_counts(now: datetime | None = None) -> dict[str, int]:
    """Generations queued and running now, and succeeded/failed/canceled in the last day."""
    now = now or utcnow()
    active = dict(db.session.execute(select(Generation.status, func.count()).where(
        Generation.status.in_([GenerationStatus.QUEUED, GenerationStatus.RUNNING])).group_by(Generation.status)).all())
    recent = dict(db.session.execute(select(Generation.status, func.count()).where(
        Generation.finished_at >= now - timedelta(days=1),
        Generation.status.in_([GenerationStatus.SUCCEEDED, GenerationStatus.FAILED, GenerationStatus.CANCELED]))
        .group_by(Generation.status)).all())
    return {status.value: (active if status in (GenerationStatus.QUEUED, GenerationStatus.RUNNING) else recent)
            .get(status.value, 0) for status in GenerationStatus}


def _failed_registry_of(job_id: str):
    if not JOB_ID_RE.match(job_id):
        raise JobActionRefused("There is no such failed job.")
    for queue in _queues():
        if job_id in queue.failed_job_registry:
            return queue.failed_job_registry
    raise JobActionRefused("That job is no longer in the failed list.")


def retry_failed_job(admin: User, job_id: str) -> None:
    """Put a failed job back on its queue; a generation's row goes back to queued first (audited).

    Raises:
        JobActionRefused: the job is not failed any more, or its generation was canceled or deleted.
        redis.exceptions.RedisError: Redis is unreachable.
    """
    registry = _failed_registry_of(job_id)
    with retrying(job_id):  # the reconciliation chore must not settle the row between its move and the requeue
        _retry(admin, registry, job_id)


def _retry(admin: User, registry, job_id: str) -> None:
    generation = db.session.get(Generation, job_id)
    try:
        if generation is None:
            job = registry.requeue(job_id)
        elif (job := lifecycle.retry(generation, lambda: registry.requeue(job_id))) is None:
            raise JobActionRefused(f"That generation is {generation.status}, not failed: discard the job instead.")
    except (NoSuchJobError, InvalidJobOperation):
        raise JobActionRefused("That job is no longer in the failed list.") from None
    record(admin, "job.retry", "job", job_id, f"{job.func_name} on {job.origin}")
    db.session.commit()


def discard_failed_job(admin: User, job_id: str) -> None:
    """Remove a failed job for good (audited); a generation row stays failed.

    Raises:
        JobActionRefused: the job is not in a failed list.
        redis.exceptions.RedisError: Redis is unreachable.
    """
    registry = _failed_registry_of(job_id)
    try:
        job = fetch_job(job_id)
    except NoSuchJobError:
        registry.remove(job_id)
        function = "?"
    else:
        function = job.func_name or "?"
        registry.remove(job, delete_job=True)
    record(admin, "job.discard", "job", job_id, f"{function} on {registry.name}")
    db.session.commit()


def cancel_as_admin(admin: User, generation: Generation) -> bool:
    """Cancel someone's queued or running generation, audited; False when it has already finished."""
    if generation.is_final:
        return False
    owner = generation.user.email if generation.user else generation.user_id
    record(admin, "generation.cancel", "generation", generation.id,
           f"owner {owner}; was {generation.status}; prompt: {generation.prompt[:120]}")
    cancel_generation(generation)  # its commit writes the audit entry with the status move
    return True
