"""The one rule for every new password: sign-up, reset, change and ``flask create-admin``.

Length only, no composition rules (NIST SP 800-63B): 8 to 128 characters, not one of the 10,000 most
common passwords (zxcvbn's frequency list, shipped in the wheel: no network), not the email's name.
"""
from __future__ import annotations

from functools import cache

PASSWORD_MIN = 8
PASSWORD_MAX = 128
COMMON_COUNT = 10_000


@cache
def common_passwords() -> frozenset[str]:
    """The ``COMMON_COUNT`` most used passwords, lower-cased (loaded once, on first use)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(word.lower() for word in FREQUENCY_LISTS["passwords"][:COMMON_COUNT])


def password_problem(password: str, email: str | None = None) -> str | None:
    """What is wrong with ``password`` as a new password for ``email``, in words; None when it is fine."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return f"Use {PASSWORD_MIN} to {PASSWORD_MAX} characters."
    if len(set(password)) < 3 or password.lower() in common_passwords():
        return "That password is too easy to guess: it is one of the most common passwords."
    local = (email or "").split("@", 1)[0].lower()
    if local and password.lower() == local:
        return "Your password must not be your email name."
    return None
