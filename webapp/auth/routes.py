"""Account routes: thin wrappers over forms, the User table and Flask-Login."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..extensions import db, limiter
from ..tables import User
from .forms import AccountForm, ChangePasswordForm, LoginForm, RegisterForm
from .session import safe_next

bp = Blueprint("auth", __name__)

LOGIN_FAILED = "That email and password do not match an account."


def _login_account_key() -> str:
    """Throttle key for one account: the normalised email typed into the form."""
    return "login-account:" + User.normalize_email(request.form.get("email", ""))[:254]


def _login_failed(response) -> bool:
    """Count only failed sign-ins against the limits (a success redirects)."""
    return response.status_code != 302


def _account_limit() -> str:
    return current_app.config["LOGIN_LIMIT"]


def _ip_limit() -> str:
    return current_app.config["LOGIN_IP_LIMIT"]


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def register():
    """Create an account and sign in."""
    if current_user.is_authenticated:
        return redirect(url_for("studio.index"))
    form = RegisterForm()
    if form.validate_on_submit():
        user = User(email=User.normalize_email(form.email.data))
        user.set_password(form.password.data)
        db.session.add(user)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            form.email.errors.append("An account with this email already exists. Sign in instead.")
        else:
            login_user(user)
            flash("Welcome to Easel! Describe a picture to get started.", "success")
            return redirect(url_for("studio.index"))
    elif form.email.data and db.session.scalar(
        select(User.id).where(User.email == User.normalize_email(form.email.data))
    ):
        form.email.errors = [*form.email.errors, "An account with this email already exists. Sign in instead."]
    status = 400 if request.method == "POST" else 200
    return render_template("auth/register.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_account_limit, key_func=_login_account_key, methods=["POST"], deduct_when=_login_failed)
@limiter.limit(_ip_limit, methods=["POST"], deduct_when=_login_failed)
def login():
    """Sign in; the same message for an unknown email and a wrong password."""
    next_url = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("studio.index"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = db.session.scalar(select(User).where(User.email == User.normalize_email(form.email.data)))
        if user is None or not user.check_password(form.password.data):
            error = LOGIN_FAILED
        elif user.is_banned:
            error = "This account has been suspended. Contact the site's administrators."
        else:
            login_user(user, remember=form.remember.data)
            return redirect(next_url or url_for("studio.index"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form, error=error, next_url=next_url), status


@bp.post("/logout")
def logout():
    """Sign out (POST only, with the CSRF token)."""
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("studio.index"))


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
    """Change the password; every other session of this user ends."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if not current_user.check_password(form.current.data):
            form.current.errors.append("That is not your current password.")
        else:
            user = current_user._get_current_object()
            user.set_password(form.password.data)
            user.end_sessions()
            db.session.commit()
            login_user(user)  # keep this session, with the new session version
            flash("Your password is changed. Other devices have been signed out.", "success")
            return redirect(url_for("auth.account"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/account.html", form=AccountForm(obj=current_user), password_form=form), status
