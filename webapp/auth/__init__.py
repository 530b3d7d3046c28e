"""Accounts: register, sign in, sign out, change password."""
from .routes import bp

__all__ = ["bp"]
