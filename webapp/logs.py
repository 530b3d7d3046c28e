"""Logs: each line carries the request id (web) or the job id (workers); ``LOG_FORMAT=json`` writes one JSON
object per line for a log collector, anything else the plain text format.

The request id is the caller's ``X-Request-ID`` when it is a short token (a load balancer's), else a new one;
it is echoed in the response's ``X-Request-ID``. A worker's job id is the generation id for generations.
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import UTC, datetime

from flask import Flask, Response, g, has_request_context, request
from rq import get_current_job

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s [%(job_id)s] %(message)s"
_configured = False


class ContextFilter(logging.Filter):
    """Stamp each record with ``request_id`` and ``job_id`` (``-`` outside a request or a job)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(g, "request_id", "-") if has_request_context() else "-"
        job = get_current_job()
        record.job_id = job.id if job else "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, job_id (+ exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        for name in ("request_id", "job_id"):
            if getattr(record, name, "-") != "-":
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def handler(log_format: str) -> logging.Handler:
    """A stderr handler in ``log_format`` (``json`` or text) with the context filter."""
    out = logging.StreamHandler()
    out.addFilter(ContextFilter())
    out.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    return out


def configure(level: str, log_format: str) -> None:
    """The root logger's one handler, for a whole process (a worker; a web process when ``LOG_FORMAT=json``)."""
    global _configured
    logging.basicConfig(level=level, handlers=[handler(log_format)], force=True)
    _configured = True


def register(app: Flask) -> None:
    """Give each request its id (and the response its header); with ``LOG_FORMAT=json``, log JSON."""
    if app.config.get("LOG_FORMAT") == "json" and not _configured:
        configure(app.config.get("LOG_LEVEL", "INFO"), "json")

    @app.before_request
    def request_id() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        return response
