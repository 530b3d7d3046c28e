"""The one rule for every new password: sign-up, reset, change and ``flask create-admin``."""
from __future__ import annotations

PASSWORD_MIN = 8
PASSWORD_MAX = 256


def password_problem(password: str, email: str | None = None) -> str | None:
    """What is wrong with ``password`` as a new password for ``email``, in words; None when it is fine."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return f"Use {PASSWORD_MIN} to {PASSWORD_MAX} characters."
    if len(set(password)) < 3:
        return "That password is too easy to guess: mix more characters."
    local = (email or "").split("@", 1)[0].lower()
    if local and password.lower() == local:
        return "Your password must not be your email name."
    return None
