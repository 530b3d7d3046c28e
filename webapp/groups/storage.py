"""A group's storage quota: the bytes its members' pictures and uploads keep, all together.

Each stored picture records the bytes of its files (``images.file_bytes``: PNG, thumbnail, timelapse) and each
upload its PNG's (``uploads.file_bytes``), so the sums are one query, never a walk over the storage. Pictures
stored before sizes were recorded count as nothing. A deleted picture stops counting at once.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import func, select

from ..extensions import db
from ..tables import Group, GroupMember, Image, Upload

QUOTA_MAX = 10**15  # a petabyte: beyond any disk a group is given
UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9, "t": 10**12,
         "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
SIZE_RULE = "A storage quota is a size such as 500MB, 2GB or 1.5TB (or bytes), or empty for no limit."


def parse_size(raw: str) -> int:
    """``"2GB"``, ``"500 MB"``, ``"1.5TiB"`` or ``"1048576"`` as bytes (decimal units; ``KiB``… binary ones).

    Raises:
        ValueError: not a size (the message is ``SIZE_RULE``).
    """
    match = SIZE_RE.match(raw or "")
    if not match or match.group(2).lower() not in UNITS:
        raise ValueError(SIZE_RULE)
    return int(float(match.group(1)) * UNITS[match.group(2).lower()])


def human_size(count: int | float) -> str:
    """Bytes as people read them: ``2 GB``, ``512 MB``, ``1.5 GB``, ``800 bytes``."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{int(count)} byte{'' if count == 1 else 's'}"


def _sum_by(column, owner, group_ids: Iterable[int]):
    return (select(GroupMember.group_id, func.coalesce(func.sum(column), 0))
            .join(owner, owner.user_id == GroupMember.user_id)
            .where(GroupMember.group_id.in_(list(group_ids))).group_by(GroupMember.group_id))


def kept_by_groups(group_ids: Iterable[int]) -> dict[int, int]:
    """The bytes each group's members keep now (pictures and uploads), by group id."""
    ids = list(group_ids)
    kept = dict.fromkeys(ids, 0)
    for owner in (Image, Upload):
        for group_id, total in db.session.execute(_sum_by(owner.file_bytes, owner, ids)).all():
            kept[group_id] += int(total or 0)
    return kept


def kept_by_members(group: Group) -> dict[int, int]:
    """The bytes each of the group's people keeps (pictures and uploads), by user id."""
    members = select(GroupMember.user_id).where(GroupMember.group_id == group.id)
    kept: dict[int, int] = {}
    for owner in (Image, Upload):
        rows = db.session.execute(select(owner.user_id, func.coalesce(func.sum(owner.file_bytes), 0))
                                  .where(owner.user_id.in_(members)).group_by(owner.user_id)).all()
        for user_id, total in rows:
            kept[user_id] = kept.get(user_id, 0) + int(total or 0)
    return kept


def storage_message(groups: list[Group]) -> str | None:
    """Why a member of ``groups`` may not make more pictures: every one of their groups with a quota is full.

    A person in several groups may go on while any of their groups with a quota has room (the most generous
    wins, as with every group setting); groups without a quota set nothing. None: there is room.
    """
    limited = [group for group in groups if group.storage_quota is not None]
    if not limited:
        return None
    kept = kept_by_groups(group.id for group in limited)
    if any(kept[group.id] < group.storage_quota for group in limited):
        return None
    group = max(limited, key=lambda g: (g.storage_quota, g.name))
    return (f"Your group {group.name} may keep {human_size(group.storage_quota)} of pictures, and its members keep "
            f"{human_size(kept[group.id])} now. Delete some pictures to make room, or ask its manager.")
