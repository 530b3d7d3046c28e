"""Easel's own API, ``/api/v1``: flask-smorest views whose marshmallow schemas validate the requests and
generate the OpenAPI 3.1 document at ``/api/v1/openapi.json``."""
from __future__ import annotations

import http

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from flask_smorest import Api

from ...errors import http_error_response, register_api_errors
from ..problems import PROBLEM_JSON, problem_response
from .schemas import ProblemSchema

PREFIX = "/api/v1"


class ProblemResponses(MarshmallowPlugin):
    """apispec's marshmallow plugin, documenting error responses as ``application/problem+json``.

    flask-smorest registers a response component for every status with its error schema under the API's
    default content type; through apispec's public plugin hook (``response_helper``), those carrying the
    ProblemSchema move to RFC 9457's type, and the successful statuses lose the error schema they never send.
    """

    SUCCESS = {status.phrase for status in http.HTTPStatus if status < 400}

    def response_helper(self, response: dict, **kwargs) -> dict:
        content = response.get("content", {})
        error = content.get(Api.DEFAULT_RESPONSE_CONTENT_TYPE, {}).get("schema")
        if error is ProblemSchema or isinstance(error, ProblemSchema):
            if response.get("description") in self.SUCCESS:
                response.pop("content")
            else:
                content[PROBLEM_JSON] = content.pop(Api.DEFAULT_RESPONSE_CONTENT_TYPE)
                if response.get("description") == "Default error response":
                    response["description"] = "Any error, as RFC 9457 problem details"
        return super().response_helper(response, **kwargs)


class EaselApi(Api):
    """flask-smorest's Api, with its errors answered by ``webapp.errors`` (problem details) and documented as such."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error):
        """flask-smorest's public hook for the HTTP errors it handles: the app's own answer (problem details under
        API paths, the site's page elsewhere), so registering the Api changes no error anywhere."""
        return http_error_response(error)

def register(app: Flask) -> None:
    """Bind the API, its blueprints behind the token gate, and its problem-details errors."""
    from . import catalog, generations, grids, images

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
    api = EaselApi(app, spec_kwargs={"marshmallow_plugin": ProblemResponses()})
    for blueprint in (generations.blp, grids.blp, images.blp, catalog.blp):
        api.register_blueprint(blueprint)
    register_api_errors(app, PREFIX, problem_response)
