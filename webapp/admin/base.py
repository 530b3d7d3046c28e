"""The admin blueprint and its one gate: admins only, 404 for everyone else, CSRF on every POST."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ..auth.session import safe_next
from ..extensions import csrf
from ..moderation.held import held_count
from ..moderation.reports import open_report_count
from ..tables import User

bp = Blueprint("admin", __name__)
# The gate checks CSRF itself, after the admin check, so a non-admin gets 404 even for a bad POST.
csrf.exempt(bp)

PER_PAGE = 50


@bp.before_request
def admins_only() -> None:
    """Every admin route, GET or POST, is invisible to non-admins (404, so nothing leaks)."""
    if not (current_user.is_authenticated and current_user.is_admin):
        abort(404)
    if current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()  # checks POST and the other unsafe methods only


@bp.context_processor
def admin_navigation() -> dict:
    """The open report count for the admin menu's badge."""
    return {"open_reports": open_report_count() + held_count()}


def acting_admin() -> User:
    """The signed-in admin as a model object (for audit entries)."""
    return current_user._get_current_object()


def page_number() -> int:
    """``?page=`` as a sane positive number."""
    try:
        return max(1, min(10_000, int(request.args.get("page", 1))))
    except ValueError:
        return 1


def back(default_endpoint: str) -> Response:
    """303 to the form's ``next`` (a local path, e.g. the filtered list it came from), else the area's page."""
    return redirect(safe_next(request.form.get("next")) or url_for(default_endpoint), 303)
