"""Collections and their images: create, fill, share by a signed link, revoke, read a link back."""
from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import Select, delete, func, select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..links.tokens import BadLink, make_token, read_token
from ..tables import Collection, CollectionImage, Image, User

COLLECTION_LINK = "collection-link"
NAME_MAX = 80
NAME_TOO_LONG = f"Keep the collection's name to {NAME_MAX} characters."


def collections_of(user_id: int) -> list[Collection]:
    """This person's collections, by name."""
    return list(db.session.scalars(select(Collection).where(Collection.user_id == user_id)
                                   .order_by(func.lower(Collection.name), Collection.created_at)))


def collections_with(image_id: str, user_id: int) -> list[Collection]:
    """This person's collections that hold the image."""
    return list(db.session.scalars(
        select(Collection).join(CollectionImage, CollectionImage.collection_id == Collection.id)
        .where(CollectionImage.image_id == image_id, Collection.user_id == user_id).order_by(Collection.name)))


def image_counts(collections: Iterable[Collection]) -> dict[str, int]:
    """How many images each collection holds."""
    ids = [c.id for c in collections]
    if not ids:
        return {}
    rows = db.session.execute(select(CollectionImage.collection_id, func.count()).where(
        CollectionImage.collection_id.in_(ids)).group_by(CollectionImage.collection_id))
    return {collection_id: count for collection_id, count in rows}


def owned_collection(collection_id: str, user_id: int) -> Collection | None:
    """The collection when it exists and is this person's, else None."""
    try:
        uuid.UUID(collection_id)
    except (ValueError, TypeError):
        return None
    collection = db.session.get(Collection, collection_id)
    return collection if collection is not None and collection.user_id == user_id else None


def create_collection(user_id: int, name: str) -> Collection:
    """A new, private collection.

    Raises:
        ValueError: the name is empty or longer than ``NAME_MAX`` (it is never cut).
    """
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise ValueError(NAME_TOO_LONG if name else "Give the collection a name.")
    collection = Collection(user_id=user_id, name=name)
    db.session.add(collection)
    db.session.commit()
    return collection


def add_images(collection: Collection, images: Iterable[Image], by_user_id: int | None = None) -> tuple[int, int]:
    """Put ``images`` of the one adding (the owner, or an editor of a board: ``by_user_id``) in the collection;
    returns how many were added and how many were in it already. The files are never copied.

    Idempotent under races: a row another request adds meanwhile counts as already there, not as an error.
    """
    adder = collection.user_id if by_user_id is None else by_user_id
    wanted = {image.id for image in images if image.user_id == adder}
    lost_races = 0
    while True:
        present = set(db.session.scalars(select(CollectionImage.image_id).where(
            CollectionImage.collection_id == collection.id, CollectionImage.image_id.in_(wanted))))
        db.session.add_all(CollectionImage(collection_id=collection.id, image_id=image_id)
                           for image_id in sorted(wanted - present))
        try:
            db.session.commit()
        except IntegrityError:  # another request added one of them at the same moment: read again
            db.session.rollback()
            lost_races += 1
            # Each lost race means one more of these rows was committed meanwhile, so more is something else.
            if lost_races > len(wanted):
                raise
        else:
            return len(wanted - present), len(present)


def remove_images(collection: Collection, image_ids: Iterable[str]) -> int:
    """Take images out of the collection (they stay in the gallery); returns how many were in it."""
    removed = db.session.execute(delete(CollectionImage).where(
        CollectionImage.collection_id == collection.id, CollectionImage.image_id.in_(list(image_ids)))).rowcount
    db.session.commit()
    return removed


def collection_images(collection: Collection, public: bool = False) -> Select:
    """The collection's images, last added first; ``public`` leaves out hidden and held images."""
    query = (select(Image).join(CollectionImage, CollectionImage.image_id == Image.id)
             .where(CollectionImage.collection_id == collection.id)
             .order_by(CollectionImage.added_at.desc(), Image.created_at.desc(), Image.id))
    return query.where(Image.is_hidden.is_(False), Image.is_held.is_(False)) if public else query


def share(collection: Collection) -> str:
    """Turn the public link on and return its token."""
    collection.is_shared = True
    db.session.commit()
    return share_token(collection)


def revoke(collection: Collection) -> None:
    """Turn the public link off; every link made so far stops working, even if it is shared again."""
    collection.is_shared = False
    collection.link_version = (collection.link_version or 0) + 1
    db.session.commit()


def share_token(collection: Collection) -> str:
    """The signed token of the collection's current public link (no expiry: the owner revokes it)."""
    return make_token(COLLECTION_LINK, {"c": collection.id, "v": collection.link_version or 0})


def collection_for_token(token: str) -> Collection:
    """The shared collection a public link opens.

    Raises:
        BadLink: tampered token, the link was revoked (not shared, or an older version), the collection is
            deleted, or its owner is banned.
    """
    payload = read_token(COLLECTION_LINK, token, None)
    if not isinstance(payload, dict) or not isinstance(payload.get("c"), str) or not isinstance(payload.get("v"), int):
        raise BadLink()
    try:
        uuid.UUID(payload["c"])
    except ValueError as exc:
        raise BadLink() from exc
    collection = db.session.get(Collection, payload["c"])
    if collection is None or not collection.is_shared or collection.link_version != payload["v"]:
        raise BadLink()
    owner = db.session.get(User, collection.user_id)
    if owner is None or owner.is_banned:
        raise BadLink()
    return collection


def delete_collection(collection: Collection) -> None:
    """Delete the collection (its images stay in the gallery)."""
    db.session.delete(collection)
    db.session.commit()
