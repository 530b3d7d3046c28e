"""Admin API tokens: everyone's, searchable by owner; revoke any, audited."""
from __future__ import annotations

from flask import abort, flash, render_template, request
from sqlalchemy import select

from ..api_tokens import revoke_token, token_status
from ..extensions import db
from ..moderation.audit import record
from ..tables import ApiToken, User
from .base import PER_PAGE, acting_admin, back, bp, page_number
from .forms import ActionForm


@bp.get("/tokens")
def tokens():
    """Every API token, newest first, optionally for owners whose email contains ``q``."""
    search = request.args.get("q", "")[:254]
    query = select(ApiToken).join(User, ApiToken.user_id == User.id).order_by(ApiToken.created_at.desc(),
                                                                               ApiToken.id.desc())
    if search:
        query = query.where(User.email.contains(User.normalize_email(search), autoescape=True))
    page = db.paginate(query, page=page_number(), per_page=PER_PAGE, error_out=False)
    return render_template("admin/tokens.html", page=page, search=search, token_status=token_status,
                           form=ActionForm())


@bp.post("/tokens/<id:token_id>/revoke")
def revoke_token_of_anyone(token_id: int):
    """Revoke anyone's token; the audit entry is written in the same commit."""
    token = db.session.get(ApiToken, token_id)
    if token is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    if revoke_token(token, commit=False):
        record(acting_admin(), "token.revoke", "token", token.id, f"{token.name} of {token.user.email}")
        db.session.commit()
        flash(f"{token.user.email}'s token “{token.name}” is revoked.", "success")
    return back("admin.tokens")
