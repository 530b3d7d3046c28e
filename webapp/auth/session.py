"""Flask-Login glue: load the signed-in user, check where to send them next."""
from __future__ import annotations

from urllib.parse import urlsplit

from ..extensions import db
from ..tables import User


def load_user(user_id: str) -> User | None:
    """Load the user named in the session, if that session has not been ended.

    Args:
        user_id: ``"<id>:<session_version>"`` as written by ``User.get_id``.
    """
    raw_id, _, version = user_id.partition(":")
    if not raw_id.isdigit() or not version.isdigit():
        return None
    user = db.session.get(User, int(raw_id))
    if user is None or user.session_version != int(version) or user.is_banned:
        return None
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
