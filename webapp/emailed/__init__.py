"""Pages that emailed links open without signing in: result links (``/s/<token>``) and unsubscribe."""
from .routes import bp

__all__ = ["bp"]
