"""The audit log: every admin action, written in the same commit as the change it describes."""
from __future__ import annotations

from sqlalchemy import Select, select

from ..extensions import db
from ..tables import AuditLog, User


def record(admin: User, action: str, target_type: str = "", target_id: str | int = "", details: str = "") -> AuditLog:
    """Add an audit entry to the session; the caller's commit writes it with the change.

    Args:
        admin: who acted.
        action: what, as ``area.verb`` (``image.hide``, ``user.ban``, ...).
        target_type: the kind of thing acted on (``image``, ``user``, ``term``, ``job``).
        target_id: its id.
        details: a short human-readable note (reasons, counts).
    """
    entry = AuditLog(admin_id=admin.id, action=action, target_type=target_type, target_id=str(target_id),
                     details=details[:2000])
    db.session.add(entry)
    return entry


def audit_query(action: str = "", admin_email: str = "") -> Select:
    """Audit entries, newest first, optionally narrowed to an action prefix or an admin's email."""
    query = select(AuditLog).order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
    if action:
        query = query.where(AuditLog.action.startswith(action, autoescape=True))
    if admin_email:
        query = query.join(User, AuditLog.admin_id == User.id).where(
            User.email.contains(User.normalize_email(admin_email), autoescape=True))
    return query


def action_names() -> list[str]:
    """The actions that appear in the log, for the filter menu."""
    return list(db.session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action)))
