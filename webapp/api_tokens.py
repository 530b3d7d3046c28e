"""Personal API tokens: issue, find, revoke. Only a SHA-256 of each secret is stored.

A token reads ``easel_<public id>_<secret>``: the public id finds the row without a secret-dependent
lookup, the secret (256 random bits) is compared by hash in constant time. High-entropy secrets need
no slow KDF: nobody can guess them, and the hash only protects a stolen database.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select, update

from .extensions import db
from .tables import ApiToken, User, utcnow

PREFIX = "easel_"
NAME_MAX = 64
# last_used_at is written at most this often per token, so every API call is not a database write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenRejected(Exception):
    """The token is unknown, revoked, expired, or its owner is banned (all answer 401)."""


@dataclass(frozen=True)
class IssuedToken:
    """A new token's row and its secret, which is shown once and never stored."""

    row: ApiToken
    secret: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TooManyTokens(Exception):
    """The person already has ``MAX_TOKENS_PER_USER`` live tokens; the message says what to do."""


def live_token_count(user: User) -> int:
    """Tokens of ``user`` that work now (neither revoked nor expired)."""
    return db.session.scalar(select(func.count()).select_from(ApiToken).where(
        ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None),
        (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > utcnow()))) or 0


def issue_token(user: User, name: str, expires_at: datetime | None = None) -> IssuedToken:
    """Create and commit a token for ``user``; the returned secret is the only copy.

    Raises:
        TooManyTokens: ``user`` has ``MAX_TOKENS_PER_USER`` live tokens already.
    """
    cap = current_app.config.get("MAX_TOKENS_PER_USER", 10)
    if live_token_count(user) >= cap:
        raise TooManyTokens(f"You have {cap} working tokens, the most an account may have. Revoke one you no "
                            f"longer use, then make this one.")
    public_id = secrets.token_hex(6)
    secret = f"{PREFIX}{public_id}_{secrets.token_urlsafe(32)}"
    row = ApiToken(user_id=user.id, name=name.strip()[:NAME_MAX], public_id=public_id, secret_hash=_hash(secret),
                   expires_at=expires_at)
    db.session.add(row)
    db.session.commit()
    return IssuedToken(row=row, secret=secret)


def token_status(token: ApiToken) -> str:
    """``active``, ``revoked`` or ``expired``, as lists show it."""
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= utcnow():
        return "expired"
    return "active"


def find_token(secret: str) -> ApiToken:
    """The live token for ``secret``; marks it used.

    Raises:
        TokenRejected: malformed, unknown, revoked, expired, or the owner is banned.
    """
    body = secret.strip()
    if not body.startswith(PREFIX) or len(body) > 200:
        raise TokenRejected("not an Easel API token")
    public_id, _, _ = body[len(PREFIX):].partition("_")
    row = db.session.scalar(select(ApiToken).where(ApiToken.public_id == public_id))
    if row is None or not hmac.compare_digest(row.secret_hash, _hash(body)):
        raise TokenRejected("unknown API token")
    status = token_status(row)
    if status != "active":
        raise TokenRejected(f"this API token is {status}")
    if row.user.is_banned:
        raise TokenRejected("this account has been suspended")
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
        db.session.commit()
    return row


def public_id_of(secret: str) -> str | None:
    """The non-secret id part of a presented token (for rate-limit keys), without touching the database."""
    body = secret.strip()
    if not body.startswith(PREFIX):
        return None
    return body[len(PREFIX):].partition("_")[0][:16] or None


def owner_of_public_id(public_id: str) -> int | None:
    """The account id a token's public id belongs to (for per-account rate limits; no secret is checked)."""
    return db.session.scalar(select(ApiToken.user_id).where(ApiToken.public_id == public_id))


def tokens_of(user: User) -> list[ApiToken]:
    """A person's tokens, newest first (revoked ones included, so the list tells the story)."""
    return list(db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                   .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def revoke_token(token: ApiToken, commit: bool = True) -> bool:
    """Revoke at once; False when it already was. ``commit=False`` leaves it in the caller's transaction."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    if commit:
        db.session.commit()
    return True


def revoke_all_tokens(user: User, commit: bool = True) -> int:
    """Revoke every live token of ``user`` at once; how many. ``commit=False`` leaves it in the caller's transaction."""
    count = db.session.execute(update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                               .values(revoked_at=utcnow())).rowcount
    if commit:
        db.session.commit()
    return count
