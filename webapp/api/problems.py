"""Error bodies for API clients: RFC 9457 problem details (``/api/v1``), OpenAI's and AUTOMATIC1111's shapes.

Routes raise ``ApiError`` (or any HTTPException); ``webapp.errors`` hands the error to the formatter of the
API the path belongs to, so no HTML page ever answers an API client, whatever the status.
"""
from __future__ import annotations

import json
from collections.abc import Mapping

from flask import Response
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"
# Headers an error keeps from the exception that raised it (the rest come from the body we write).
KEPT_HEADERS = {"www-authenticate", "retry-after", "allow"}


class ApiError(HTTPException):
    """An API error with a status, a message, per-field messages and extra headers."""

    def __init__(self, status: int, message: str, errors: Mapping[str, list[str] | str] | None = None,
                 headers: Mapping[str, str] | None = None, param: str | None = None, kind: str | None = None):
        super().__init__(message)
        self.code = status
        self.errors = {field: [m] if isinstance(m, str) else list(m) for field, m in (errors or {}).items()}
        self.extra_headers = dict(headers or {})
        self.param = param or next(iter(self.errors), None)
        self.kind = kind


def field_errors(exc: Exception | None) -> dict[str, list[str]]:
    """Per-field messages of an error: ours, or webargs' (``{"json": {"steps": ["..."]}}``, flattened)."""
    if isinstance(exc, ApiError):
        return exc.errors
    data = getattr(exc, "data", None)
    messages = data.get("messages") if isinstance(data, dict) else None
    flat: dict[str, list[str]] = {}
    for location, found_here in (messages or {}).items():
        if not isinstance(found_here, dict):  # about the whole body, e.g. invalid JSON
            flat[str(location)] = _strings(found_here)
            continue
        for field, found in found_here.items():
            flat[str(field)] = _strings(found)
    return flat


def _strings(found) -> list[str]:
    if isinstance(found, str):
        return [found]
    if isinstance(found, list):
        return [str(item) for item in found]
    if isinstance(found, dict):
        return [f"{key}: {message}" for key, messages in found.items() for message in _strings(messages)]
    return [str(found)]


def error_headers(exc: Exception | None) -> dict[str, str]:
    """The headers an error response must carry (WWW-Authenticate, Retry-After, Allow)."""
    headers: dict[str, str] = {}
    if isinstance(exc, HTTPException):
        for name, value in exc.get_headers():
            if name.lower() in KEPT_HEADERS:
                headers[name] = value
    if isinstance(exc, ApiError):
        headers.update(exc.extra_headers)
    data = getattr(exc, "data", None)
    if isinstance(data, dict) and isinstance(data.get("headers"), dict):
        headers.update(data["headers"])
    return headers


def _message(text: str, exc: Exception | None) -> str:
    if isinstance(exc, ApiError):
        return exc.description
    errors = field_errors(exc)
    if errors:
        return "The request is not valid: " + "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items())
    return text


def _respond(body: dict, status: int, mimetype: str, exc: Exception | None) -> Response:
    # a lone surrogate a message repeats becomes its JSON escape instead of failing to encode
    text = json.dumps(body, ensure_ascii=False).encode("utf-8", "backslashreplace")
    response = Response(text, status=status, mimetype=mimetype)
    for name, value in error_headers(exc).items():
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


def problem_response(status: int, title: str, text: str, exc: Exception | None) -> Response:
    """RFC 9457 problem details, with ``errors`` holding each field's messages."""
    status = 400 if status == 422 else status  # webargs' default; this API says 400 for every invalid request
    body: dict = {"type": "about:blank", "title": title, "status": status, "detail": _message(text, exc)}
    errors = field_errors(exc)
    if errors:
        body["errors"] = errors
    return _respond(body, status, PROBLEM_JSON, exc)


OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 408: "timeout_error", 413: "invalid_request_error", 429: "rate_limit_error"}


def openai_error(status: int, title: str, text: str, exc: Exception | None) -> Response:
    """OpenAI's ``{"error": {"message", "type", "param", "code"}}``."""
    status = 400 if status == 422 else status
    param = exc.param if isinstance(exc, ApiError) else next(iter(field_errors(exc)), None)
    kind = exc.kind if isinstance(exc, ApiError) and exc.kind else None
    body = {"error": {"message": _message(text, exc), "type": OPENAI_TYPES.get(status, "server_error"),
                      "param": param, "code": kind}}
    return _respond(body, status, "application/json", exc)


def a1111_error(status: int, title: str, text: str, exc: Exception | None) -> Response:
    """AUTOMATIC1111's (FastAPI's) shape: ``{"error", "detail", "body", "errors"}``."""
    status = 422 if status == 400 else status  # FastAPI's status for any request it cannot read
    message = _message(text, exc)
    body = {"error": title.replace(" ", ""), "detail": message, "body": "", "errors": message}
    return _respond(body, status, "application/json", exc)
