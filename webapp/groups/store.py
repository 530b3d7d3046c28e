"""Groups: create, change and delete them, add and remove people, and a manager's moderation.

Admins act through the admin pages (audited), operators through ``flask groups`` (no admin to audit).
Every change to who is in a group or to its weight copies the members' queue weights to Redis after the commit.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from .. import services
from ..extensions import db
from ..moderation.audit import record
from ..moderation.review import revoke_links
from ..queue_weights import WEIGHT_MAX, WEIGHT_MIN, copy_weights
from ..tables import Group, GroupMember, Image, User
from .storage import QUOTA_MAX, human_size, parse_size

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
NAME_RULE = "A group's name is 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit."
LIMIT_MAX = 100_000
NUMBERS = {"daily_images": 0, "max_active": 1, "max_queued": 1}  # each setting's smallest value
CHOICE_KINDS = {"models": "model", "loras": "LoRA", "upscalers": "upscaler"}
CLASSIFIER_WORDS = {True: "on", False: "off", None: "site"}
SETTINGS = (*NUMBERS, "queue_weight", *CHOICE_KINDS, "storage_quota", "prompt_classifier")


class GroupRefused(ValueError):
    """A group change that cannot be made; the message says why (nothing was changed)."""


@dataclass(frozen=True)
class MemberChange:
    """What adding or removing a person did; ``copied`` False when Redis missed the weight copy."""

    changed: bool
    copied: bool


def check_name(name: str) -> str:
    """The name as stored (stripped, lower case).

    Raises:
        GroupRefused: not a valid name.
    """
    name = (name or "").strip().lower()
    if not NAME_RE.match(name):
        raise GroupRefused(NAME_RULE)
    return name


def _catalog_names(kind: str) -> set[str]:
    if kind == "models":
        return set(services.catalog())
    if kind == "loras":
        return set(services.loras())
    from models.upscalers import load_upscalers

    return set(load_upscalers(current_app.config["EASEL_CATALOG"]))


def check_settings(settings: Mapping) -> dict:
    """The settings as stored; a key left out is unchanged, a value of None is the site's.

    Raises:
        GroupRefused: a number out of range, or a name the catalog does not list.
    """
    checked: dict = {}
    for name, low in NUMBERS.items():
        if name in settings:
            value = settings[name]
            if value is not None and (not isinstance(value, int) or not low <= value <= LIMIT_MAX):
                raise GroupRefused(f"{name} is a whole number from {low} to {LIMIT_MAX}, or empty for the site's.")
            checked[name] = value
    if "queue_weight" in settings:
        weight = settings["queue_weight"]
        if weight is not None and (not isinstance(weight, int | float) or not WEIGHT_MIN <= weight <= WEIGHT_MAX):
            raise GroupRefused(f"A queue weight is a number from {WEIGHT_MIN:g} to {WEIGHT_MAX:g} (1 is everyone's), "
                               f"or empty for each member's own.")
        checked["queue_weight"] = None if weight is None else round(float(weight), 2)
    if "storage_quota" in settings:
        quota = settings["storage_quota"]
        if isinstance(quota, str):
            try:
                quota = parse_size(quota)
            except ValueError as exc:
                raise GroupRefused(str(exc)) from None
        if quota is not None and (not isinstance(quota, int) or not 1 <= quota <= QUOTA_MAX):
            raise GroupRefused(f"A storage quota is from 1 byte to {human_size(QUOTA_MAX)}, or empty for no limit.")
        checked["storage_quota"] = quota
    if "prompt_classifier" in settings:
        if settings["prompt_classifier"] not in (None, True, False):
            raise GroupRefused("The prompt classifier is on, off, or empty for the site's setting.")
        checked["prompt_classifier"] = settings["prompt_classifier"]
    for kind, word in CHOICE_KINDS.items():
        if kind in settings:
            names = settings[kind]
            if names is not None:
                names = sorted({name.strip() for name in names if name.strip()})
                unknown = [name for name in names if name not in _catalog_names(kind)]
                if unknown:
                    raise GroupRefused(f"There is no {word} {', '.join(unknown)} in the catalog; "
                                       f"the {word}s: {', '.join(sorted(_catalog_names(kind)))}.")
            checked[kind] = names
    return checked


def find_group(name: str) -> Group | None:
    """The group of that name (any case), or None."""
    return db.session.scalar(select(Group).where(Group.name == (name or "").strip().lower()))


def member_ids(group: Group) -> list[int]:
    """The ids of the group's people."""
    return list(db.session.scalars(select(GroupMember.user_id).where(GroupMember.group_id == group.id)))


