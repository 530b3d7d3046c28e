"""Cross-user batching: which queued generations can share one pipeline call, and claiming them from RQ.

A worker that takes a generation (the lead) scans the first queued job ids for generations with the
same batch key and claims each one atomically: a Lua script moves the id from the queue list to RQ's
intermediate queue only if it is still queued, exactly where RQ's own dequeue puts a job it takes. From
there the worker registers an execution for it (the started registry, with its heartbeat), so a worker
that dies with a claimed job is noticed by RQ's intermediate-queue cleanup or by the reaper, as for a
job it dequeued itself.
"""
from __future__ import annotations

import logging
import time
from collections import Counter

from flask import current_app
from rq.job import Job
from rq.queue import Queue
from sqlalchemy import select

from webapp import services
from webapp.extensions import db
from webapp.queues import SERIALIZER
from webapp.tables import Generation, GenerationStatus, Source

log = logging.getLogger(__name__)

BATCHED_FUNCTION = "jobs.generate.run"
SCAN_DEPTH = 64  # queued ids looked at for company; deeper ones wait for a later batch
POLL_INTERVAL = 0.02  # seconds between looks at an empty queue while waiting for company

# KEYS: the queue list, its intermediate list; ARGV: the job id. 1 when this caller took the job.
CLAIM_SCRIPT = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
    redis.call('RPUSH', KEYS[2], ARGV[1])
    return 1
end
return 0
"""


def batch_key(generation: Generation) -> tuple | None:
    """What must be equal for generations to share one pipeline call; None when it never batches.

    Guidance and strength are one number per call in diffusers' pipelines, the control models and their scales
    too (the control images are per image), and the LoRAs (with their scales and scheduler) and the chosen
    sampler are switched on for the whole call, so they are in the key; prompts, seeds, styles and starting
    images are per image, so they are not. On SDXL, whether a negative prompt was given
    is: its pipeline makes zeros of a missing negative prompt but encodes "", so the two never share a call.
    """
    if generation.source in (Source.UPSCALE, Source.GRID) or generation.edit is not None:
        # upscales run another model; a grid's picture is drawn, not generated; an edit's mask and settings
        # are its own call's
        return None
    if len(generation.controls or []) > 1:
        return None  # several ControlNets take one control image each for a whole call
    image_to_image = bool(generation.init_image_key)
    loras = tuple((str(name), None if scale is None else float(scale)) for name, scale in (generation.loras or []))
    controls = tuple((str(unit["name"]), float(unit["scale"])) for unit in generation.controls or [])
    return (generation.model, generation.width, generation.height, generation.steps, float(generation.guidance),
            image_to_image, float(generation.strength or 0) if image_to_image else None, bool(generation.timelapse),
            loras, bool(generation.negative_prompt) if _zeros_for_no_negative(generation.model) else None, controls,
            generation.scheduler or None)


def _zeros_for_no_negative(model: str) -> bool:
    """Whether the model's pipeline treats a missing negative prompt unlike "" (SDXL: zero embeddings)."""
    entry = services.catalog().get(model)
    return entry is not None and entry.architecture == "sdxl"


def batch_limit(model: str) -> int:
    """Images one call may make: the model's ``batch_max`` in the catalog, else ``EASEL_BATCH_MAX``."""
    entry = services.catalog().get(model)
    return max(1, (entry.batch_max if entry else None) or current_app.config["EASEL_BATCH_MAX"])


def claim(queue: Queue, job_id: str) -> bool:
    """Take a queued job off the queue into RQ's intermediate queue; False when another worker was first."""
    script = queue.connection.register_script(CLAIM_SCRIPT)
    return bool(script(keys=[queue.key, queue.intermediate_queue_key], args=[job_id]))


def _queued_rows(job_ids: list[str]) -> dict[str, Generation]:
    rows = db.session.scalars(select(Generation).where(
        Generation.id.in_(job_ids), Generation.status == GenerationStatus.QUEUED,
    ).execution_options(populate_existing=True))
    return {row.id: row for row in rows}


def claim_companions(lead: Job, queue: Queue, wait: bool = True) -> list[Job]:
    """Claim queued jobs that can share the lead's pipeline call, in queue order (call in an app context).

    With ``wait``, waits up to ``EASEL_BATCH_WAIT_MS`` for company while nothing else waits in the queue.
    """
    if lead.func_name != BATCHED_FUNCTION:
        return []
    generation = db.session.get(Generation, lead.id, populate_existing=True)
    if generation is None or generation.status != GenerationStatus.QUEUED or (key := batch_key(generation)) is None:
        return []
    room = batch_limit(generation.model) - generation.num_images
    claimed: list[Job] = []
    running = Counter({generation.user_id: 1})  # one call runs at most MAX_ACTIVE_PER_USER of a person's generations
    try:
        _claim_into(claimed, lead, queue, key, room, current_app.config["EASEL_BATCH_WAIT_MS"] / 1000 if wait else 0,
                    running)
    except Exception:  # what was claimed runs; the rest stays queued for later
        log.warning("looking for company for %s stopped early", lead.id, exc_info=True)
    db.session.rollback()  # end the read transaction: the rows are read again when the batch runs
    return claimed


def _claim_into(claimed: list[Job], lead: Job, queue: Queue, key: tuple, room: int, wait: float,
                running: Counter) -> None:
    """Claim compatible queued jobs into ``claimed`` until ``room`` images are taken or ``wait`` seconds are over.

    ``running`` counts the call's generations per person; a person's beyond ``MAX_ACTIVE_PER_USER`` stay queued.
    """
    per_person = current_app.config["MAX_ACTIVE_PER_USER"]
    deadline = time.monotonic() + wait
    seen: set[str] = {lead.id}
    while room > 0:
        job_ids = queue.get_job_ids(0, SCAN_DEPTH - 1)
        fresh = [job_id for job_id in job_ids if job_id not in seen]
        rows = _queued_rows(fresh) if fresh else {}
        jobs = {job.id: job for job in Job.fetch_many(list(rows), connection=queue.connection, serializer=SERIALIZER)
                if job is not None}
        taken = 0
        for job_id in fresh:
            seen.add(job_id)
            row, job = rows.get(job_id), jobs.get(job_id)
            if row is None or job is None or job.func_name != BATCHED_FUNCTION or list(job.args) != [job_id]:
                continue
            if running[row.user_id] >= per_person:
                continue
            if row.num_images <= room and batch_key(row) == key and claim(queue, job_id):
                claimed.append(job)
                running[row.user_id] += 1
                taken += 1
                room -= row.num_images
                if room <= 0:
                    break
        if len(job_ids) > taken or time.monotonic() >= deadline:
            break  # others are waiting (for another batch), or we waited long enough
        time.sleep(POLL_INTERVAL)
