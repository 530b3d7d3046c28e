"""Account forms; every one carries a CSRF token through Flask-WTF."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError

PASSWORD_MIN = 8
PASSWORD_MAX = 256


class RegisterForm(FlaskForm):
    """Sign up with an email and a password typed twice."""

    email = EmailField("Email", validators=[
        DataRequired("Enter your email."), Length(max=254),
        Email("Enter a valid email address.", check_deliverability=False)])
    password = PasswordField(
        "Password",
        validators=[
            DataRequired("Choose a password."),
            Length(PASSWORD_MIN, PASSWORD_MAX, f"Use {PASSWORD_MIN} to {PASSWORD_MAX} characters."),
        ],
    )
    confirm = PasswordField(
        "Confirm password",
        validators=[DataRequired("Type the password again."), EqualTo("password", "The passwords do not match.")],
    )

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
    password = PasswordField(
        "New password",
        validators=[
            DataRequired("Choose a new password."),
            Length(PASSWORD_MIN, PASSWORD_MAX, f"Use {PASSWORD_MIN} to {PASSWORD_MAX} characters."),
        ],
    )
    confirm = PasswordField(
        "Confirm new password",
        validators=[DataRequired("Type the new password again."), EqualTo("password", "The passwords do not match.")],
    )


class AccountForm(FlaskForm):
    """Profile settings: the name others see and whether to get emails."""

    display_name = StringField("Display name", validators=[Length(max=64, message="Keep it under 64 characters.")])
    notify_by_email = BooleanField("Email me when my art is ready")
