"""Who may see what. Anything not allowed is a 404, so ids never leak."""
from __future__ import annotations

import uuid
from typing import TypeVar

from flask import abort
from flask_login import current_user
from sqlalchemy import select

from .extensions import db
from .tables import ApiToken, Generation, Image

Owned = TypeVar("Owned", Generation, Image)

MAX_SELECTION = 1000  # ids per bulk request; a gallery page holds 24


def _get_or_none(model: type[Owned], row_id: str) -> Owned | None:
    """The row with this id, or None (also for ids that are not UUIDs)."""
    try:
        uuid.UUID(row_id)
    except (ValueError, TypeError):
        return None
    return db.session.get(model, row_id)


def _is_owner_or_admin(row: Generation | Image) -> bool:
    return current_user.is_authenticated and (row.user_id == current_user.id or current_user.is_admin)


def _owned_or_404(model: type[Owned], row_id: str) -> Owned:
    row = _get_or_none(model, row_id)
    if row is None or not (current_user.is_authenticated and row.user_id == current_user.id):
        abort(404)
    return row


def owned_token_or_404(token_id: int) -> ApiToken:
    """One of the signed-in user's API tokens (admins revoke others' through the audited admin page)."""
    token = db.session.get(ApiToken, token_id)
    if token is None or not (current_user.is_authenticated and token.user_id == current_user.id):
        abort(404)
    return token


def viewable_generation_or_404(generation_id: str) -> Generation:
    """The generation, if the signed-in user owns it or is an admin (to look, not to change)."""
    generation = _get_or_none(Generation, generation_id)
    if generation is None or not _is_owner_or_admin(generation):
        abort(404)
    return generation


def owned_generation_or_404(generation_id: str) -> Generation:
    """The generation, if the signed-in user owns it (owners' actions; admins use the audited admin ones)."""
    return _owned_or_404(Generation, generation_id)


def owned_image_or_404(image_id: str) -> Image:
    """The image, if the signed-in user owns it (owners' actions; admins use the audited admin ones)."""
    return _owned_or_404(Image, image_id)


def can_view_image(image: Image) -> bool:
    """Owner, admin, or anyone signed in when the image is public, not hidden and not held."""
    if _is_owner_or_admin(image):
        return True
    return current_user.is_authenticated and image.is_public and not image.is_hidden and not image.is_held


def viewable_image_or_404(image_id: str) -> Image:
    """The image, if the signed-in user may see it."""
    image = _get_or_none(Image, image_id)
    if image is None or not can_view_image(image):
        abort(404)
    return image


def own_images(ids: list[str]) -> list[Image]:
    """The signed-in person's own images among ``ids``, in the order given; every other id is dropped."""
    wanted = []
    for raw in dict.fromkeys(ids[:MAX_SELECTION]):
        try:
            wanted.append(str(uuid.UUID(raw)))
        except (ValueError, TypeError):
            continue
    if not wanted or not current_user.is_authenticated:
        return []
    found = {image.id: image for image in db.session.scalars(
        select(Image).where(Image.user_id == current_user.id, Image.id.in_(wanted)))}
    return [found[i] for i in wanted if i in found]
