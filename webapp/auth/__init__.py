"""Accounts: register, sign in, sign out, change password, reset a forgotten password."""
from . import oidc, reset, signup, tokens  # noqa: F401  (add the sign-in with providers, reset, sign-up and API token routes to bp)
from .routes import bp

__all__ = ["bp"]
