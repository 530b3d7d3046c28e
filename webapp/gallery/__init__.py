"""A person's images: the gallery (search, filters, bulk actions, ZIP), the detail page, files, star, publish,
delete; Explore and reports."""
from . import bulk, explore  # noqa: F401  (add their routes to the blueprint)
from .routes import bp

__all__ = ["bp"]