def describe(group: Group) -> str:
    """The group's settings in one line (the CLI and the audit log)."""
    parts = [f"{name}={getattr(group, name) if getattr(group, name) is not None else 'site'}" for name in NUMBERS]
    parts.append(f"queue_weight={group.queue_weight:g}" if group.queue_weight is not None else "queue_weight=own")
    parts += [f"{kind}={','.join(getattr(group, kind)) if getattr(group, kind) is not None else 'all'}"
              for kind in CHOICE_KINDS]
    quota = group.storage_quota
    parts.append(f"storage_quota={human_size(quota).replace(' ', '') if quota is not None else 'none'}")
    parts.append(f"prompt_classifier={CLASSIFIER_WORDS[group.prompt_classifier]}")
    return " ".join(parts)


def create_group(name: str, settings: Mapping, admin: User | None = None) -> Group:
    """A new group with these settings.

    Raises:
        GroupRefused: a bad name or setting, or the name is taken (nothing is written).
    """
    name = check_name(name)
    checked = check_settings(settings)
    if find_group(name) is not None:
        raise GroupRefused(f"There is already a group named {name}.")
    group = Group(name=name, **checked)
    db.session.add(group)
    db.session.flush()
    if admin is not None:
        record(admin, "group.create", "group", group.id, f"{name}: {describe(group)}")
    db.session.commit()
    return group


def update_group(group: Group, settings: Mapping, admin: User | None = None) -> bool:
    """Change the group's settings (weights copied to Redis); returns whether the Redis copy was written.

    Raises:
        GroupRefused: a bad setting (nothing is written).
    """
    checked = check_settings(settings)
    weight_changed = "queue_weight" in checked and checked["queue_weight"] != group.queue_weight
    for name, value in checked.items():
        setattr(group, name, value)
    if admin is not None:
        record(admin, "group.update", "group", group.id, f"{group.name}: {describe(group)}")
    db.session.commit()
    return copy_weights(member_ids(group)) if weight_changed else True


def delete_group(group: Group, admin: User | None = None) -> bool:
    """Delete the group; its members keep their accounts and pictures. Returns whether Redis got the weights."""
    ids = member_ids(group)
    if admin is not None:
        record(admin, "group.delete", "group", group.id, f"{group.name} ({len(ids)} member(s))")
    db.session.delete(group)
    db.session.commit()
    return copy_weights(ids) if ids else True


def add_member(group: Group, user: User, manager: bool = False, admin: User | None = None) -> MemberChange:
    """Put ``user`` in the group (as a manager or not); an existing member's role changes to the one given."""
    member = db.session.get(GroupMember, (group.id, user.id))
    if member is not None and member.is_manager == manager:
        return MemberChange(changed=False, copied=True)
    if member is None:
        db.session.add(GroupMember(group_id=group.id, user_id=user.id, is_manager=manager))
    else:
        member.is_manager = manager
    if admin is not None:
        record(admin, "group.add", "group", group.id, f"{group.name}: {user.email} as {role(manager)}")
    db.session.commit()
    return MemberChange(changed=True, copied=copy_weights([user.id]))


def remove_member(group: Group, user: User, admin: User | None = None) -> MemberChange:
    """Take ``user`` out of the group (nothing happens when they are not in it)."""
    member = db.session.get(GroupMember, (group.id, user.id))
    if member is None:
        return MemberChange(changed=False, copied=True)
    db.session.delete(member)
    if admin is not None:
        record(admin, "group.remove", "group", group.id, f"{group.name}: {user.email}")
    db.session.commit()
    return MemberChange(changed=True, copied=copy_weights([user.id]))


def role(manager: bool) -> str:
    """A member's role in words."""
    return "manager" if manager else "member"


def managed_groups(user: User) -> list[Group]:
    """The groups ``user`` manages (every group for an admin), by name."""
    query = select(Group).order_by(Group.name)
    if not user.is_admin:
        query = query.join(GroupMember).where(GroupMember.user_id == user.id, GroupMember.is_manager.is_(True))
    return list(db.session.scalars(query))


def hide_member_image(manager: User, group: Group, image: Image) -> bool:
    """A manager hides a member's picture from everyone but its owner and admins (audited); False: already hidden."""
    if image.is_hidden:
        return False
    image.is_hidden = True
    revoke_links(image)
    record(manager, "image.hide", "image", image.id, f"as manager of group {group.name}; owner user {image.user_id}")
    db.session.commit()
    return True
