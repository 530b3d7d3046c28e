"""The admin area: admins only, 404 for everyone else."""
from .routes import bp

__all__ = ["bp"]
