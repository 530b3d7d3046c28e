"""Sign in with an organisation's accounts: OpenID Connect through Authlib's Flask client.

Each provider in ``OIDC_PROVIDERS`` is found by discovery (``<issuer>/.well-known/openid-configuration``) at
its first use, never at start-up. Authlib sends PKCE (S256), a state and a nonce, and on the way back checks
the state against this browser's session, the ID token's signature against the provider's JWKS, its issuer,
audience, expiry and nonce. Easel then takes the email only when the provider says it is verified, keeps it
to ``OIDC_ALLOWED_DOMAINS``, and signs in the account linked to the provider's subject, else the account of
that email (linking it), else a new account.
"""
from __future__ import annotations

import logging
import secrets

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client.errors import MismatchingStateError
from authlib.integrations.flask_client import OAuth
from flask import Flask, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user
from joserfc.errors import JoseError
from redis.exceptions import RedisError
from requests import RequestException
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..errors import render_error
from ..extensions import db
from ..tables import User, UserIdentity, utcnow
from . import devices
from .forms import LoginForm
from .routes import bp
from .session import SESSIONS_DOWN, safe_next, start_session

log = logging.getLogger(__name__)

EXTENSION = "easel_oidc"
NEXT_KEY = "oidc_next"


@bp.record_once
def _setup(state) -> None:
    """One Authlib registry per app, with a client for each configured provider (no network here)."""
    app: Flask = state.app
    oauth = OAuth(app)
    for name, provider in app.config.get("OIDC_PROVIDERS", {}).items():
        oauth.register(
            name, client_id=provider["client_id"], client_secret=provider["client_secret"],
            server_metadata_url=f"{provider['issuer']}/.well-known/openid-configuration",
            client_kwargs={"scope": provider["scope"], "code_challenge_method": "S256",
                           "default_timeout": app.config.get("OIDC_TIMEOUT", 10)})
    app.extensions[EXTENSION] = oauth


def providers() -> dict[str, dict]:
    """The configured providers by name (``issuer``, ``label`` …)."""
    return current_app.config.get("OIDC_PROVIDERS", {})


def _client_or_404(name: str):
    if name not in providers():
        abort(404)
    return current_app.extensions[EXTENSION].create_client(name)


class SignInRefused(Exception):
    """The provider's answer cannot sign anyone in; the message says why (nothing was changed)."""

    def __init__(self, message: str, status: int = 403):
        super().__init__(message)
        self.status = status


def _refuse(message: str, status: int):
    return render_template("auth/login.html", form=LoginForm(formdata=None), error=message, next_url=None), status


@bp.get("/oidc/<name>")
def oidc_start(name: str):
    """Send the browser to the provider, with state, nonce and a PKCE challenge kept in this session."""
    client = _client_or_404(name)
    next_url = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("studio.index"))
    session[NEXT_KEY] = next_url
    try:
        return client.authorize_redirect(url_for("auth.oidc_callback", name=name, _external=True))
    except (RequestException, AuthlibBaseError, ValueError, KeyError) as exc:
        log.warning("OIDC provider %s: discovery failed: %s", name, exc)
        return render_error(503, f"{providers()[name]['label']} does not answer right now, so you cannot sign in "
                                 f"with it. Try again in a minute.")


@bp.get("/oidc/<name>/callback")
def oidc_callback(name: str):
    """The provider's answer: check it, find or make the account, sign in."""
    client = _client_or_404(name)
    label = providers()[name]["label"]
    try:
        token = client.authorize_access_token(
            claims_options={"iss": {"essential": True, "value": providers()[name]["issuer"]}})
    except MismatchingStateError:
        return _refuse("This sign-in did not start in this browser, or it was already used. Start again.", 400)
    except (JoseError, AuthlibBaseError) as exc:
        log.warning("OIDC provider %s refused or sent a bad answer: %s", name, exc)
        return _refuse(f"{label} did not sign you in. Start again; if it keeps failing, ask your administrator.", 400)
    except RequestException as exc:
        log.warning("OIDC provider %s: token request failed: %s", name, exc)
        return render_error(503, f"{label} does not answer right now. Try again in a minute.")
    claims = token.get("userinfo")
    if not claims or not claims.get("sub"):
        return _refuse(f"{label} sent no ID token, so Easel cannot tell who you are.", 400)
    try:
        user = account_for(name, dict(claims))
    except SignInRefused as exc:
        return _refuse(str(exc), exc.status)
    next_url = session.get(NEXT_KEY)
    try:
        start_session(user)
    except RedisError:
        return render_error(503, SESSIONS_DOWN)
    response = redirect(next_url or url_for("studio.index"), 303)
    devices.notify_if_new(response, user)
    return response


def _verified(claims: dict) -> bool:
    # Some providers send the flag as a string.
    return claims.get("email_verified") is True or str(claims.get("email_verified")).lower() == "true"


def account_for(name: str, claims: dict) -> User:
    """The account the provider's ID token claims sign in, linked or made now.

    Raises:
        SignInRefused: no verified email, a domain outside ``OIDC_ALLOWED_DOMAINS``, or a suspended account.
    """
    label = providers()[name]["label"]
    email = User.normalize_email(claims.get("email") or "")
    if not email or "@" not in email or len(email) > 254:
        raise SignInRefused(f"{label} did not share your email address, so Easel cannot sign you in.")
    if not _verified(claims):
        raise SignInRefused(f"{label} says your email address {email} is not verified. Verify it there, then "
                            f"sign in again.")
    allowed = current_app.config.get("OIDC_ALLOWED_DOMAINS") or []
    if allowed and email.rsplit("@", 1)[1] not in allowed:
        raise SignInRefused(f"Accounts of {email.rsplit('@', 1)[1]} cannot sign in here; this site takes "
                            f"{', '.join('@' + domain for domain in allowed)} only.")
    subject = str(claims["sub"])[:255]
    identity = db.session.scalar(select(UserIdentity).where(UserIdentity.provider == name,
                                                           UserIdentity.subject == subject))
    if identity is not None:
        user = db.session.get(User, identity.user_id)
    else:
        user = db.session.scalar(select(User).where(User.email == email))
        if user is None:  # first sign-in: an account with a password nobody knows (a reset can set one)
            user = User(email=email)
            user.set_password(secrets.token_urlsafe(32))
            db.session.add(user)
            db.session.flush()
            flash("Welcome to Easel! Describe a picture to get started.", "success")
        identity = UserIdentity(user_id=user.id, provider=name, issuer=providers()[name]["issuer"], subject=subject)
        db.session.add(identity)
    if user.is_banned:
        db.session.rollback()
        raise SignInRefused("This account has been suspended. Contact the site's administrators.")
    identity.email, identity.last_used_at = email, utcnow()
    try:
        db.session.commit()
    except IntegrityError:  # the same person's other tab got there first
        db.session.rollback()
        identity = db.session.scalar(select(UserIdentity).where(UserIdentity.provider == name,
                                                               UserIdentity.subject == subject))
        if identity is None:
            raise SignInRefused("Signing in failed for a moment; start again.", 409) from None
        user = db.session.get(User, identity.user_id)
    return user
