"""What monitoring reads: ``GET /metrics`` (Prometheus), ``GET /healthz`` (liveness), ``GET /readyz`` (readiness).

``/metrics`` answers a scraper holding ``Authorization: Bearer $METRICS_TOKEN`` or coming from
``METRICS_ALLOWED_NETWORKS``; everyone else gets 404, as for any page they may not see. Health answers
anyone, and its JSON names each check, whether it passed and how long it took: never a secret, a URL or a path.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from flask import Blueprint, Flask, Response, abort, current_app, g, jsonify, request
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from sqlalchemy import text

from . import metrics, services
from .extensions import db
from .queues import SERIALIZER, chore_queue, generation_queues, is_generation_queue
from .worker_status import live_workers

bp = Blueprint("monitoring", __name__)


def scraper_allowed() -> bool:
    """The request holds the metrics token, or comes from an allowed network."""
    return metrics.allowed(request.headers.get("Authorization", ""), request.remote_addr,
                           current_app.config.get("METRICS_TOKEN") or "",
                           current_app.config.get("METRICS_ALLOWED_NETWORKS") or [])


class LiveCollector(Collector):
    """What exists now, read from Redis at each scrape: jobs waiting per queue, live workers per queue."""

    def __init__(self, within: float):
        self.within = within

    def collect(self) -> Iterable:
        queues = GaugeMetricFamily("easel_queue_jobs", "Jobs waiting in each RQ queue now.", labels=["queue"])
        workers = GaugeMetricFamily("easel_workers", "Workers alive now (a fresh heartbeat), by queue.",
                                    labels=["queue"])
        up = GaugeMetricFamily("easel_redis_up", "1 when Redis answered this scrape.")
        try:
            names = []
            for queue in [*generation_queues(), chore_queue()]:
                names.append(queue.name)
                queues.add_metric([queue.name], queue.count)
            counts = dict.fromkeys(names, 0)
            for worker in live_workers(services.quick_redis(), self.within, serializer=SERIALIZER):
                for name in worker.queue_names():
                    counts[name] = counts.get(name, 0) + 1
            for name, count in counts.items():
                workers.add_metric([name], count)
            up.add_metric([], 1)
        except RedisError:
            up.add_metric([], 0)
        yield queues
        yield workers
        yield up


@bp.get("/metrics")
def scrape() -> Response:
    if not scraper_allowed():
        abort(404)
    body = metrics.exposition(LiveCollector(current_app.config["READY_WORKER_SECONDS"]))
    return Response(body, content_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})


@bp.get("/healthz")
def healthz() -> Response:
    """The process answers."""
    response = jsonify(status="ok")
    response.headers["Cache-Control"] = "no-store"
    return response


def _database() -> dict:
    db.session.execute(text("SELECT 1"))
    db.session.rollback()
    return {}


def _redis() -> dict:
    services.quick_redis().ping()
    return {}


def _storage() -> dict:
    storage = services.storage()
    path = storage.local_path("readyz/probe")
    if path is not None:
        root = path.parent.parent
        root.mkdir(parents=True, exist_ok=True)  # a new site's media directory appears with its first file
        if not root.is_dir() or not _writable(root):
            raise OSError("not writable")
    else:
        storage.exists("readyz/probe")  # S3: one HEAD request
    return {}


def _writable(path) -> bool:
    import os

    return os.access(path, os.W_OK | os.X_OK)


def _generation_workers() -> dict:
    within = current_app.config["READY_WORKER_SECONDS"]
    alive = [worker for worker in live_workers(services.quick_redis(), within, serializer=SERIALIZER)
             if any(is_generation_queue(name) for name in worker.queue_names())]
    if not alive:
        raise LookupError("no generation worker has a fresh heartbeat")
    return {"count": len(alive)}


CHECKS: dict[str, Callable[[], dict]] = {
    "database": _database, "redis": _redis, "storage": _storage, "generation_workers": _generation_workers,
}


def _run(check: Callable[[], dict]) -> dict:
    began = time.perf_counter()
    try:
        result = {"ok": True, **check()}
    except LookupError as exc:
        result = {"ok": False, "error": str(exc)}
    except Exception as exc:  # the kind of failure only: messages may hold hosts, paths or passwords
        result = {"ok": False, "error": f"unreachable ({type(exc).__name__})"}
    result["seconds"] = round(time.perf_counter() - began, 4)
    return result


@bp.get("/readyz")
def readyz() -> Response:
    """Database, Redis and storage answer, and a generation worker is alive: 200, else 503."""
    checks = {name: _run(check) for name, check in CHECKS.items()}
    ready = all(check["ok"] for check in checks.values())
    response = jsonify(status="ready" if ready else "not ready", checks=checks)
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response


def register(app: Flask) -> None:
    """The three routes, the timing of every request (``easel_http_request_duration_seconds``), request ids and
    JSON logs (``LOG_FORMAT``), and traces when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set."""
    app.register_blueprint(bp)
    from . import logs, telemetry

    logs.register(app)
    telemetry.instrument_app(app)

    @app.before_request
    def start_clock() -> None:
        g.easel_began = time.perf_counter()

    @app.after_request
    def stop_clock(response: Response) -> Response:
        began = g.pop("easel_began", None)
        if began is not None:
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            metrics.http_request(route, response.status_code, time.perf_counter() - began)
        return response
