"""Forgotten passwords: ask for a link by email, then set a new password with it.

The answer to "send me a link" is the same whether the address has an account or not, and the
lookup happens in the chore worker, so not even the response time tells them apart.
"""
from __future__ import annotations

import logging

from flask import current_app, flash, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user, logout_user
from flask_wtf import FlaskForm
from redis.exceptions import RedisError
from wtforms import EmailField
from wtforms.validators import DataRequired, Email, Length

from ..extensions import db, limiter
from ..links.routes import bad_link
from ..links.tokens import BadLink, user_for_password_reset_token
from ..mail.outbox import enqueue_email
from ..tables import User
from .forms import confirm_field, new_password_field
from .routes import bp, password_changed
from .session import end_every_session

log = logging.getLogger(__name__)

QUEUE_DOWN = "We cannot send email right now. Please try again in a few minutes."


class ForgotPasswordForm(FlaskForm):
    """The address to send a reset link to."""

    email = EmailField("Email", filters=[lambda value: value.strip() if isinstance(value, str) else value],
                       validators=[DataRequired("Enter your email."), Length(max=254),
                                   Email("Enter a valid email address.", check_deliverability=False)])


class ResetPasswordForm(FlaskForm):
    """A new password, typed twice."""

    password = new_password_field("New password", "Choose a new password.")
    confirm = confirm_field("Confirm new password", "Type the new password again.")


def _reset_email_key() -> str:
    """Throttle key for one address: the normalised email typed into the form."""
    return "reset-account:" + User.normalize_email(request.form.get("email", ""))[:254]


def _reset_limit() -> str:
    return current_app.config["RESET_LIMIT"]


@bp.route("/forgot", methods=["GET", "POST"])
@limiter.limit(_reset_limit, key_func=_reset_email_key, methods=["POST"])
@limiter.limit("20 per hour", methods=["POST"])
def forgot_password():
    """Ask for a reset link; the same answer whether the address has an account or not."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        email = User.normalize_email(form.email.data)
        try:
            enqueue_email("jobs.mail.send_password_reset", email, description="password reset email")
        except RedisError:
            log.exception("could not queue a password reset email")
            flash(QUEUE_DOWN, "danger")
            return render_template("auth/forgot_password.html", form=form), 503
        return render_template("auth/reset_sent.html", email=email)
    status = 400 if request.method == "POST" else 200
    return render_template("auth/forgot_password.html", form=form), status


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit("30 per hour", methods=["POST"])
def reset_password(token: str):
    """Set a new password with a fresh, unused link; every session of that user ends."""
    try:
        user = user_for_password_reset_token(token)
    except BadLink as exc:
        return bad_link("reset", exc.expired)
    form = ResetPasswordForm()
    form.account_email = user.email  # the password rule compares against the account's email
    if form.validate_on_submit():
        user.set_password(form.password.data)
        end_every_session(user)
        db.session.commit()
        password_changed(user)
        if current_user.is_authenticated:
            logout_user()
        session.clear()
        flash("Your password is changed and you are signed out everywhere. Sign in with the new password.", "success")
        return redirect(url_for("auth.login"), 303)
    status = 400 if request.method == "POST" else 200
    response = make_response(render_template("auth/reset_password.html", form=form, token=token), status)
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in this page's URL
    return response
