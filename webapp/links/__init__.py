"""Signed links from emails: the tokens (``tokens``) and the pages they open (``routes``)."""
from .routes import bp

__all__ = ["bp"]
