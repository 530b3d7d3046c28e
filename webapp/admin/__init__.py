"""The admin area: one blueprint, one module per area, all behind one gate (404 for non-admins)."""
from . import audit, dashboard, groups, images, models, reports, styles, terms, tokens, users, wildcards  # noqa: F401  (each module adds its routes)
from .base import bp

__all__ = ["bp"]
