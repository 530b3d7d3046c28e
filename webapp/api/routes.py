"""The JSON the pages poll: a generation's status and live progress (owner or admin, else 404), my queue, my prompts."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from flask_login import current_user

from ..access import viewable_generation_or_404
from ..errors import render_error
from ..generations import generation_state
from ..studio.history import HISTORY_FIELDS, recent_prompts
from ..studio.queue import my_queue

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
    return _no_store(jsonify(generation_state(viewable_generation_or_404(generation_id))))


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/queue")
def queue():
    """My queued and running generations, oldest first, with position and a rough wait."""
    return _no_store(jsonify(generations=my_queue(current_user.id)))


@bp.get("/prompts")
def prompts():
    """My distinct recent prompts (``?field=negative_prompt`` for those), newest first, filtered by ``?q=``."""
    field = request.args.get("field", "prompt")
    if field not in HISTORY_FIELDS:
        return render_error(400, "field is prompt or negative_prompt.")
    text = request.args.get("q", "")[:200]
    return _no_store(jsonify(prompts=recent_prompts(current_user.id, field, text)))
