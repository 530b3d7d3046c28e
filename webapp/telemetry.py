"""OpenTelemetry traces, on only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (nothing is imported otherwise).

The web's requests are traced by the Flask instrumentation, Redis calls by the Redis one; each job enqueued
carries its trace context in ``job.meta["otel"]`` (``TracedQueue``), and the worker runs the job inside a span
continuing that trace (``job_span``), so one trace goes from ``POST /generations`` to the pipeline call. Spans
carry ``easel.generation_id`` (the job id of a generation). The exporter is OTLP over HTTP, configured by
OpenTelemetry's own variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME``…).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from . import config

_lock = threading.Lock()
_ready = False


def enabled() -> bool:
    """True when an OTLP endpoint is set."""
    return bool(config.tracing_endpoint())


def setup(service: str) -> bool:
    """Install the tracer provider and the Redis instrumentation once per process; False when tracing is off."""
    global _ready
    if not enabled():
        return False
    with _lock:
        if _ready:
            return True
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        name = config.tracing_service(service)
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        RedisInstrumentor().instrument()
        _ready = True
    return True


def flush() -> None:
    """Send the spans still buffered (a worker about to exit)."""
    if _ready:
        from opentelemetry import trace

        trace.get_tracer_provider().force_flush(5000)


def instrument_app(app: Flask) -> None:
    """Trace the app's requests (when tracing is on)."""
    if setup("easel-web"):
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        FlaskInstrumentor().instrument_app(app, excluded_urls="healthz,readyz,metrics")


def carrier(job_id: str, generation: bool) -> dict[str, str]:
    """The current trace context for a job's meta ({} when off), noting the generation id on the current span."""
    if not _ready:
        return {}
    from opentelemetry import propagate, trace

    if generation:
        trace.get_current_span().set_attribute("easel.generation_id", job_id)
    context: dict[str, str] = {}
    propagate.inject(context)
    return context


@contextmanager
def job_span(job, generation: bool, companions: int = 0) -> Iterator[None]:
    """Run a job inside a span continuing the trace it was enqueued in (nothing when tracing is off)."""
    if not _ready:
        yield
        return
    from opentelemetry import propagate, trace

    parent = propagate.extract((job.meta or {}).get("otel") or {})
    tracer = trace.get_tracer("easel.worker")
    with tracer.start_as_current_span(f"job {job.func_name}", context=parent, kind=trace.SpanKind.CONSUMER) as span:
        span.set_attribute("easel.job_id", job.id)
        span.set_attribute("easel.queue", job.origin or "")
        if generation:
            span.set_attribute("easel.generation_id", job.id)
            span.set_attribute("easel.batch_size", 1 + companions)
        yield
