"""Account forms; every one carries a CSRF token through Flask-WTF."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError

PASSWORD_MIN = 8
PASSWORD_MAX = 256


def new_password_field(label: str, missing: str) -> PasswordField:
    """A new password: required, within the length limits."""
    return PasswordField(label, validators=[
        DataRequired(missing),
        Length(PASSWORD_MIN, PASSWORD_MAX, f"Use {PASSWORD_MIN} to {PASSWORD_MAX} characters.")])


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

    def validate_password(self, field: PasswordField) -> None:
        """Refuse passwords that are one character repeated or only the email's name."""
        value = field.data or ""
        if value and len(set(value)) < 3:
            raise ValidationError("That password is too easy to guess: mix more characters.")
        local = (self.email.data or "").split("@", 1)[0].lower()
        if local and value.lower() == local:
            raise ValidationError("Your password must not be your email name.")


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

    display_name = StringField("Display name", validators=[Length(max=64, message="Keep it under 64 characters.")])
    notify_by_email = BooleanField("Email me when my art is ready")
