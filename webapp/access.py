"""Who may see what. Anything not allowed is a 404, so ids never leak."""
from __future__ import annotations

import uuid

from flask import abort
from flask_login import current_user

from .extensions import db
from .models import Generation, Image


def _valid_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError):
        return False
    return True


def owned_generation_or_404(generation_id: str) -> Generation:
    """The generation, if the signed-in user owns it or is an admin."""
    generation = db.session.get(Generation, generation_id) if _valid_uuid(generation_id) else None
    if generation is None or not current_user.is_authenticated:
        abort(404)
    if generation.user_id != current_user.id and not current_user.is_admin:
        abort(404)
    return generation


def can_view_image(image: Image) -> bool:
    """Owner, admin, or anyone signed in when the image is public and not hidden."""
    if not current_user.is_authenticated:
        return False
    if image.user_id == current_user.id or current_user.is_admin:
        return True
    return image.is_public and not image.is_hidden


def viewable_image_or_404(image_id: str) -> Image:
    """The image, if the signed-in user may see it."""
    image = db.session.get(Image, image_id) if _valid_uuid(image_id) else None
    if image is None or not can_view_image(image):
        abort(404)
    return image


def owned_image_or_404(image_id: str) -> Image:
    """The image, if the signed-in user owns it or is an admin (for changes)."""
    image = db.session.get(Image, image_id) if _valid_uuid(image_id) else None
    if image is None or not current_user.is_authenticated:
        abort(404)
    if image.user_id != current_user.id and not current_user.is_admin:
        abort(404)
    return image
