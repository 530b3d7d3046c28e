"""Queue emails on the chore queue (the web and the generation worker call this; ``jobs.mail`` sends them)."""
from __future__ import annotations

import logging

from flask import current_app
from rq import Retry
from rq.job import Job
from sqlalchemy import select

from ..extensions import db
from ..queues import chore_queue
from ..tables import Generation, User

log = logging.getLogger(__name__)

JOB_TIMEOUT = 60
FAILURE_TTL = 7 * 24 * 3600  # failed sends stay inspectable in RQ's failed registry for a week
RESULT_TTL = 3600


def retry_policy() -> Retry | None:
    """``MAIL_RETRY_INTERVALS``: one retry per interval, each waiting that many seconds."""
    intervals = list(current_app.config["MAIL_RETRY_INTERVALS"])
    return Retry(max=len(intervals), interval=intervals) if intervals else None


def enqueue_email(func: str, *args, description: str) -> Job:
    """Put an email job (a ``jobs.mail`` dotted name) on the chore queue with the retry policy and a timeout."""
    return chore_queue().enqueue(
        func, *args, job_timeout=JOB_TIMEOUT, retry=retry_policy(), result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL, description=description)


def notify_generation_finished(generation_id: str) -> None:
    """Queue the result or failure email if the owner wants one; never raises (an email never fails a generation)."""
    try:
        wants = db.session.scalar(select(User.notify_by_email).join(Generation, Generation.user_id == User.id)
                                  .where(Generation.id == generation_id))
        if wants:
            enqueue_email("jobs.mail.send_generation_email", generation_id,
                          description=f"email for generation {generation_id}")
    except Exception:
        log.exception("generation %s: could not queue its email", generation_id)
