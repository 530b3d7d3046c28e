"""Sign-up without account enumeration: the answer is "check your email" whether or not the address
has an account. A new address gets a link that finishes the sign-up (proving the address); a taken
one gets a note to its owner. The address is looked up in the chore worker, not here, so not even the
response time tells the two apart; the password is hashed in both cases.

Pending sign-ups live in Redis under a hash of the emailed token for ``SIGNUP_SECONDS``.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import secrets

from flask import current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import generate_password_hash

from .. import services
from ..errors import render_error
from ..extensions import db, limiter
from ..links.routes import bad_link
from ..links.tokens import MAX_TOKEN_LENGTH, SIGNUP_SECONDS
from ..mail.outbox import enqueue_email
from ..tables import User, password_method
from . import devices
from .forms import RegisterForm
from .routes import bp
from .session import SESSIONS_DOWN, start_session

log = logging.getLogger(__name__)

QUEUE_DOWN = "We cannot send email right now. Please try again in a few minutes."


def _key(token: str) -> str:
    return "easel:signup:" + hashlib.sha256(token.encode()).hexdigest()


def add_pending(email: str, password_hash: str) -> str:
    """Keep a sign-up until its emailed link is used; returns the link's token."""
    token = secrets.token_urlsafe(32)
    services.redis().set(_key(token), json.dumps({"email": email, "hash": password_hash}), ex=SIGNUP_SECONDS)
    return token


def take_pending(token: str) -> dict | None:
    """The pending sign-up for ``token``, removed (links work once); None when unknown or expired."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    raw = services.redis().getdel(_key(token))
    return json.loads(raw) if raw else None


def is_pending(token: str) -> bool:
    """True while ``token`` is an unused, unexpired sign-up link (nothing is removed)."""
    return bool(token) and len(token) <= MAX_TOKEN_LENGTH and bool(services.redis().exists(_key(token)))


def forget_pending(token: str) -> None:
    """Drop a pending sign-up (its address already has an account)."""
    services.redis().delete(_key(token))


def _register_limit() -> str:
    return current_app.config["REGISTER_LIMIT"]


def from_trusted_network() -> bool:
    """True when the client's address is inside ``REGISTER_TRUSTED_NETWORKS`` (no sign-up limit there)."""
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in network for network in current_app.config["REGISTER_TRUSTED_NETWORKS"])


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(_register_limit, methods=["POST"], exempt_when=from_trusted_network)
def register():
    """Ask for an account: the same "check your email" page whether or not the address is taken."""
    if current_user.is_authenticated:
        return redirect(url_for("studio.index"))
    if current_app.config.get("OIDC_ONLY"):
        return sign_up_through_providers()
    form = RegisterForm()
    if form.validate_on_submit():
        email = User.normalize_email(form.email.data)
        try:
            token = add_pending(email, generate_password_hash(form.password.data, method=password_method()))
            if current_app.config["MAIL_BACKEND"] == "console":
                return _without_mail(email, token)
            enqueue_email("jobs.mail.send_signup", email, token, description="sign-up email")
        except RedisError:
            log.exception("could not queue a sign-up email")
            flash(QUEUE_DOWN, "danger")
            return render_template("auth/register.html", form=form), 503
        return render_template("auth/signup_sent.html", email=email)
    status = 400 if request.method == "POST" else 200
    return render_template("auth/register.html", form=form), status


def sign_up_through_providers():
    """``OIDC_ONLY=1``: no password sign-up; accounts are made by signing in with a provider (nothing is stored)."""
    flash("Accounts here are made by signing in with your organisation's account.", "info")
    return redirect(url_for("auth.login"), 303)


def _without_mail(email: str, token: str):
    """A site with no mail server (``MAIL_BACKEND=console``) cannot email the link, so it shows it.

    Hiding whether an address has an account needs a mailbox only its owner reads; without one, the
    page tells a taken address to sign in instead (the README says so).
    """
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        forget_pending(token)
        return render_template("auth/signup_sent.html", email=email, taken=True)
    return render_template("auth/signup_sent.html", email=email, link=url_for("auth.finish_signup", token=token))


@bp.route("/welcome/<token>", methods=["GET", "POST"])
def finish_signup(token: str):
    """The emailed link: GET shows a button (mail scanners open links), POST makes the account."""
    if current_app.config.get("OIDC_ONLY"):
        return sign_up_through_providers()
    if request.method == "GET":
        try:
            pending = is_pending(token)
        except RedisError:
            return render_error(503, SESSIONS_DOWN)
        if not pending:  # unknown, used or expired: say so before the page claims the address is confirmed
            return bad_link("signup", expired=False)
        response = make_response(render_template("auth/finish_signup.html", token=token))
        response.headers["Referrer-Policy"] = "no-referrer"  # the token is in this page's URL
        return response
    try:
        pending = take_pending(token)
    except RedisError:
        return render_error(503, SESSIONS_DOWN)
    if pending is None:
        return bad_link("signup", expired=False)
    user = User(email=pending["email"], password_hash=pending["hash"])
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:  # made meanwhile through another link
        db.session.rollback()
        return bad_link("signup", expired=False)
    try:
        start_session(user)
    except RedisError:
        return render_error(503, SESSIONS_DOWN)
    flash("Welcome to Easel! Describe a picture to get started.", "success")
    response = redirect(url_for("studio.index"), 303)
    devices.notify_if_new(response, user)  # the account's first sign-in: no email, this browser known
    return response
