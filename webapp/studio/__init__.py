"""The studio: the prompt form and its in-page JSON, the progress page, cancel, my queue, prompt history,
the landing page, and new images from an image."""
from . import (
    control_routes,  # noqa: F401 (registers the control preview and image routes on bp)
    derived,  # noqa: F401 (registers the variation and upscale routes on bp)
    editor,  # noqa: F401 (registers the editor and outpaint routes on bp)
)
from .routes import bp

__all__ = ["bp"]
