"""Admin-side account actions: find accounts, ban and unban them (audited)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func, or_, select, update

from ..api_tokens import revoke_all_tokens
from ..extensions import db
from ..generations import cancel_generation
from ..moderation.audit import record
from ..tables import ACTIVE_STATUSES, Collection, Generation, Image, User


class BanRefused(Exception):
    """The ban cannot be made (an admin banning themself)."""


@dataclass
class BanResult:
    """What a ban undid."""

    canceled: int
    unpublished: int


def users_query(search: str = "", banned: bool | None = None) -> Select:
    """Accounts, newest first, matching ``search`` in the email or display name."""
    query = select(User).order_by(User.created_at.desc(), User.id.desc())
    if search.strip():
        needle = search.strip().lower()
        query = query.where(or_(User.email.contains(needle, autoescape=True),
                                User.display_name.icontains(needle, autoescape=True)))
    if banned is not None:
        query = query.where(User.is_banned.is_(banned))
    return query


def image_counts(user_ids: list[int]) -> dict[int, int]:
    """How many images each of these users has."""
    if not user_ids:
        return {}
    rows = db.session.execute(select(Image.user_id, func.count()).where(Image.user_id.in_(user_ids))
                              .group_by(Image.user_id))
    return {user_id: count for user_id, count in rows}


def ban_user(admin: User, user: User, reason: str = "") -> BanResult:
    """Ban: end every session, refuse sign-in and submissions, unpublish all images, cancel active work, revoke
    every API token, result link and collection share link for good (an unban restores none of them).

    The ban and its audit entry are committed first, so nothing new can start while the
    queued and running generations are being canceled.

    Raises:
        BanRefused: an admin tried to ban themself.
    """
    if user.id == admin.id:
        raise BanRefused("You cannot ban your own account.")
    user.is_banned = True
    user.end_sessions()
    unpublished = db.session.execute(
        update(Image).where(Image.user_id == user.id, Image.is_public.is_(True))
        .values(is_public=False, published_at=None)
    ).rowcount
    # For good: an unban lets the person sign in again, but no token or link made before the ban works again.
    revoked = revoke_all_tokens(user, commit=False)
    db.session.execute(update(Image).where(Image.user_id == user.id)
                       .values(link_version=func.coalesce(Image.link_version, 0) + 1))
    db.session.execute(update(Collection).where(Collection.user_id == user.id)
                       .values(is_shared=False, link_version=func.coalesce(Collection.link_version, 0) + 1))
    active = list(db.session.scalars(select(Generation).where(
        Generation.user_id == user.id, Generation.status.in_(list(ACTIVE_STATUSES)))))
    note = (f"{user.email}; canceled {len(active)} generation(s), unpublished {unpublished} image(s), "
            f"revoked {revoked} API token(s) and every result and share link")
    record(admin, "user.ban", "user", user.id, f"{note}; reason: {reason.strip()}" if reason.strip() else note)
    db.session.commit()
    for generation in active:
        cancel_generation(generation)
    return BanResult(canceled=len(active), unpublished=unpublished)


def unban_user(admin: User, user: User) -> None:
    """Let the person sign in again. Nothing the ban ended comes back: images stay unpublished until they publish
    them, revoked API tokens stay revoked (they make new ones), old result and share links stay dead."""
    user.is_banned = False
    record(admin, "user.unban", "user", user.id, user.email)
    db.session.commit()
