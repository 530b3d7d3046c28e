"""Signed links for emails: result links, unsubscribe links and password resets.

Each purpose signs with its own salt, so a token made for one purpose is worthless for another.
Links are absolute, built from ``PUBLIC_BASE_URL``: workers build them and have no request.
"""
from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any

from flask import current_app
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from ..extensions import db
from ..tables import Image, User

RESULT_LINK = "result-link"
UNSUBSCRIBE = "unsubscribe"
PASSWORD_RESET = "password-reset"  # noqa: S105 (a salt name, not a password)
PASSWORD_RESET_SECONDS = 3600
SIGNUP_SECONDS = 24 * 3600  # how long an emailed "finish creating your account" link works
MAX_TOKEN_LENGTH = 512  # real tokens are ~100 characters; longer ones are not worth decoding


class BadLink(Exception):
    """The token is tampered, expired, used up or made for something else."""

    def __init__(self, expired: bool = False):
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"easel.{purpose}")


def make_token(purpose: str, payload: Any) -> str:
    """Sign ``payload`` (JSON-able) for ``purpose``; the current time goes in for expiry checks."""
    return _serializer(purpose).dumps(payload)


def read_token(purpose: str, token: str, max_age: int | None) -> Any:
    """The payload of a valid token for ``purpose``, signed at most ``max_age`` seconds ago.

    Raises:
        BadLink: tampered, expired, or signed for another purpose.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise BadLink()
    try:
        return _serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise BadLink(expired=True) from exc
    except BadData as exc:
        raise BadLink() from exc


def public_url(endpoint: str, **values: Any) -> str:
    """An absolute URL on ``PUBLIC_BASE_URL``; works in workers, which have no request."""
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path


def result_link_seconds() -> int:
    """How long an emailed result link works (``RESULT_LINK_DAYS``)."""
    return int(current_app.config["RESULT_LINK_DAYS"]) * 86400


def result_token(image: Image) -> str:
    """A token that opens ``image`` without signing in, until its link version changes (hide, revoke)."""
    return make_token(RESULT_LINK, {"image": image.id, "v": image.link_version or 0})


def image_for_result_token(token: str) -> Image:
    """The image a result token opens, while it exists, is not hidden, its owner is not banned, and its links
    were not revoked or hidden since the token was made (its ``link_version`` is the token's).

    Raises:
        BadLink: bad or expired token, or the link is dead for one of those reasons.
    """
    payload = read_token(RESULT_LINK, token, result_link_seconds())
    image_id = payload.get("image") if isinstance(payload, dict) else None
    try:
        uuid.UUID(str(image_id))
    except ValueError as exc:
        raise BadLink() from exc
    image = db.session.get(Image, image_id)
    if image is None or image.is_hidden or image.is_held or image.user is None or image.user.is_banned:
        raise BadLink()
    if payload.get("v", 0) != (image.link_version or 0):  # links made before the versions existed are version 0
        raise BadLink()
    return image


def unsubscribe_token(user: User) -> str:
    """A token that turns off ``user``'s notification emails (it never expires: old emails keep working)."""
    return make_token(UNSUBSCRIBE, {"user": user.id})


def user_for_unsubscribe_token(token: str) -> User:
    """The user an unsubscribe token names.

    Raises:
        BadLink: bad token, or the account is gone.
    """
    payload = read_token(UNSUBSCRIBE, token, None)
    user_id = payload.get("user") if isinstance(payload, dict) else None
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None:
        raise BadLink()
    return user


def _password_fingerprint(user: User) -> str:
    # Changes whenever the password or the session version does, so a used reset link dies.
    material = f"{user.password_hash}:{user.session_version or 0}".encode()
    return hashlib.sha256(material).hexdigest()[:24]


def password_reset_token(user: User) -> str:
    """A single-use token to set a new password, valid for an hour."""
    return make_token(PASSWORD_RESET, {"user": user.id, "fp": _password_fingerprint(user)})


def user_for_password_reset_token(token: str) -> User:
    """The user a reset token is for, while it is fresh and unused.

    Raises:
        BadLink: bad, expired, already used (the password changed since), or the account is gone.
    """
    payload = read_token(PASSWORD_RESET, token, PASSWORD_RESET_SECONDS)
    if not isinstance(payload, dict) or not isinstance(payload.get("user"), int):
        raise BadLink()
    user = db.session.get(User, payload["user"])
    if user is None or user.is_banned:
        raise BadLink()
    if not hmac.compare_digest(str(payload.get("fp", "")), _password_fingerprint(user)):
        raise BadLink()
    return user
