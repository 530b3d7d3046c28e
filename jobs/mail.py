"""Email jobs on the chore queue. A failed send raises, so RQ retries it with backoff; after the
last try the failure is logged and kept in RQ's failed registry, and nothing else changes.

Importable from the web process (no torch).
"""
from __future__ import annotations

import logging

from flask import current_app
from rq import Retry, get_current_job
from rq.job import Job
from sqlalchemy import select

from webapp import emails
from webapp.extensions import db
from webapp.mail import MailError, Message, get_mailer
from webapp.models import Generation, GenerationStatus, User

from .app_context import with_app
from .queues import chore_queue

log = logging.getLogger(__name__)

JOB_TIMEOUT = 60
FAILURE_TTL = 7 * 24 * 3600  # failed sends stay inspectable in RQ's failed registry for a week
RESULT_TTL = 3600


def _deliver(message: Message, what: str) -> None:
    """Send now; on failure log how many tries are left, then raise so RQ retries."""
    job = get_current_job()
    job_id = job.id if job else "-"
    try:
        get_mailer().send(message)
    except MailError as exc:
        left = job.retries_left if job else None
        if left:
            log.warning("email job %s (%s): %s; %d more tr%s", job_id, what, exc, left, "y" if left == 1 else "ies")
        else:
            log.error("email job %s (%s) failed for good: %s", job_id, what, exc)
        raise
    log.info("email job %s (%s): sent", job_id, what)


@with_app
def send_email(message: dict) -> str:
    """Send a message rendered elsewhere (a job; ``message`` is ``Message.to_dict()``)."""
    _deliver(Message.from_dict(message), "message")
    return "sent"


@with_app
def send_generation_email(generation_id: str) -> str:
    """"Your art is ready" or "Your generation failed", if the person still wants these emails."""
    generation = db.session.get(Generation, generation_id)
    if generation is None:
        return "skipped: generation gone"
    if not generation.user.notify_by_email or generation.user.is_banned:
        return "skipped: notifications off"
    if generation.status == GenerationStatus.SUCCEEDED:
        if not generation.images:
            return "skipped: no images left"
        message = emails.result_ready(generation)
    elif generation.status == GenerationStatus.FAILED:
        message = emails.generation_failed(generation)
    else:
        return f"skipped: {generation.status}"
    _deliver(message, f"generation {generation_id} {generation.status}")
    return "sent"


@with_app
def send_password_reset(email: str) -> str:
    """Email a reset link if an active account has this address; otherwise do nothing, quietly."""
    user = db.session.scalar(select(User).where(User.email == User.normalize_email(email)))
    if user is None or user.is_banned:
        return "skipped: no such account"
    _deliver(emails.password_reset(user), f"password reset for user {user.id}")
    return "sent"


def retry_policy() -> Retry | None:
    """``MAIL_RETRY_INTERVALS``: one retry per interval, each waiting that many seconds."""
    intervals = list(current_app.config["MAIL_RETRY_INTERVALS"])
    return Retry(max=len(intervals), interval=intervals) if intervals else None


def enqueue_email(func: str, *args, description: str) -> Job:
    """Put an email job on the chore queue with the retry policy and a timeout."""
    return chore_queue(current_app.config["REDIS_URL"]).enqueue(
        func, *args, job_timeout=JOB_TIMEOUT, retry=retry_policy(), result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL, description=description)


def notify_generation_finished(generation_id: str) -> None:
    """Queue the result or failure email if the owner wants one; never raises (an email never fails a generation)."""
    try:
        _queue_generation_email(generation_id)
    except Exception:
        log.exception("generation %s: could not queue its email", generation_id)


@with_app
def _queue_generation_email(generation_id: str) -> None:
    wants = db.session.scalar(select(User.notify_by_email).join(Generation, Generation.user_id == User.id)
                              .where(Generation.id == generation_id))
    if wants:
        enqueue_email("jobs.mail.send_generation_email", generation_id,
                      description=f"email for generation {generation_id}")
