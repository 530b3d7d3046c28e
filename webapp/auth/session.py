"""Flask-Login glue: sessions that the server can end, the signed-in user, where to send them next.

Every sign-in gets a random session id, carried in the session and remember-me cookies (inside
``User.get_id``) and kept in a Redis sorted set per user with its expiry as the score. The user loader
accepts a cookie only while its id is in that set and its session version is current, so signing out
(which removes the id) ends that session for any copy of the cookie, and "sign out everywhere" (which
bumps the version and drops the set) ends them all.

When Redis cannot be reached the loader falls back to the session version alone (what a password
change, a reset, a ban and "sign out everywhere" move on), so galleries and the admin dashboard keep
answering during an outage; only a single sign-out made before the outage is not enforced while it
lasts. Signing out while Redis is down ends every session of the account instead (the one session
cannot be forgotten, so the version moves on), and signing in answers 503 "try again".
"""
from __future__ import annotations

import logging
import secrets
import time
from urllib.parse import urlsplit

from flask import current_app, g, session
from flask_login import current_user, login_user, logout_user
from redis.exceptions import RedisError

from .. import services
from ..extensions import db
from ..tables import User

log = logging.getLogger(__name__)

SESSIONS_DOWN = "Signing in is unavailable for a moment (the session store does not answer). Try again in a minute."
SIGNED_OUT_EVERYWHERE = "You are signed out everywhere."


def _key(user_id: int) -> str:
    return f"easel:sessions:{user_id}"


def session_seconds() -> int:
    """How long any session lives at most: ``REMEMBER_DAYS``."""
    return int(current_app.config["REMEMBER_DAYS"]) * 86400


def start_session(user: User, remember: bool = False) -> None:
    """Sign ``user`` in on a fresh session: old session data and CSRF token dropped, a new id registered.

    Raises:
        redis.exceptions.RedisError: the session store is unreachable (nobody is signed in).
    """
    session.clear()  # a new session: nothing (CSRF token included) carries over from before sign-in
    session_id = secrets.token_urlsafe(18)
    now = time.time()
    lifetime = session_seconds()
    pipe = services.redis().pipeline()
    pipe.zremrangebyscore(_key(user.id), "-inf", now)  # forget expired sessions
    pipe.zadd(_key(user.id), {session_id: now + lifetime})
    pipe.expire(_key(user.id), lifetime)
    pipe.execute()
    user.session_id = session_id
    login_user(user, remember=remember)


def end_session() -> bool:
    """Sign this browser out: its id leaves Redis, so a copy of its cookies stops working too.

    Returns:
        False when Redis did not answer and every session of the account was ended instead.
    """
    ended_one = True
    if current_user.is_authenticated and current_user.session_id:
        try:
            services.redis().zrem(_key(current_user.id), current_user.session_id)
        except RedisError:
            log.warning("session store unreachable; ending every session of user %s", current_user.id)
            end_every_session(current_user._get_current_object())
            db.session.commit()
            ended_one = False
    logout_user()
    session.clear()
    return ended_one


def end_every_session(user: User) -> None:
    """End every session of ``user`` (the caller commits): the version moves on, the set is dropped."""
    user.end_sessions()
    try:
        services.redis().delete(_key(user.id))
    except RedisError:  # the version bump alone already ends them; the set expires by itself
        log.warning("could not drop the session set of user %s", user.id)


def load_user_from_request(_request) -> User | None:
    """Flask-Login's request loader: the owner of the API token that the API gate accepted for this request."""
    token = g.get("api_token")
    return token.user if token is not None else None


def load_user(user_id: str) -> User | None:
    """Load the user named in the session, if that session has not been ended; on a request that the API gate
    accepted a token for, that token's owner (the token decides, whatever cookie the client also sent).

    Args:
        user_id: ``"<id>:<session_version>:<session_id>"`` as written by ``User.get_id``.
    """
    if g.get("api_token") is not None:
        return load_user_from_request(None)
    raw_id, _, rest = user_id.partition(":")
    version, _, session_id = rest.partition(":")
    if not raw_id.isascii() or not raw_id.isdigit() or not version.isascii() or not version.isdigit():
        return None
    if not session_id:
        return None
    user = db.session.get(User, int(raw_id))
    if user is None or user.session_version != int(version) or user.is_banned:
        return None
    try:
        expires = services.quick_redis().zscore(_key(user.id), session_id)  # every page asks: never wait long
    except RedisError:
        log.warning("session store unreachable; user %s checked by session version only", user.id)
    else:
        if expires is None or expires < time.time():
            return None
    user.session_id = session_id
    return user


def safe_next(target: str | None) -> str | None:
    """Return ``target`` only when it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    if any(ord(ch) < 32 for ch in target):
        return None
    return target
