"""Prompt history: a person's own distinct recent prompts (or negative prompts), newest first."""
from __future__ import annotations

from sqlalchemy import func, or_, select

from ..extensions import db
from ..tables import Generation

HISTORY_FIELDS = {"prompt": Generation.prompt, "negative_prompt": Generation.negative_prompt}
HISTORY_LIMIT = 10
SCANNED = 500  # only the latest generations are searched, so the answer stays fast however much one has made


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def recent_prompts(user_id: int, field: str = "prompt", text: str = "", limit: int = HISTORY_LIMIT) -> list[str]:
    """Distinct texts of ``field`` from the person's latest generations, newest first.

    Args:
        user_id: whose history (only theirs is ever read).
        field: ``prompt`` or ``negative_prompt``.
        text: keep texts that start with it, or have a word that does (case-insensitive); blank keeps all.
        limit: at most this many.
    """
    column = HISTORY_FIELDS[field]
    latest = (select(column.label("text"), Generation.created_at.label("created_at"))
              .where(Generation.user_id == user_id, column != "")
              .order_by(Generation.created_at.desc()).limit(SCANNED).subquery())
    query = select(latest.c.text).group_by(latest.c.text).order_by(func.max(latest.c.created_at).desc()).limit(limit)
    text = " ".join(text.split())
    if text:
        pattern = _like_escape(text.lower())
        lowered = func.lower(latest.c.text)
        query = query.where(or_(lowered.like(f"{pattern}%", escape="\\"), lowered.like(f"% {pattern}%", escape="\\")))
    return list(db.session.scalars(query))
