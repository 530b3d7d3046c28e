"""The one gate of every API: who is calling, per-token rate limits, CSRF only for cookie sessions.

A token acts as its owner: the gate makes the owner ``current_user`` for this request only (no session
is written), so every access rule, limit and ban of the site applies unchanged. ``/api/v1`` also
accepts the session cookie, but then a write needs the CSRF token, so a cookie never authorises a
cross-site API write.
"""
from __future__ import annotations

import base64
import binascii
import enum

from flask import Blueprint, current_app, g, request
from flask_limiter.util import get_remote_address
from flask_login import current_user

from ..api_tokens import TokenRejected, find_token, owner_of_public_id, public_id_of
from ..extensions import csrf, limiter
from ..tables import ApiToken, User
from .problems import ApiError

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class Scheme(enum.StrEnum):
    """How an API's clients present a token."""

    BEARER = "Bearer"  # Authorization: Bearer <token>
    BASIC = "Basic"  # Authorization: Basic base64(email:token), as AUTOMATIC1111's --api-auth


def _unauthorized(scheme: Scheme, message: str) -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": f'{scheme.value} realm="Easel API"'}, kind="invalid_api_key")


def _credentials(scheme: Scheme) -> str | None:
    """The token presented in the Authorization header, checked against the Basic user name; None if absent."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    kind, _, value = header.partition(" ")
    if kind.lower() != scheme.value.lower() or not value.strip():
        raise _unauthorized(scheme, f"Send the API token as {scheme.value} authorization.")
    if scheme is Scheme.BEARER:
        return value.strip()
    try:
        email, _, token = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise _unauthorized(scheme, "The Basic authorization is not valid base64 of email:token.") from None
    g.api_basic_email = User.normalize_email(email)
    return token


def authenticate(scheme: Scheme, allow_session: bool) -> None:
    """Make the caller ``current_user`` or refuse with 401 (before_request of every API blueprint)."""
    secret = _credentials(scheme)
    if secret is None:
        if allow_session and current_user.is_authenticated:
            if request.method not in SAFE_METHODS and current_app.config.get("WTF_CSRF_ENABLED", True):
                csrf.protect()  # a cookie alone never authorises a write: the X-CSRFToken header must match
            return
        raise _unauthorized(scheme, "This API needs an API token: create one on your account page.")
    try:
        token = find_token(secret)
    except TokenRejected as exc:
        raise _unauthorized(scheme, f"The API token was refused: {exc}.") from None
    email = g.pop("api_basic_email", None)
    if email is not None and email != token.user.email:
        raise _unauthorized(scheme, "The API token was refused: it belongs to another account.")
    # The owner is the current user for this request only (Flask-Login's request loader reads it, see
    # webapp.auth.session.load_user_from_request); nothing is written to the session.
    g.api_token = token


def current_token() -> ApiToken | None:
    """The token this request came with (None for a cookie session)."""
    return g.get("api_token")


def rate_limit_key() -> str:
    """Per account, across all its tokens and its browser session (a token's owner is read by its public id,
    before the gate runs); per address for a token that names no account, and for no token at all."""
    header = request.headers.get("Authorization", "")
    kind, _, value = header.partition(" ")
    secret = value.strip()
    if kind.lower() == "basic":
        try:
            secret = base64.b64decode(secret, validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            secret = ""
    public_id = public_id_of(secret) if secret else None
    if public_id:
        owner = owner_of_public_id(public_id)
        return f"api-user:{owner}" if owner is not None else f"api-ip:{get_remote_address()}"
    if current_user.is_authenticated:
        return f"api-user:{current_user.id}"
    return f"api-ip:{get_remote_address()}"


def _api_rate_limit() -> str:
    return current_app.config["API_RATE_LIMIT"]


def protect(blueprint: Blueprint, scheme: Scheme, allow_session: bool = False) -> None:
    """Put ``blueprint`` behind the gate: token auth, its rate limit, CSRF only for cookie sessions."""
    csrf.exempt(blueprint)
    limiter.shared_limit(_api_rate_limit, scope="api", key_func=rate_limit_key)(blueprint)

    @blueprint.before_request
    def gate() -> None:
        authenticate(scheme, allow_session)
