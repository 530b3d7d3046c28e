"""Styles as data: the bundled presets (``webapp.styles``) first, then the site's styles (admins'), styles people
published, and each person's own. A style is applied by name in the studio and every API (A1111's ``styles``).

A saved style's template holds ``{prompt}`` where the person's words go (without it, the words come first and the
template after, as the bundled presets do); its negative prompt is added to the person's. Which style a name
means for a person: their own, else the site's, else a published one (oldest first); bundled names are reserved.
"""
from __future__ import annotations

import re

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..moderation.audit import record
from ..styles import STYLES, styled_prompt
from ..tables import SavedStyle, User
from .weights import weights_problem

NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
SEPARATOR = ","  # between the names of several styles in one generation's ``style``
NAME_RULE = "Name a style with 1 to 32 lower-case letters, digits or “-”, starting with a letter or digit."


class StyleProblem(ValueError):
    """A style that cannot be saved as given, with a message for the person; ``field`` names the form field."""

    def __init__(self, message: str, field: str = "template"):
        super().__init__(message)
        self.field = field


def find_style(name: str | None, user_id: int | None) -> SavedStyle | None:
    """The saved style a name means for this person (None: a bundled preset's name, or no such style)."""
    if not name or name in STYLES:
        return None
    rows = db.session.scalars(select(SavedStyle).where(SavedStyle.name == name, or_(
        SavedStyle.user_id.is_(None), SavedStyle.is_public.is_(True),
        *([SavedStyle.user_id == user_id] if user_id is not None else []))).order_by(SavedStyle.id))
    ranked = sorted(rows, key=lambda row: (row.user_id != user_id, row.user_id is not None, row.id))
    return ranked[0] if ranked else None


def style_exists(name: str | None, user_id: int | None) -> bool:
    """Whether ``name`` is a style this person may apply."""
    return name is None or name in STYLES or find_style(name, user_id) is not None


def styles_for(user_id: int | None) -> list[tuple[str, str]]:
    """(name, label) of every style the person may apply: the presets, then theirs, the site's, published ones."""
    rows = db.session.scalars(select(SavedStyle).where(or_(
        SavedStyle.user_id.is_(None), SavedStyle.is_public.is_(True),
        *([SavedStyle.user_id == user_id] if user_id is not None else []))).order_by(SavedStyle.name))
    seen = dict((style.name, style.label) for style in STYLES.values())
    for row in sorted(rows, key=lambda row: (row.user_id != user_id, row.user_id is not None, row.id)):
        seen.setdefault(row.name, row.label)
    return list(seen.items())


def style_names(style: str | None) -> list[str]:
    """The names in a generation's ``style``: one, or several joined by ``,`` (A1111's ``styles`` list, applied in
    order)."""
    return [name for name in (style or "").split(SEPARATOR) if name] or ["none"]


def apply_style(prompt: str, negative_prompt: str, name: str | None, user_id: int | None) -> tuple[str, str]:
    """(prompt, negative prompt) as the model sees them with the style applied; several styles (``a,b``) are
    applied in order, as A1111 does: each wraps (or follows) what the ones before made, negatives joined."""
    if name and SEPARATOR in name:
        for one in style_names(name):
            prompt, negative_prompt = apply_style(prompt, negative_prompt, one, user_id)
        return prompt, negative_prompt
    if not name or name in STYLES:
        return styled_prompt(prompt, name or "none"), negative_prompt
    row = find_style(name, user_id)
    if row is None:  # deleted since the request was checked: the words alone
        return prompt.strip(), negative_prompt
    words = prompt.strip()
    styled = row.template.replace("{prompt}", words) if "{prompt}" in row.template else f"{words}, {row.template}"
    negative = ", ".join(part for part in (negative_prompt.strip(), row.negative_prompt.strip()) if part)
    return styled, negative


def save_style(owner_id: int | None, fields: dict, admin: User | None = None) -> SavedStyle:
    """Create or replace the owner's style of that name (a site style's change is audited).

    Raises:
        StyleProblem: a bad or reserved name, an empty template, weights that cannot be read.
    """
    name = (fields.get("name") or "").strip().lower()
    if not NAME.fullmatch(name):
        raise StyleProblem(NAME_RULE, field="name")
    if name in STYLES:
        raise StyleProblem(f"“{name}” is a bundled style's name; choose another.", field="name")
    template = (fields.get("template") or "").strip()
    if not template:
        raise StyleProblem("Write the style's prompt, with {prompt} where the person's words go.")
    for field, text in (("template", template.replace("{prompt}", "x")),
                        ("negative_prompt", fields.get("negative_prompt") or "")):
        if problem := weights_problem(text):
            raise StyleProblem(problem, field=field)
    where = SavedStyle.user_id.is_(None) if owner_id is None else SavedStyle.user_id == owner_id
    row = db.session.scalar(select(SavedStyle).where(where, SavedStyle.name == name))
    if row is None:
        row = SavedStyle(user_id=owner_id, name=name)
        db.session.add(row)
    row.label = (fields.get("label") or "").strip()[:64] or name
    row.template, row.negative_prompt = template, (fields.get("negative_prompt") or "").strip()
    row.model, row.steps, row.guidance = fields.get("model") or None, fields.get("steps"), fields.get("guidance")
    row.is_public = bool(fields.get("is_public")) and owner_id is not None
    db.session.flush()
    if admin is not None and owner_id is None:
        record(admin, "style.save", "style", row.id, name)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise StyleProblem(f"A style named {name} was just saved; reload the page.", field="name") from None
    return row


def remove_style(row: SavedStyle, admin: User | None = None) -> None:
    """Delete a style (a site style's removal is audited)."""
    if admin is not None and row.user_id is None:
        record(admin, "style.remove", "style", row.id, row.name)
    db.session.delete(row)
    db.session.commit()
