"""``GET /api/generations/<id>``: status and live progress (owner or admin, else 404)."""
from __future__ import annotations

from flask import Blueprint, jsonify
from flask_login import current_user

from ..access import viewable_generation_or_404
from ..errors import render_error
from ..generations import generation_state

bp = Blueprint("api", __name__)


@bp.before_request
def signed_in_only():
    """API clients that are not signed in get a JSON 404, never a redirect to the sign-in page."""
    if not current_user.is_authenticated:
        return render_error(404)
    return None


@bp.get("/generations/<generation_id>")
def generation(generation_id: str):
    """The generation's state as JSON."""
    response = jsonify(generation_state(viewable_generation_or_404(generation_id)))
    response.headers["Cache-Control"] = "no-store"
    return response
