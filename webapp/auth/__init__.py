"""Accounts: register, sign in, sign out, change password, reset a forgotten password."""
from . import reset, signup, tokens  # noqa: F401  (add the reset, sign-up and API token routes to bp)
from .routes import bp

__all__ = ["bp"]
