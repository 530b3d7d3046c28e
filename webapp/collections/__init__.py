"""Collections: named sets of my images, private until shared by a signed link the owner can revoke."""
from .routes import bp

__all__ = ["bp"]
