"""What a person's groups allow, and the refusals that name the group.

A group's setting replaces the site's for its members; a setting the group leaves empty is the site's.
A person in several groups gets the most generous of each setting: the largest number, every model
that any of their groups allows (a group with no model list allows every model), room while any of their groups
with a storage quota has room, and the prompt classifier off when any of their groups turns it off. A refusal names the
group whose setting applied ("Your group class-a allows 3 images a day; the next one at 00:00 UTC").

The group's daily count runs from 00:00 UTC, the day a manager's usage page shows; the site's own
``DAILY_IMAGE_QUOTA`` keeps its rolling 24 hours.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import exists, func, select

from ..extensions import db
from ..tables import ACTIVE_STATUSES, Generation, GenerationStatus, GridCell, Group, GroupMember, Source, utcnow
from .storage import storage_message

ACTIVE_RETRY_SECONDS = 10  # as the site's own active limit: about one generation on the bundled model

Entry = TypeVar("Entry")


@dataclass(frozen=True)
class GroupSetting:
    """One setting's value for a person and the group it comes from."""

    value: float
    group: str


@dataclass(frozen=True)
class Choices:
    """The catalog names a person may use of one kind (models, LoRAs, upscalers); ``names`` None: all."""

    names: frozenset[str] | None = None
    groups: tuple[str, ...] = ()

    def allows(self, name: str | None) -> bool:
        """Whether ``name`` may be used."""
        return self.names is None or (name or "") in self.names

    def refusal(self, kind: str, label: str) -> str:
        """The message for a ``kind`` ("model") named ``label`` outside the list."""
        which = ", ".join(sorted(self.names or ())) or "none"
        owner = f"Your group {self.groups[0]}" if len(self.groups) == 1 else f"Your groups {', '.join(self.groups)}"
        return f"{owner} cannot use the {kind} {label}; the {kind}s you may use: {which}."


@dataclass(frozen=True)
class Allowance:
    """Everything a person's groups set (None: the site's setting applies)."""

    groups: tuple[str, ...] = ()
    max_active: GroupSetting | None = None
    max_queued: GroupSetting | None = None
    daily_images: GroupSetting | None = None
    queue_weight: GroupSetting | None = None
    models: Choices = field(default_factory=Choices)
    loras: Choices = field(default_factory=Choices)
    upscalers: Choices = field(default_factory=Choices)
    prompt_classifier: GroupSetting | None = None  # value 1.0 on, 0.0 off


@dataclass(frozen=True)
class GroupRefusal:
    """A request over a group's limit: the message, the HTTP status and seconds until trying again helps."""

    message: str
    status: int = 429
    retry_after: int | None = None


def _most_generous(groups: list[Group], name: str) -> GroupSetting | None:
    best = None
    for group in groups:  # by name, so a tie names the same group every time
        value = getattr(group, name)
        if value is not None and (best is None or value > best.value):
            best = GroupSetting(value, group.name)
    return best


def _choices(groups: list[Group], name: str) -> Choices:
    lists = [(group.name, getattr(group, name)) for group in groups]
    if not lists or any(names is None for _, names in lists):
        return Choices()
    return Choices(frozenset(n for _, names in lists for n in names), tuple(group for group, _ in lists))


def _least_checking(groups: list[Group]) -> GroupSetting | None:
    """The prompt classifier: off when any group turns it off (the most generous), on when one turns it on."""
    for wanted in (False, True):
        named = next((group.name for group in groups if group.prompt_classifier is wanted), None)
        if named is not None:
            return GroupSetting(float(wanted), named)
    return None


def member_groups(user_id: int) -> list[Group]:
    """The groups of ``user_id``, by name."""
    return list(db.session.scalars(select(Group).join(GroupMember).where(GroupMember.user_id == user_id)
                                   .order_by(Group.name)))


def allowance(user_id: int, groups: list[Group] | None = None) -> Allowance:
    """What the groups of ``user_id`` (or ``groups``, already read) set, combined (one query)."""
    groups = member_groups(user_id) if groups is None else groups
    if not groups:
        return Allowance()
    return Allowance(
        groups=tuple(group.name for group in groups),
        max_active=_most_generous(groups, "max_active"),
        max_queued=_most_generous(groups, "max_queued"),
        daily_images=_most_generous(groups, "daily_images"),
        queue_weight=_most_generous(groups, "queue_weight"),
        models=_choices(groups, "models"),
        loras=_choices(groups, "loras"),
        upscalers=_choices(groups, "upscalers"),
        prompt_classifier=_least_checking(groups),
    )


