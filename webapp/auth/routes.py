"""Account routes: thin wrappers over forms, the User table and the session helpers in ``session.py``."""
from __future__ import annotations

import logging
from functools import cache

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from redis.exceptions import RedisError
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ..api_tokens import revoke_all_tokens
from ..errors import render_error
from ..extensions import db, limiter
from ..mail.outbox import enqueue_email
from ..tables import User, password_method
from . import devices
from .forms import AccountForm, ChangePasswordForm, LoginForm
from .session import SESSIONS_DOWN, SIGNED_OUT_EVERYWHERE, end_every_session, end_session, safe_next, start_session

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)

LOGIN_FAILED = "That email and password do not match an account."


@cache
def _dummy_hash(method: str) -> str:
    """A hash to check unknown emails against, so they cost the same time as a wrong password."""
    return generate_password_hash("not anyone's password", method=method)


def _login_pair_key() -> str:
    """Throttle key for one account from one address: a stranger's failures never lock the owner out."""
    email = User.normalize_email(request.form.get("email", ""))[:254]
    return f"login-pair:{request.remote_addr}:{email}"


def _login_failed(response) -> bool:
    """Count only failed sign-ins against the limits (a success redirects)."""
    return response.status_code != 302


def _pair_limit() -> str:
    return current_app.config["LOGIN_LIMIT"]


def _ip_limit() -> str:
    return current_app.config["LOGIN_IP_LIMIT"]


def password_changed(user: User) -> None:
    """Email the owner that their password changed; never fails the change itself."""
    try:
        enqueue_email("jobs.mail.send_password_changed", user.id, description=f"password changed for user {user.id}")
    except RedisError:
        log.exception("could not queue the password-changed email for user %s", user.id)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_pair_limit, key_func=_login_pair_key, methods=["POST"], deduct_when=_login_failed)
@limiter.limit(_ip_limit, methods=["POST"], deduct_when=_login_failed)
def login():
    """Sign in; the same message, and the same time, for an unknown email and a wrong password."""
    next_url = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("studio.index"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = db.session.scalar(select(User).where(User.email == User.normalize_email(form.email.data)))
        if user is None:
            check_password_hash(_dummy_hash(password_method()), form.password.data)
            error = LOGIN_FAILED
        elif not user.check_password(form.password.data):
            error = LOGIN_FAILED
        elif user.is_banned:
            error = "This account has been suspended. Contact the site's administrators."
        else:
            try:
                start_session(user, remember=form.remember.data)
            except RedisError:
                return render_error(503, SESSIONS_DOWN)
            response = redirect(next_url or url_for("studio.index"))
            devices.notify_if_new(response, user)
            return response
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form, error=error, next_url=next_url), status


@bp.post("/logout")
def logout():
    """Sign out this browser (POST only, with the CSRF token); copies of its cookies stop working too."""
    if end_session():
        flash("You are signed out.", "info")
    else:
        flash("You are signed out, on every device (this one could not be signed out alone just now).", "info")
    return redirect(url_for("studio.index"))


@bp.post("/logout-everywhere")
@login_required
def logout_everywhere():
    """Sign out every browser and device of this account, this one too; with ``revoke_tokens`` ticked, revoke
    every API token as well (a token is not a session: without it, scripts keep working)."""
    user = current_user._get_current_object()
    end_every_session(user)
    revoked = revoke_all_tokens(user, commit=False) if request.form.get("revoke_tokens") else 0
    db.session.commit()
    end_session()
    flash(SIGNED_OUT_EVERYWHERE + (f" Your {revoked} API token(s) are revoked." if revoked else ""), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    """Profile settings and the change-password form."""
    form = AccountForm(obj=current_user)
    if form.validate_on_submit():
        current_user.display_name = (form.display_name.data or "").strip()
        current_user.notify_by_email = bool(form.notify_by_email.data)
        db.session.commit()
        flash("Your settings are saved.", "success")
        return redirect(url_for("auth.account"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/account.html", form=form, password_form=ChangePasswordForm()), status


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change the password; every other session of this user ends, and the owner gets an email."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if not current_user.check_password(form.current.data):
            form.current.errors.append("That is not your current password.")
        else:
            user = current_user._get_current_object()
            user.set_password(form.password.data)
            end_every_session(user)
            db.session.commit()
            start_session(user)  # this browser goes on, on a new session
            password_changed(user)
            flash("Your password is changed. Other devices have been signed out.", "success")
            return redirect(url_for("auth.account"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/account.html", form=AccountForm(obj=current_user), password_form=form), status
