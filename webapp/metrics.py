"""Prometheus metrics: what web processes and workers count, and the text ``GET /metrics`` serves.

Every process of a site (each web process, each worker) counts into its own files under
``PROMETHEUS_MULTIPROC_DIR`` (``prometheus_client``'s multiprocess mode), and the scrape adds them up.
``make run`` sets the directory (``instance/metrics``) and empties it at start; without it each process
counts alone, which suits tests and a single process. The setting is read when ``prometheus_client``
is first imported, so it must be in the environment before the process starts.

Recording is a call of one function here per event, so whoever owns the event needs one line:
``generation_finished``, ``email_result``, ``batch_made``, ``http_request``. What exists now (queued jobs,
live workers) is read from Redis at scrape time by ``webapp.monitoring``, never counted.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Iterable
from datetime import UTC, datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, make_wsgi_app, values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import config
from .extensions import db

log = logging.getLogger(__name__)

if config.metrics_dir():  # each metric's values open their files there when made
    os.makedirs(config.metrics_dir(), exist_ok=True)
    # Files named by host and pid, not pid alone: containers sharing one directory (a Compose volume) each
    # have their own pid 1. (prometheus_client's documented hook: a process identifier distinct per process.)
    _HOST = socket.gethostname().replace("_", "-")
    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: f"{_HOST}-{os.getpid()}")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FINAL = ("succeeded", "failed", "canceled")
PENDING = "easel_metrics_pending"  # Session.info key: finished generations counted once their commit lands

GENERATIONS = Counter("easel_generations_total", "Generations that reached a final status.", ["status", "model"])
IMAGES = Counter("easel_images_total", "Images made by succeeded generations.", ["model"])
GENERATION_SECONDS = Histogram(
    "easel_generation_seconds", "Seconds from submit to final status, by model.", ["model"],
    buckets=(1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600, float("inf")))
HTTP_SECONDS = Histogram(
    "easel_http_request_duration_seconds", "Seconds to answer an HTTP request, by route and status.",
    ["route", "status"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, float("inf")))
EMAILS = Counter("easel_emails_total", "Emails by result: sent, retry (will be tried again), failed (for good).",
                 ["result"])
BATCH_SIZE = Histogram("easel_batch_size", "Generations made by one pipeline call of a generation worker.",
                       buckets=(1, 2, 3, 4, 6, 8, 12, 16, float("inf")))


def multiprocess() -> bool:
    """True when this process counts into ``PROMETHEUS_MULTIPROC_DIR`` with the site's other processes."""
    return bool(config.metrics_dir())


def generation_finished(model: str, status: str, seconds: float | None, images: int) -> None:
    """Count one generation that reached ``status`` (``seconds`` from submit; ``images`` it made)."""
    model = model or "unknown"
    GENERATIONS.labels(status=status, model=model).inc()
    if images:
        IMAGES.labels(model=model).inc(images)
    if seconds is not None and seconds >= 0:
        GENERATION_SECONDS.labels(model=model).observe(seconds)


def email_result(result: str) -> None:
    """Count one email attempt: ``sent``, ``retry`` or ``failed``."""
    EMAILS.labels(result=result).inc()


def batch_made(generations: int) -> None:
    """Count one pipeline call of a generation worker and how many generations it made."""
    BATCH_SIZE.observe(generations)


def http_request(route: str, status: int, seconds: float) -> None:
    """Time one answered HTTP request (``route``: the URL rule, never the path a client sent)."""
    HTTP_SECONDS.labels(route=route, status=str(status)).observe(seconds)


def generation_moved(session: Session, generation_id: str, status: str) -> None:
    """A generation just moved to ``status`` in ``session``'s transaction: count it once that commits.

    Called by the one function that moves statuses; the model, the submit time and the images are read
    now, inside the transaction (the images saved with the final status are already in it).
    """
    if status not in FINAL:
        return
    try:
        generations, images = db.metadata.tables["generations"], db.metadata.tables["images"]
        row = session.execute(select(generations.c.model, generations.c.created_at)
                              .where(generations.c.id == generation_id)).first()
        count = session.scalar(select(func.count()).select_from(images)
                               .where(images.c.generation_id == generation_id)) if status == "succeeded" else 0
    except Exception:  # a statistic is never worth a generation
        log.warning("could not read generation %s for the metrics", generation_id, exc_info=True)
        return
    if row is None:
        return
    seconds = None
    if row.created_at is not None:
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        seconds = (datetime.now(UTC) - created).total_seconds()
    session.info.setdefault(PENDING, []).append((row.model, status, seconds, count or 0))


def _flush_pending(session: Session) -> None:
    for args in session.info.pop(PENDING, []):
        generation_finished(*args)


def _drop_pending(session: Session) -> None:
    session.info.pop(PENDING, None)


def _listen() -> None:
    from sqlalchemy import event

    event.listen(Session, "after_commit", _flush_pending)
    event.listen(Session, "after_soft_rollback", lambda session, previous: _drop_pending(session))


_listen()


class _ThisProcess(Collector):
    """The default registry's metrics, for a scrape of a process that counts alone."""

    def collect(self) -> Iterable:
        yield from REGISTRY.collect()


def exposition(*collectors: Collector) -> bytes:
    """The text a scrape gets: every process's counts (or this one's), plus ``collectors`` read now."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


def allowed(authorization: str, remote_addr: str | None, token: str, networks: list) -> bool:
    """A scraper holding ``Authorization: Bearer <token>`` (when a token is set), or one from ``networks``."""
    if token and authorization.startswith("Bearer ") and hmac.compare_digest(
            authorization[7:].strip().encode(), token.encode()):
        return True
    if networks and remote_addr:
        try:
            address = ipaddress.ip_address(remote_addr)
        except ValueError:
            return False
        return any(address in network for network in networks)
    return False


def serve(port: int, host: str, token: str, networks: list) -> threading.Thread:
    """Serve this process's metrics on ``host:port`` in a thread (a worker on a machine of its own).

    The same rule as the web's ``/metrics``: the token or an allowed network, else 404.
    """
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args) -> None:
            pass

    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    exported = make_wsgi_app(registry)

    def app(environ, start_response):
        if environ.get("PATH_INFO") != "/metrics" or not allowed(
                environ.get("HTTP_AUTHORIZATION", ""), environ.get("REMOTE_ADDR"), token, networks):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not Found\n"]
        return exported(environ, start_response)

    server = make_server(host, port, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, name="easel-metrics", daemon=True)
    thread.start()
    return thread
