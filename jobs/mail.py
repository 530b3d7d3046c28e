"""Email jobs on the chore queue (queued by ``webapp.mail.outbox``). A failed send raises, so RQ retries
it with backoff; after the last try the failure is logged and kept in RQ's failed registry, and nothing
else changes.
"""
from __future__ import annotations

import logging

from rq import get_current_job
from sqlalchemy import select

from webapp import metrics, services
from webapp.auth import signup
from webapp.extensions import db
from webapp.mail import messages
from webapp.mail.backends import MailError, Message
from webapp.tables import Generation, GenerationStatus, User

from .app_context import with_app

log = logging.getLogger(__name__)


def _deliver(message: Message, what: str) -> None:
    """Send now; on failure log how many tries are left, then raise so RQ retries."""
    job = get_current_job()
    try:
        services.mailer().send(message)
    except MailError as exc:
        left = job.retries_left if job else None
        metrics.email_result("retry" if left else "failed")
        if left:
            log.warning("email (%s): %s; %d more tr%s", what, exc, left, "y" if left == 1 else "ies")
        else:
            log.error("email (%s) failed for good: %s", what, exc)
        raise
    metrics.email_result("sent")
    log.info("email (%s): sent", what)


@with_app
def send_generation_email(generation_id: str) -> str:
    """"Your art is ready" or "Your generation failed", if the person still wants these messages."""
    generation = db.session.get(Generation, generation_id)
    if generation is None:
        return "skipped: generation gone"
    if not generation.user.notify_by_email or generation.user.is_banned:
        return "skipped: notifications off"
    if generation.status == GenerationStatus.SUCCEEDED:
        if not generation.images:
            return "skipped: no images left"
        message = messages.result_ready(generation)
    elif generation.status == GenerationStatus.FAILED:
        message = messages.generation_failed(generation)
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
    _deliver(messages.password_reset(user), f"password reset for user {user.id}")
    return "sent"



@with_app
def send_signup(email: str, token: str) -> str:
    """Finish-your-sign-up link for a new address; for a taken one, tell its owner someone tried."""
    user = db.session.scalar(select(User).where(User.email == User.normalize_email(email)))
    if user is None:
        _deliver(messages.signup_link(email, token), "sign-up link")
        return "sent: link"
    signup.forget_pending(token)  # an address that has an account never gets a second one
    if user.is_banned:
        return "skipped: banned account"
    _deliver(messages.signup_attempt(user), f"sign-up attempt for user {user.id}")
    return "sent: attempt"


@with_app
def send_password_changed(user_id: int) -> str:
    """Tell the person their password was changed or reset."""
    user = db.session.get(User, user_id)
    if user is None:
        return "skipped: no such account"
    _deliver(messages.password_changed(user), f"password changed for user {user_id}")
    return "sent"


@with_app
def send_new_device(user_id: int, browser: str, address: str, when: str) -> str:
    """Tell the person their account was signed in to from a browser it had not been used from before."""
    user = db.session.get(User, user_id)
    if user is None or user.is_banned:
        return "skipped: no such account"
    _deliver(messages.new_device(user, browser, address, when), f"new sign-in for user {user_id}")
    return "sent"
