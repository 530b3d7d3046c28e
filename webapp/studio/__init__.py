"""The studio: the prompt form and its in-page JSON, the progress page, cancel, my queue, prompt history,
the landing page, and new images from an image."""
from . import control_routes, derived  # noqa: F401 (register the control, variation and upscale routes on bp)
from .routes import bp

__all__ = ["bp"]
