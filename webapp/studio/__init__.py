"""The studio: the prompt form and its in-page JSON, the progress page, cancel, my queue, prompt history, the landing page."""
from .routes import bp

__all__ = ["bp"]
