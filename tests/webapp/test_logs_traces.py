"""Request ids and JSON logs (``LOG_FORMAT=json``), and OpenTelemetry traces from the web request into the worker's
span, exported over OTLP/HTTP to a collector stand-in (the protocol boundary) by a real web server and worker processes."""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from tests.support import ROOT, HttpClient, free_port, http_session, submit_ok, wait_for, wait_status


def test_each_request_gets_an_id_that_json_logs_carry(app, client):
    from flask import g

    from webapp import logs

    assert client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.1"}).headers["X-Request-ID"] == "lb-7f3a.1"
    made = client.get("/healthz", headers={"X-Request-ID": "not an id; drop table"}).headers["X-Request-ID"]
    assert len(made) == 32 and made != client.get("/healthz").headers["X-Request-ID"]

    out = io.StringIO()
    handler = logs.handler("json")
    handler.setStream(out)
    logger = logging.getLogger("easel.test.json")
    logger.addHandler(handler)
    try:
        with app.test_request_context("/", headers={"X-Request-ID": "req-123"}):
            app.preprocess_request()
            assert g.request_id == "req-123"
            logger.warning("made %d pictures", 2)
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "made 2 pictures" and first["request_id"] == "req-123" and first["level"] == "WARNING"
    assert "request_id" not in second and "job_id" not in second


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP endpoint keeping the spans it is sent (decoded with OpenTelemetry's own protobuf classes)."""

    def __init__(self):
        self.spans: list[tuple[str, object]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    request = ExportTraceServiceRequest.FromString(body)
                    for resource in request.resource_spans:
                        service = next(a.value.string_value for a in resource.resource.attributes
                                       if a.key == "service.name")
                        for scope in resource.scope_spans:
                            collector.spans += [(service, span) for span in scope.spans]
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def attribute(self, span, key: str) -> str | None:
        return next((a.value.string_value for a in span.attributes if a.key == key), None)


def test_a_generation_is_one_trace_from_the_request_to_the_worker(app, app_env, make_user, workers, tmp_path):
    collector = Collector()
    tracing = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_port}",
               "OTEL_BSP_SCHEDULE_DELAY": "200", "LOG_FORMAT": "json"}
    make_user("ada@example.com")
    worker = workers.start(extra_env=tracing)
    port = free_port()
    log = open(tmp_path / "web.log", "wb")
    web = subprocess.Popen([sys.executable, "-m", "waitress", "--host=127.0.0.1", f"--port={port}",
                            "wsgi:app"], cwd=ROOT, env={**os.environ, **app_env, **tracing}, stdout=log,
                           stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(base), timeout=60, message="the web server to answer")
        session, token = http_session(base, "ada@example.com")
        client = HttpClient(session, base, token)
        generation_id = submit_ok(client, steps="2")
        assert wait_status(client, generation_id, {"succeeded", "failed"})["status"] == "succeeded"

        def both():
            found = {service: span for service, span in collector.spans
                     if collector.attribute(span, "easel.generation_id") == generation_id}
            return found if {"easel-web", "easel-worker"} <= set(found) else None

        try:
            found = wait_for(both, timeout=30, message="the web's and the worker's spans")
        except AssertionError:
            seen = [(service, span.name, [(a.key, a.value.string_value) for a in span.attributes
                                          if a.key.startswith("easel")])
                    for service, span in collector.spans if service != "easel-web"]
            raise AssertionError(f"spans: {seen[:40]}\nweb log: {(tmp_path / 'web.log').read_text()[-3000:]}") from None
        request_span, job_span = found["easel-web"], found["easel-worker"]
        assert request_span.name == "POST /generations"
        assert job_span.name == "job jobs.generate.run"
        assert job_span.trace_id == request_span.trace_id  # one trace
        assert job_span.parent_span_id == request_span.span_id
        assert any(service == "easel-web" and span.name.startswith(("EVALSHA", "MULTI", "HSET", "RPUSH", "ZADD",
                                                                     "LREM", "SET", "GET", "EXEC"))
                   for service, span in collector.spans)  # Redis calls are traced too
    finally:
        web.terminate()
        web.wait(30)
        log.close()
        collector.shutdown()
        collector.server_close()
    worker.terminate()
    worker.wait(60)
    lines = [line for line in worker.log_path.read_text().splitlines() if line.startswith("{")]
    entries = [json.loads(line) for line in lines]
    assert any(entry.get("job_id") == generation_id for entry in entries)
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def test_tracing_off_costs_nothing(app_env):
    """Without an endpoint neither the instrumentation nor a tracer provider is loaded in the web process."""
    code = ("import sys, wsgi\nfrom webapp import telemetry\n"
            "print(telemetry._ready, any(m.startswith('opentelemetry.instrumentation') for m in sys.modules),"
            " 'opentelemetry.sdk.trace' in sys.modules)")
    env = {k: v for k, v in {**os.environ, **app_env}.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "False"]
