"""The studio: the prompt form, the progress page, cancel."""
from .routes import bp

__all__ = ["bp"]
