"""Queue weights: a person's share of the generation queue (a school's teacher, a paid tier).

The users table holds each weight (``User.queue_weight``, 1 by default) and is the truth; the Redis hash
``webapp.queues.FAIR_WEIGHTS`` holds the copy that the fair queue's Lua script reads. Every change writes the
row first, then the copy; ``restore_queue_weights`` (a chore every ``EASEL_REAPER_INTERVAL``) makes the copy
match the rows again after Redis lost its data or missed a write.

A group may give its members a weight too (``Group.queue_weight``): the copy holds each person's most
generous weight, their own or any of their groups' (``effective_weights``).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from redis.exceptions import RedisError, WatchError
from sqlalchemy import Select, func, select, update

from . import services
from .extensions import db
from .moderation.audit import record
from .queues import FAIR_WEIGHTS, set_weights
from .tables import Group, GroupMember, User

log = logging.getLogger(__name__)

DEFAULT_WEIGHT = 1.0
WEIGHT_MIN = 0.1
WEIGHT_MAX = 10.0
UPDATE_CHUNK = 500  # ids per UPDATE ... IN (...): well under SQLite's limit on bound parameters


class WeightRefused(ValueError):
    """The weight is not a number between WEIGHT_MIN and WEIGHT_MAX."""


@dataclass
class WeightChange:
    """What a weight change did.

    Attributes:
        weight: the weight as stored.
        matched: the accounts it was meant for.
        changed: those whose weight was different and now is the new one.
        copied: False when Redis did not answer (the rows are saved; the next restore copies them).
    """

    weight: float
    matched: int
    changed: int
    copied: bool


def check_weight(weight: float) -> float:
    """The weight as stored (two decimals).

    Raises:
        WeightRefused: not a number, or outside WEIGHT_MIN..WEIGHT_MAX.
    """
    if not isinstance(weight, int | float) or math.isnan(weight) or not WEIGHT_MIN <= weight <= WEIGHT_MAX:
        raise WeightRefused(f"A queue weight is a number from {WEIGHT_MIN:g} to {WEIGHT_MAX:g} (1 is everyone's).")
    return round(float(weight), 2)


def effective_weights(user_ids: list[int] | None = None) -> dict[int, float]:
    """Each person's weight in the queue: their own, or their most generous group's when that is larger.

    Args:
        user_ids: these people (None: everyone whose weight is not the default).
    """
    own = select(User.id, User.queue_weight)
    groups = (select(GroupMember.user_id, func.max(Group.queue_weight)).join(Group)
              .where(Group.queue_weight.is_not(None)).group_by(GroupMember.user_id))
    if user_ids is None:
        own = own.where(User.queue_weight != DEFAULT_WEIGHT)
    elif len(user_ids) <= UPDATE_CHUNK:  # a few people: ask for them; many: two reads of everyone beat many INs
        own, groups = own.where(User.id.in_(user_ids)), groups.where(GroupMember.user_id.in_(user_ids))
    weights: dict[int, float] = {}
    for user_id, weight in [*db.session.execute(own), *db.session.execute(groups)]:
        weights[user_id] = max(weights.get(user_id, weight), weight)
    if user_ids is not None:
        weights = {user_id: weights.get(user_id, DEFAULT_WEIGHT) for user_id in user_ids}
    return weights


def copy_weights(user_ids: list[int]) -> bool:
    """Write the Redis copy of these people's effective weights after the commit; False (logged) when Redis
    does not answer."""
    try:
        by_weight: dict[float, list[int]] = {}
        for user_id, effective in effective_weights(user_ids).items():
            by_weight.setdefault(effective, []).append(user_id)
        db.session.rollback()  # hold no read transaction (SQLite locks)
        for effective, ids in by_weight.items():
            set_weights(ids, effective)
    except RedisError as exc:
        log.warning("queue weights of %d account(s) saved, not yet copied to Redis: %s", len(user_ids), exc)
        return False
    return True


def set_queue_weight(user: User, weight: float, admin: User | None = None) -> WeightChange:
    """Give one person a weight: the row (and the audit entry, when an admin acts) first, then the Redis copy.

    Args:
        user: whose share changes.
        weight: 2 is twice everyone else's share, 1 the default.
        admin: the admin acting, for the audit log (None from the ``flask queue-weight`` command).

    Raises:
        WeightRefused: a weight outside WEIGHT_MIN..WEIGHT_MAX (nothing changes).
    """
    weight = check_weight(weight)
    before = user.queue_weight
    changed = before != weight
    if changed:
        user.queue_weight = weight
        if admin is not None:
            record(admin, "user.queue_weight", "user", user.id, f"{user.email}: {before:g} → {weight:g}")
        db.session.commit()
    return WeightChange(weight=weight, matched=1, changed=int(changed), copied=copy_weights([user.id]))


def set_group_queue_weight(admin: User, accounts: Select, weight: float, described: str) -> WeightChange:
    """Give every account that ``accounts`` selects one weight, with one audit entry for the group.

    One query reads the ids, the rows change in chunked UPDATEs in one commit, and one pipelined Redis
    write copies them, so thousands of accounts take well under a second.

    Args:
        admin: who acts.
        accounts: a ``select(User)`` with the group's filters (its ordering is dropped).
        weight: the new weight.
        described: the group in words for the audit log (the search and filter).

    Raises:
        WeightRefused: a weight outside WEIGHT_MIN..WEIGHT_MAX (nothing changes).
    """
    weight = check_weight(weight)
    rows = db.session.execute(accounts.with_only_columns(User.id, User.queue_weight).order_by(None)).all()
    ids = [row.id for row in rows if row.queue_weight != weight]
    if ids:
        for start in range(0, len(ids), UPDATE_CHUNK):
            db.session.execute(update(User).where(User.id.in_(ids[start:start + UPDATE_CHUNK]))
                               .values(queue_weight=weight).execution_options(synchronize_session=False))
        record(admin, "user.queue_weight", "users", "",
               f"{len(ids)} of {len(rows)} account(s) matching {described}: weight {weight:g}")
        db.session.commit()
    # Every matched account gets the copy, the unchanged ones too: it costs nothing and heals a lost copy.
    copied = copy_weights([row.id for row in rows])
    return WeightChange(weight=weight, matched=len(rows), changed=len(ids), copied=copied)


def _as_weight(raw: bytes) -> float | None:
    try:
        return float(raw)
    except ValueError:
        return None


def restore_queue_weights() -> int:
    """Make the Redis copy match the users table (after Redis lost its data, or a write to it failed).

    Redis is read under WATCH before the rows are: a weight an admin sets meanwhile (row first, then copy)
    either is in the rows read, or its copy aborts this write, and the next run settles it.

    Returns:
        How many people's copies were written or removed (0 when they already matched).

    Raises:
        redis.exceptions.RedisError: Redis is unreachable.
    """
    with services.redis().pipeline() as pipe:
        pipe.watch(FAIR_WEIGHTS)
        copied = pipe.hgetall(FAIR_WEIGHTS)
        have = {int(key): _as_weight(value) for key, value in copied.items() if key.isdigit()}
        stray = [key for key in copied if not key.isdigit()]
        want = {user_id: weight for user_id, weight in effective_weights().items() if weight != DEFAULT_WEIGHT}
        db.session.rollback()  # hold no read transaction (SQLite locks)
        wrong = {user_id: weight for user_id, weight in want.items() if have.get(user_id) != weight}
        gone = [user_id for user_id in have if user_id not in want] + stray
        if not wrong and not gone:
            return 0
        pipe.multi()
        if gone:
            pipe.hdel(FAIR_WEIGHTS, *gone)
        if wrong:
            pipe.hset(FAIR_WEIGHTS, mapping=wrong)
        try:
            pipe.execute()
        except WatchError:
            log.info("queue weights changed while being restored; the next run settles them")
            return 0
    log.warning("restored %d queue weight(s) in Redis from the database", len(wrong) + len(gone))
    return len(wrong) + len(gone)
