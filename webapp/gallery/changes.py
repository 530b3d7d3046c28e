"""What an owner changes on an image: star, publish (the page and the API call these)."""
from __future__ import annotations

from ..extensions import db
from ..tables import Image, utcnow


class PublishRefused(Exception):
    """The image may not be published (an admin hid it)."""


def set_starred(image: Image, starred: bool) -> None:
    """Star (kept from cleanup) or unstar."""
    image.is_starred = starred
    db.session.commit()


def set_public(image: Image, public: bool) -> None:
    """Publish to Explore or take back.

    Raises:
        PublishRefused: publishing an image an admin has hidden.
    """
    if public and image.is_hidden and not image.is_public:
        raise PublishRefused("An admin has hidden this image, so it cannot be published.")
    if public != image.is_public:
        image.is_public = public
        image.published_at = utcnow() if public else None
    db.session.commit()
