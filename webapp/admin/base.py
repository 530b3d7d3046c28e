"""Admin routes, all behind one gate that answers 404 to non-admins."""
from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import current_user

bp = Blueprint("admin", __name__)


@bp.before_request
def admins_only():
    """Every admin route, GET or POST, is invisible to non-admins (404, so nothing leaks)."""
    if not (current_user.is_authenticated and current_user.is_admin):
        abort(404)


@bp.get("/")
def dashboard():
    """The admin home page."""
    return render_template("admin/dashboard.html")
