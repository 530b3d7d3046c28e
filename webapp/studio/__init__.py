"""The studio: the prompt form, the progress page, cancel, and new images from an image."""
from . import derived  # noqa: F401 (registers the variation and upscale routes on bp)
from .routes import bp

__all__ = ["bp"]
