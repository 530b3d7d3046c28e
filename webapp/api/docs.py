"""``/api/v1/docs``: Swagger UI (vendored from npm's swagger-ui-dist) over the generated OpenAPI document, in the
site's own page (its header, its colour mode: Swagger UI's ``dark-mode`` follows ``data-bs-theme``)."""
from __future__ import annotations

from flask import Blueprint, Flask, Response, json, render_template, request

bp = Blueprint("apidocs", __name__)
SPEC_ENDPOINT = "api-docs.openapi_json"  # flask-smorest's document route


@bp.get("/api/v1/docs")
def docs():
    """The interactive API reference; its script is a static file (no inline script)."""
    return render_template("api/docs.html")


def readable_tags(spec: dict) -> dict:
    """Name each tag by its description ("Generations"), not by its blueprint (``api_generations``)."""
    names = {tag["name"]: tag.get("description") or tag["name"] for tag in spec.get("tags", [])}
    spec["tags"] = [{"name": names[tag["name"]]} for tag in spec.get("tags", [])]
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "tags" in operation:
                operation["tags"] = [names.get(tag, tag) for tag in operation["tags"]]
    return spec


def register(app: Flask) -> None:
    """Serve the docs page, and give the generated document's tags readable names."""
    app.register_blueprint(bp)

    @app.after_request
    def name_tags_for_people(response: Response) -> Response:
        # flask-smorest names a tag after its blueprint and offers no other name; its JSON is renamed here.
        if request.endpoint == SPEC_ENDPOINT and response.status_code == 200 and response.is_json:
            response.set_data(json.dumps(readable_tags(response.get_json())))
        return response
