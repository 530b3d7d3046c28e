"""Blocked prompt terms: an admin-edited list, matched as whole words, case-insensitively."""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..tables import BlockedTerm, User
from .audit import record

TERM_MAX = 100


class TermRefused(Exception):
    """The term is empty, too long, or already listed."""


def normalize_term(term: str) -> str:
    """Lower-case, with runs of whitespace made single spaces: how terms are stored and compared."""
    return " ".join(term.split()).lower()


def term_pattern(term: str) -> re.Pattern:
    """Whole words only: "gore" matches "Gore!" but not "gorey"; spaces in a phrase match any whitespace."""
    body = r"\s+".join(re.escape(word) for word in term.split())
    # Lookarounds instead of \b so a term that starts or ends with punctuation still matches whole.
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def find_blocked_term(text: str) -> str | None:
    """The first listed term that ``text`` contains as a whole word, or None."""
    if not text:
        return None
    for term in db.session.scalars(select(BlockedTerm.term).order_by(BlockedTerm.term)):
        if term_pattern(term).search(text):
            return term
    return None


def list_terms() -> list[BlockedTerm]:
    """Every blocked term, alphabetically."""
    return list(db.session.scalars(select(BlockedTerm).order_by(BlockedTerm.term)))


def add_term(admin: User, raw: str) -> BlockedTerm:
    """List a new term (audited).

    Raises:
        TermRefused: empty, too long, without a letter or digit, or already listed.
    """
    term = normalize_term(raw)
    if not term or not re.search(r"\w", term):
        raise TermRefused("Type a word or phrase with at least one letter or digit.")
    if len(term) > TERM_MAX:
        raise TermRefused(f"Keep a term under {TERM_MAX} characters.")
    if db.session.scalar(select(BlockedTerm.id).where(BlockedTerm.term == term)) is not None:
        raise TermRefused(f"“{term}” is already blocked.")
    entry = BlockedTerm(term=term, created_by_id=admin.id)
    db.session.add(entry)
    db.session.flush()
    record(admin, "term.add", "term", entry.id, term)
    try:
        db.session.commit()
    except IntegrityError:  # another admin added it at the same moment
        db.session.rollback()
        raise TermRefused(f"“{term}” is already blocked.") from None
    return entry


def remove_term(admin: User, entry: BlockedTerm) -> None:
    """Take a term off the list (audited)."""
    record(admin, "term.remove", "term", entry.id, entry.term)
    db.session.delete(entry)
    db.session.commit()
