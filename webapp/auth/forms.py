"""Account forms; every one carries a CSRF token through Flask-WTF."""
from __future__ import annotations

from datetime import date

from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, ValidationError

from ..tables import ANONYMOUS_NAME
from .passwords import PASSWORD_MAX, password_problem


def _password_rule(form: FlaskForm, field: PasswordField) -> None:
    """The one password rule, checked against the form's email (sign-up) or the account's (change, reset)."""
    email = getattr(form, "account_email", None) or (form.email.data if "email" in form else None)
    if email is None and current_user.is_authenticated:
        email = current_user.email
    problem = password_problem(field.data or "", email)
    if problem:
        raise ValidationError(problem)


def new_password_field(label: str, missing: str) -> PasswordField:
    """A new password: required, and it must pass ``password_problem``."""
    return PasswordField(label, validators=[DataRequired(missing), _password_rule])


def confirm_field(label: str, missing: str) -> PasswordField:
    """The new password typed again; must equal the ``password`` field."""
    return PasswordField(label, validators=[DataRequired(missing), EqualTo("password", "The passwords do not match.")])


class RegisterForm(FlaskForm):
    """Sign up with an email and a password typed twice."""

    email = EmailField("Email", validators=[
        DataRequired("Enter your email."), Length(max=254),
        Email("Enter a valid email address.", check_deliverability=False)])
    password = new_password_field("Password", "Choose a password.")
    confirm = confirm_field("Confirm password", "Type the password again.")


class LoginForm(FlaskForm):
    """Sign in; ``remember`` keeps the session across browser restarts."""

    email = EmailField("Email", validators=[DataRequired("Enter your email."), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=PASSWORD_MAX)])
    remember = BooleanField("Keep me signed in")


class ChangePasswordForm(FlaskForm):
    """Change the password of the signed-in user."""

    current = PasswordField("Current password",
                            validators=[DataRequired("Enter your current password."), Length(max=PASSWORD_MAX)])
    password = new_password_field("New password", "Choose a new password.")
    confirm = confirm_field("Confirm new password", "Type the new password again.")


class AccountForm(FlaskForm):
    """Profile settings: the name others see and whether to get emails."""

    display_name = StringField("Display name", validators=[Length(max=64, message="Keep it under 64 characters.")],
                               description=f"Shown next to your public pictures; left blank, they show "
                                           f"“{ANONYMOUS_NAME}”.", render_kw={"placeholder": ANONYMOUS_NAME})
    notify_by_email = BooleanField("Email me when my art is ready")


class ApiTokenForm(FlaskForm):
    """A new personal API token: a name and an optional expiry date."""

    name = StringField("Name", validators=[DataRequired("Name the token, e.g. the program that will use it."),
                                           Length(max=64, message="Keep the name under 64 characters.")])
    expires_on = DateField("Expires on", validators=[Optional()])

    def validate_expires_on(self, field: DateField) -> None:
        if field.data is not None and field.data <= date.today():
            raise ValidationError("Choose a date after today, or leave it blank for no expiry.")
