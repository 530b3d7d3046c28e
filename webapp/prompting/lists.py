"""Wildcard lists: the site's (admins keep them, audited) and each person's own."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..moderation.audit import record
from ..tables import User, Wildcard
from .wildcards import NAME, NAME_RULE, PromptProblem, parse_values


def lists_of(owner_id: int | None) -> list[Wildcard]:
    """A person's lists (None: the site's), by name."""
    where = Wildcard.user_id.is_(None) if owner_id is None else Wildcard.user_id == owner_id
    return list(db.session.scalars(select(Wildcard).where(where).order_by(Wildcard.name)))


def save_list(owner_id: int | None, name: str, text: str, admin: User | None = None) -> Wildcard:
    """Create a list, or replace the entries of the owner's list of that name (a site list's change is audited).

    Raises:
        PromptProblem: a name outside ``NAME``, or entries ``parse_values`` refuses.
    """
    name = (name or "").strip().lower()
    if not NAME.fullmatch(name):
        raise PromptProblem(NAME_RULE, field="name")
    values = parse_values(text or "")
    row = next((row for row in lists_of(owner_id) if row.name == name), None)
    if row is None:
        row = Wildcard(user_id=owner_id, name=name, values=values)
        db.session.add(row)
    else:
        row.values = values
    db.session.flush()
    if admin is not None and owner_id is None:
        record(admin, "wildcard.save", "wildcard", row.id, f"__{name}__: {len(values)} entries")
    try:
        db.session.commit()
    except IntegrityError:  # the same name saved twice at once
        db.session.rollback()
        raise PromptProblem(f"A list named {name} was just saved; reload the page.", field="name") from None
    return row


def remove_list(row: Wildcard, admin: User | None = None) -> None:
    """Delete a list (a site list's removal is audited)."""
    if admin is not None and row.user_id is None:
        record(admin, "wildcard.remove", "wildcard", row.id, f"__{row.name}__")
    db.session.delete(row)
    db.session.commit()
