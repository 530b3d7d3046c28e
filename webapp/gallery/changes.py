"""What an owner changes on an image: star, publish (the page and the API call these).

Each is one UPDATE to the state asked for, never a toggle: simultaneous or repeated requests agree.
"""
from __future__ import annotations

from sqlalchemy import true, update

from ..extensions import db
from ..tables import Image, utcnow


class PublishRefused(Exception):
    """The image may not be published (an admin hid it, or the safety check holds it)."""


def set_starred(image: Image, starred: bool) -> None:
    """Star (kept from cleanup) or unstar."""
    db.session.execute(update(Image).where(Image.id == image.id).values(is_starred=starred))
    db.session.commit()
    db.session.refresh(image)


def set_public(image: Image, public: bool) -> None:
    """Publish to Explore or take back; a hide that lands meanwhile wins, and published_at is set once.

    Raises:
        PublishRefused: publishing an image an admin has hidden or the safety check holds.
    """
    changed = db.session.execute(
        update(Image).where(Image.id == image.id, Image.is_public.is_not(public),
                            Image.is_hidden.is_(False) if public else true(), Image.is_held.is_(False) if public else true())
        .values(is_public=public, published_at=utcnow() if public else None)).rowcount
    db.session.commit()
    db.session.refresh(image)
    if public and not changed and image.is_held:
        raise PublishRefused("The safety check holds this image: it cannot be published until an admin or your "
                             "group's manager releases it.")
    if public and not changed and image.is_hidden:
        raise PublishRefused("An admin has hidden this image, so it cannot be published.")
