"""Accounts: register, sign in, sign out, change password, reset a forgotten password."""
from . import reset  # noqa: F401  (adds the reset routes to bp)
from .routes import bp

__all__ = ["bp"]
