"""A person's images: the gallery, the detail page, files, star, publish, delete."""
from .routes import bp

__all__ = ["bp"]
