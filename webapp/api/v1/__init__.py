"""Easel's own API, ``/api/v1``: flask-smorest views whose marshmallow schemas validate the requests and
generate the OpenAPI 3.1 document at ``/api/v1/openapi.json``."""
from __future__ import annotations

import http

from apispec.core import APISpec
from flask import Flask
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from ...errors import http_error_response, register_api_errors
from ..problems import PROBLEM_JSON, problem_response
from .schemas import ProblemSchema

PREFIX = "/api/v1"


class EaselApi(Api):
    """flask-smorest's Api, with its errors answered by ``webapp.errors`` (problem details) and documented as such."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error):
        """flask-smorest's public hook for the HTTP errors it handles: the app's own answer (problem details under
        API paths, the site's page elsewhere), so registering the Api changes no error anywhere."""
        return http_error_response(error)

    def _register_responses(self) -> None:
        """Every error status documented as an ``application/problem+json`` ProblemSchema."""
        # flask-smorest offers no public way to give its error responses another content type than the API's
        # default, so this one hook of its own stays overridden.
        spec: APISpec = self.spec
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, spec, PROBLEM_JSON)
            spec.components.response(status.name, response, lazy=True)
        response = {"description": "Any error, as RFC 9457 problem details", "schema": self.ERROR_SCHEMA}
        prepare_response(response, spec, PROBLEM_JSON)
        spec.components.response("DEFAULT_ERROR", response, lazy=True)


def register(app: Flask) -> None:
    """Bind the API, its blueprints behind the token gate, and its problem-details errors."""
    from . import catalog, generations, images

    app.config.update({
        "API_TITLE": "Easel API",
        "API_VERSION": "1",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": PREFIX,
        "OPENAPI_JSON_PATH": "openapi.json",
        "API_SPEC_OPTIONS": {
            "info": {"description": "Make and manage pictures as your own account. Authenticate with "
                                    "`Authorization: Bearer <token>` (create one under Account → API tokens)."},
            "servers": [{"url": "/"}],
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
        },
    })
    api = EaselApi(app)
    for blueprint in (generations.blp, images.blp, catalog.blp):
        api.register_blueprint(blueprint)
    register_api_errors(app, PREFIX, problem_response)