def start_of_day(now: datetime | None = None) -> datetime:
    """Today's 00:00 UTC (naive, as stored)."""
    now = now or utcnow()
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def images_today(user_id: int) -> int:
    """Images asked for since 00:00 UTC, failed and canceled generations not counted."""
    return db.session.scalar(select(func.coalesce(func.sum(Generation.num_images), 0)).where(
        Generation.user_id == user_id, Generation.created_at >= start_of_day(),
        Generation.status.notin_([GenerationStatus.FAILED, GenerationStatus.CANCELED]))) or 0


def requests_count(user_id: int, statuses) -> int:
    """The person's requests with a generation in one of ``statuses``: a generation on its own counts one, a
    grid counts one however many of its cells are there (its cells count as images, against the daily limits)."""
    mine = (Generation.user_id == user_id, Generation.status.in_(list(statuses)))
    in_a_grid = exists().where(GridCell.generation_id == Generation.id)  # the cell's primary key answers
    alone = db.session.scalar(select(func.count()).select_from(Generation).where(*mine, ~in_a_grid)) or 0
    grids = db.session.scalar(select(func.count(func.distinct(GridCell.grid_id))).select_from(GridCell).join(
        Generation, Generation.id == GridCell.generation_id).where(*mine)) or 0
    return alone + grids


def _plural(count: float, word: str) -> str:
    return f"{count:g} {word}{'' if count == 1 else 's'}"


def limits_refusal(user_id: int, num_images: int, new_request: bool = True) -> tuple[GroupRefusal | None, frozenset[str]]:
    """Check a new generation of ``num_images`` against the person's groups' limits (under the person's lock);
    ``new_request`` False: a cell of a grid already counted as one request (only its images are checked).

    Returns:
        The refusal (None: within every group limit) and the names of the site's limits that the groups
        replace (``max_active``, ``max_queued``, ``daily_images``): the caller skips those.
    """
    groups = member_groups(user_id)
    rules = allowance(user_id, groups)
    replaced = frozenset(name for name in ("max_active", "max_queued", "daily_images") if getattr(rules, name))
    if rules.max_active is not None and new_request:
        active = requests_count(user_id, ACTIVE_STATUSES)
        if active >= rules.max_active.value:
            return GroupRefusal(
                f"Your group {rules.max_active.group} allows {_plural(rules.max_active.value, 'generation')} "
                f"waiting or running at once; you have {active}. Wait for one to finish, or cancel one.",
                retry_after=ACTIVE_RETRY_SECONDS), replaced
    if rules.max_queued is not None and new_request:
        queued = requests_count(user_id, (GenerationStatus.QUEUED,))
        if queued >= rules.max_queued.value:
            return GroupRefusal(
                f"Your group {rules.max_queued.group} allows {_plural(rules.max_queued.value, 'generation')} "
                f"waiting in the queue; you have {queued}. Wait for one to start, or cancel one.",
                retry_after=ACTIVE_RETRY_SECONDS), replaced
    if rules.daily_images is not None:
        used = images_today(user_id)
        if used + num_images > rules.daily_images.value:
            now = utcnow()
            midnight = start_of_day(now) + timedelta(days=1)
            left = max(0, int(rules.daily_images.value) - used)
            extra = f" ({left} left today)" if left else ""
            return GroupRefusal(
                f"Your group {rules.daily_images.group} allows {_plural(rules.daily_images.value, 'image')} a day"
                f"{extra}; the next one at 00:00 UTC.",
                retry_after=max(1, int((midnight - now).total_seconds()) + 1)), replaced
    if (full := storage_message(groups)) is not None:
        return GroupRefusal(full, status=403), replaced
    return None, replaced


def choices_refusal(user_id: int, params: Mapping) -> GroupRefusal | None:
    """A model, LoRA or upscaler outside the person's groups' lists (403), or None.

    An upscale is checked for its upscaler only: it enlarges a picture already made, whatever its model.
    """
    rules = allowance(user_id)
    if params.get("source") != Source.UPSCALE and not rules.models.allows(params.get("model")):
        return GroupRefusal(rules.models.refusal("model", params.get("model") or ""), status=403)
    for name, _ in params.get("loras") or ():
        if not rules.loras.allows(name):
            return GroupRefusal(rules.loras.refusal("LoRA", name), status=403)
    if params.get("upscaler") and not rules.upscalers.allows(params["upscaler"]):
        return GroupRefusal(rules.upscalers.refusal("upscaler", params["upscaler"]), status=403)
    return None


def visible(user_id: int, entries: Mapping[str, Entry], kind: str = "models") -> dict[str, Entry]:
    """The catalog entries (``models``, ``loras`` or ``upscalers``) the person's groups let them use."""
    choices: Choices = getattr(allowance(user_id), kind)
    return {name: entry for name, entry in entries.items() if choices.allows(name)}
