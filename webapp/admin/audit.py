"""Admin audit log: every admin action, newest first."""
from __future__ import annotations

from flask import render_template, request

from ..extensions import db
from ..moderation.audit import action_names, audit_query
from .base import PER_PAGE, bp, page_number


@bp.get("/audit")
def audit():
    """The log, filtered by action and admin email."""
    action = request.args.get("action", "")[:64]
    admin = request.args.get("admin", "")[:254]
    page = db.paginate(audit_query(action, admin), page=page_number(), per_page=PER_PAGE, error_out=False)
    args = {k: v for k, v in {"action": action, "admin": admin}.items() if v}
    return render_template("admin/audit.html", page=page, action=action, admin=admin, args=args,
                           actions=action_names())
