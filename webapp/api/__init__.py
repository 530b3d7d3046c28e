"""The JSON API that the progress page polls."""
from .routes import bp

__all__ = ["bp"]
