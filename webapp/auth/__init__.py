"""Accounts: register, sign in, sign out, change password, reset a forgotten password."""
from . import reset, signup  # noqa: F401  (add the reset and sign-up routes to bp)
from .routes import bp

__all__ = ["bp"]
