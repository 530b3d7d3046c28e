"""Team boards: a collection its owner shares with people or groups, as editors or viewers.

An editor adds their own pictures, removes any, and renames the board; a viewer looks. Only the owner shares
it, deletes it or makes its public link. Pictures are never copied: a board holds rows that point at images.
Someone with no role on a board gets 404 for it and for every picture seen through it.
"""
from __future__ import annotations

import enum
import uuid

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..tables import BoardAccess, Collection, CollectionImage, Group, GroupMember, Image, User
from .store import collections_of


class Role(enum.IntEnum):
    """What a person may do on a board, ordered so the larger role wins."""

    VIEWER = 1
    EDITOR = 2
    OWNER = 3

    @property
    def label(self) -> str:
        """The role's name in the pages."""
        return self.name.lower()


GRANTABLE = {"viewer": Role.VIEWER, "editor": Role.EDITOR}


class BoardRefused(ValueError):
    """A share that cannot be made; the message says why (nothing was changed)."""


def _access_of(user_id: int):
    """The board_access rows that reach ``user_id``: their own, or one of their groups'."""
    groups = select(GroupMember.group_id).where(GroupMember.user_id == user_id)
    return or_(BoardAccess.user_id == user_id, BoardAccess.group_id.in_(groups))


def role_on(collection: Collection, user: User) -> Role | None:
    """The person's role on the board (None: none, so a 404)."""
    if collection.user_id == user.id:
        return Role.OWNER
    roles = db.session.scalars(select(BoardAccess.role).where(BoardAccess.collection_id == collection.id,
                                                              _access_of(user.id))).all()
    return max((GRANTABLE[role] for role in roles if role in GRANTABLE), default=None)


def board_for(collection_id: str, user: User) -> tuple[Collection, Role] | None:
    """The collection and the person's role on it, or None when it does not exist or they have none."""
    try:
        uuid.UUID(collection_id)
    except (ValueError, TypeError):
        return None
    collection = db.session.get(Collection, collection_id)
    if collection is None:
        return None
    role = role_on(collection, user)
    return None if role is None else (collection, role)


def boards_shared_with(user: User) -> list[tuple[Collection, Role]]:
    """Other people's boards this person has a role on, by name."""
    rows = db.session.execute(select(Collection, BoardAccess.role).join(BoardAccess)
                              .where(_access_of(user.id), Collection.user_id != user.id)
                              .order_by(Collection.name, Collection.id)).all()
    best: dict[str, tuple[Collection, Role]] = {}
    for collection, role in rows:
        held = GRANTABLE[role]
        if collection.id not in best or held > best[collection.id][1]:
            best[collection.id] = (collection, held)
    return list(best.values())


def members(collection: Collection) -> list[BoardAccess]:
    """Who the board is shared with (people, then groups)."""
    return list(db.session.scalars(select(BoardAccess).where(BoardAccess.collection_id == collection.id)
                                   .order_by(BoardAccess.group_id.is_not(None), BoardAccess.id)))


def grant(collection: Collection, role: str, email: str = "", group_name: str = "") -> BoardAccess:
    """Share the board with a person (by email) or a group (by name) in ``role``; a second grant changes the role.

    Raises:
        BoardRefused: an unknown role, account or group, or the owner themself.
    """
    if role not in GRANTABLE:
        raise BoardRefused("Choose editor or viewer.")
    if bool(email.strip()) == bool(group_name.strip()):
        raise BoardRefused("Give either a person's email or a group's name.")
    where = {"collection_id": collection.id}
    if email.strip():
        user = db.session.scalar(select(User).where(User.email == User.normalize_email(email)))
        if user is None:
            raise BoardRefused("There is no account with that email.")
        if user.id == collection.user_id:
            raise BoardRefused("That is the board's owner.")
        where["user_id"] = user.id
    else:
        group = db.session.scalar(select(Group).where(Group.name == group_name.strip().lower()))
        if group is None:
            raise BoardRefused(f"There is no group named {group_name.strip()[:64]}.")
        where["group_id"] = group.id
    access = db.session.scalar(select(BoardAccess).filter_by(**where))
    if access is None:
        access = BoardAccess(**where, role=role)
        db.session.add(access)
    access.role = role
    try:
        db.session.commit()
    except IntegrityError:  # the same share made at the same moment: it is there now
        db.session.rollback()
        access = db.session.scalar(select(BoardAccess).filter_by(**where))
    return access


def remove_access(collection: Collection, access_id: int) -> bool:
    """Stop sharing the board with one person or group; False when that share is not the board's."""
    access = db.session.get(BoardAccess, access_id)
    if access is None or access.collection_id != collection.id:
        return False
    db.session.delete(access)
    db.session.commit()
    return True


def rename(collection: Collection, name: str, limit: int) -> None:
    """Give the board a new name."""
    collection.name = name.strip()[:limit]
    db.session.commit()


def board_image(collection: Collection, image_id: str, user: User) -> Image | None:
    """An image on the board that this person may see there: on it, and not hidden unless it is their own."""
    image = db.session.get(Image, image_id) if len(image_id or "") == 36 else None
    if image is None or db.session.get(CollectionImage, (collection.id, image.id)) is None:
        return None
    if (image.is_hidden or image.is_held) and image.user_id != user.id:
        return None
    return image


def fillable(user: User) -> list[Collection]:
    """Where this person may put their pictures: their collections, then the boards they edit."""
    return collections_of(user.id) + [collection for collection, role in boards_shared_with(user)
                                      if role >= Role.EDITOR]
