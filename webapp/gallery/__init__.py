"""A person's images: the gallery, the detail page, files, star, publish, delete; Explore and reports."""
from . import explore  # noqa: F401  (adds /explore and reports to the blueprint)
from .routes import bp

__all__ = ["bp"]
