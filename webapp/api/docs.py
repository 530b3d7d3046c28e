"""``/api/v1/docs``: Swagger UI (vendored from npm's swagger-ui-dist) over the generated OpenAPI document."""
from __future__ import annotations

from flask import Blueprint, Flask, render_template

bp = Blueprint("apidocs", __name__)


@bp.get("/api/v1/docs")
def docs():
    """The interactive API reference; its script is a static file (no inline script)."""
    return render_template("api/docs.html")


def register(app: Flask) -> None:
    """Serve the docs page."""
    app.register_blueprint(bp)
