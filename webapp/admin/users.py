"""Admin user list: search; ban and unban; queue weights, one account's or a whole search's."""
from __future__ import annotations

from flask import abort, flash, render_template, request

from ..extensions import db
from ..queue_weights import WeightChange, set_group_queue_weight, set_queue_weight
from ..tables import User
from .bans import BanRefused, ban_user, image_counts, unban_user, users_query
from .base import PER_PAGE, acting_admin, back, bp, page_number
from .forms import ActionForm, BanForm, GroupQueueWeightForm, QueueWeightForm

FILTERS = {"": None, "banned": True, "active": False}
FILTER_NAMES = {"": "everyone", "banned": "banned", "active": "not banned"}


@bp.get("/users")
def users():
    """Accounts, newest first, matching the search."""
    search = request.args.get("q", "")[:254]
    shown = request.args.get("show", "")
    page = db.paginate(users_query(search, FILTERS.get(shown)), page=page_number(), per_page=PER_PAGE,
                       error_out=False)
    return render_template("admin/users.html", page=page, search=search, shown=shown,
                           counts=image_counts([u.id for u in page.items]), ban_form=BanForm(), form=ActionForm(),
                           weight_form=QueueWeightForm())


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


def _not_copied(change: WeightChange) -> str:
    return "" if change.copied else " Redis did not answer: the queue gets it when the chores restore the weights."


@bp.post("/users/<id:user_id>/queue-weight")
def queue_weight(user_id: int):
    """Set one account's share of the generation queue (2: twice everyone else's)."""
    user = _user_or_404(user_id)
    form = QueueWeightForm()
    if not form.validate_on_submit():
        flash(form.problem(), "danger")
        return back("admin.users")
    change = set_queue_weight(user, form.weight.data, acting_admin())
    flash(f"{user.email} has queue weight {change.weight:g}." + _not_copied(change), "success")
    return back("admin.users")


@bp.post("/users/queue-weight")
def group_queue_weight():
    """Set one weight for every account the list's search and filter show (``q`` and ``show``, echoed)."""
    form = GroupQueueWeightForm()
    if not form.validate_on_submit():
        flash(form.problem(), "danger")
        return back("admin.users")
    search = (form.q.data or "").strip()
    described = (f"search '{search}'" if search else "no search") + f", {FILTER_NAMES[form.show.data]}"
    change = set_group_queue_weight(acting_admin(), users_query(search, FILTERS[form.show.data]), form.weight.data,
                                    described)
    if not change.matched:
        flash("No accounts match that search: nothing changed.", "warning")
    else:
        flash(f"{change.changed} account(s) changed to queue weight {change.weight:g} "
              f"({change.matched - change.changed} already had it)." + _not_copied(change), "success")
    return back("admin.users")
