"""Admin user list: search; ban and unban."""
from __future__ import annotations

from flask import abort, flash, render_template, request

from ..extensions import db
from ..tables import User
from .bans import BanRefused, ban_user, image_counts, unban_user, users_query
from .base import PER_PAGE, acting_admin, back, bp, page_number
from .forms import ActionForm, BanForm

FILTERS = {"": None, "banned": True, "active": False}


@bp.get("/users")
def users():
    """Accounts, newest first, matching the search."""
    search = request.args.get("q", "")[:254]
    shown = request.args.get("show", "")
    page = db.paginate(users_query(search, FILTERS.get(shown)), page=page_number(), per_page=PER_PAGE,
                       error_out=False)
    return render_template("admin/users.html", page=page, search=search, shown=shown,
                           counts=image_counts([u.id for u in page.items]), ban_form=BanForm(), form=ActionForm())


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.post("/users/<id:user_id>/ban")
def ban(user_id: int):
    """Ban: sessions end, sign-in and submissions refused, work canceled, images unpublished."""
    user = _user_or_404(user_id)
    form = BanForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        result = ban_user(acting_admin(), user, form.reason.data or "")
    except BanRefused as exc:
        flash(str(exc), "danger")
    else:
        flash(f"{user.email} is banned: {result.canceled} generation(s) canceled, "
              f"{result.unpublished} image(s) unpublished.", "success")
    return back("admin.users")


@bp.post("/users/<id:user_id>/unban")
def unban(user_id: int):
    """Lift a ban."""
    user = _user_or_404(user_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    unban_user(acting_admin(), user)
    flash(f"{user.email} may sign in again.", "success")
    return back("admin.users")
