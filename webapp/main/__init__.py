"""The landing page and the studio."""
from .routes import bp

__all__ = ["bp"]
