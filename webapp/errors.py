"""Error pages in the site's look, JSON for API clients."""
from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, Response, current_app, g, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db, login_manager

log = logging.getLogger(__name__)

MESSAGES = {
    400: ("Bad request", "Something in that request was not right. Go back and try again."),
    401: ("Unauthorized", "Sign in, or send an API token."),
    403: ("Not allowed", "You cannot do that."),
    404: ("Not found", "There is nothing here, or it is not yours to see."),
    405: ("Not allowed", "That page does not take this kind of request."),
    413: ("Too large", "That upload is larger than this site accepts."),
    409: ("Conflict", "That cannot be done in the current state."),
    429: ("Slow down", "Too many attempts. Wait a few minutes and try again."),
    500: ("Something broke", "An error on our side. It has been logged; please try again."),
    503: ("Try again in a minute", "The site is busy for a moment. Please try again in a minute."),
}
DATABASE_DOWN = ("The site cannot reach its database right now, so nothing was saved. "
                 "Please try again in a minute.")
RETRY_AFTER = 60  # seconds, in the 503's Retry-After header


# An API's own error body: (status, title, message, the exception or None) -> response.
ErrorFormatter = Callable[[int, str, str, Exception | None], Response]
API_ERRORS = "easel.api_errors"


def register_api_errors(app: Flask, prefix: str, formatter: ErrorFormatter) -> None:
    """Answer every error under ``prefix`` with ``formatter``'s body: an API client never gets an HTML page."""
    app.extensions.setdefault(API_ERRORS, []).append((prefix.rstrip("/"), formatter))


def _api_formatter() -> ErrorFormatter | None:
    for prefix, formatter in current_app.extensions.get(API_ERRORS, ()):
        if request.path == prefix or request.path.startswith(prefix + "/"):
            return formatter
    return None


def wants_json() -> bool:
    """API paths, and in-page requests that ask for JSON first (the studio's submit and cancel)."""
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def render_error(code: int, message: str | None = None, exc: Exception | None = None):
    """Render the error page (or the API's JSON body) for ``code``."""
    title, default = MESSAGES.get(code, ("Error", "Something went wrong."))
    text = message or default
    formatter = _api_formatter()
    if formatter is not None:
        return formatter(code, title, text, exc)
    if wants_json():
        return make_response(jsonify(error=text, status=code), code)
    return make_response(render_template("errors/error.html", code=code, title=title, message=text), code)


def http_error_response(exc: HTTPException):
    """The answer to any HTTP error: the API's body under an API's prefix, else JSON or the error page."""
    code = exc.code or 500
    custom = exc.description if code in (400, 401) and exc.description != exc.__class__.description else None
    response = render_error(code, custom, exc)
    if code == 405 and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def register(app: Flask) -> None:
    """Attach the handlers to ``app``."""

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return render_error(400, "This form has expired or did not come from this site. Reload the page and try again.",
                            exc)

    app.register_error_handler(HTTPException, http_error_response)

    @app.errorhandler(InternalServerError)
    def server_error(exc):
        return render_error(500, None, exc)

    @app.errorhandler(OperationalError)
    def database_down(exc: OperationalError):
        """Locked, read-only or unreachable: a clear 503, and whatever the request began is rolled back."""
        log.warning("database unavailable during %s %s: %s", request.method, request.path, exc.orig or exc)
        try:
            db.session.rollback()
        except OperationalError:  # the connection is gone; the pool replaces it on next use
            pass
        if g.get("_login_user") is None:  # who is signed in was not read yet: do not ask the database again
            g._login_user = login_manager.anonymous_user()
        try:
            response = render_error(503, DATABASE_DOWN)
        except SQLAlchemyError:  # the signed-in person's row cannot be read back: show the page as to a visitor
            g._login_user = login_manager.anonymous_user()
            response = render_error(503, DATABASE_DOWN)
        response.headers["Retry-After"] = str(RETRY_AFTER)
        return response
