"""Known devices: a long-lived signed cookie naming the accounts that signed in from this browser.

A sign-in from a browser whose cookie does not name the account emails its owner, unless it is the
account's first sign-in ever (a Redis key remembers that one happened). The cookie holds keyed
hashes, not user ids, so a shared computer does not tell who used it.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import UTC, datetime

from flask import Response, current_app, request
from itsdangerous import BadData, URLSafeSerializer
from redis.exceptions import RedisError

from .. import services
from ..mail.outbox import enqueue_email
from ..tables import User

log = logging.getLogger(__name__)

COOKIE = "easel_devices"
COOKIE_DAYS = 400  # the longest lifetime browsers allow
MAX_ACCOUNTS = 20
BROWSER_CHARS = 200


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="easel.known-devices")


def _tag(user: User) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"device:{user.id}".encode(), hashlib.sha256).hexdigest()[:16]


def _known_tags() -> list[str]:
    raw = request.cookies.get(COOKIE, "")
    try:
        tags = _serializer().loads(raw) if raw else []
    except BadData:
        return []
    return [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []


def is_known(user: User) -> bool:
    """True when this browser has signed in to ``user``'s account before."""
    return _tag(user) in _known_tags()


def remember(response: Response, user: User) -> None:
    """Name ``user`` in this browser's known-devices cookie (after sign-up: the account's first device)."""
    others = [tag for tag in _known_tags() if tag != _tag(user)]
    tags = [*others[-(MAX_ACCOUNTS - 1):], _tag(user)]
    response.set_cookie(COOKIE, _serializer().dumps(tags), max_age=COOKIE_DAYS * 86400, httponly=True,
                        samesite="Lax", secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))


def _first_sign_in(user: User) -> bool:
    """True the first time ``user`` ever signs in (and marks that it happened)."""
    seen = services.redis().set(f"easel:signed-in-before:{user.id}", 1, ex=COOKIE_DAYS * 86400, get=True)
    return seen is None


def notify_if_new(response: Response, user: User) -> None:
    """After a sign-in: email the owner when this browser is new to the account, then remember it."""
    try:
        first = _first_sign_in(user)
    except RedisError:
        first = True  # no email rather than no sign-in
    if not first and not is_known(user):
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        browser = (request.user_agent.string or "unknown browser")[:BROWSER_CHARS]
        try:
            enqueue_email("jobs.mail.send_new_device", user.id, browser, request.remote_addr or "unknown",
                          when, description=f"new sign-in email for user {user.id}")
        except RedisError:
            log.exception("could not queue the new sign-in email for user %s", user.id)
    remember(response, user)
