"""Monitoring: /metrics only for the scraper (token or network), /healthz, /readyz with real Redis and workers
(the scrape of a site started as ``make run`` starts it is in tests/e2e)."""
from __future__ import annotations

import ipaddress
import signal

import requests

from tests.support import Auth, free_port, metric_sample, point_redis_at, submit_ok, wait_for, wait_status


def test_metrics_are_404_without_the_token_or_an_allowed_network(app, client):
    app.config["METRICS_TOKEN"] = "scrape-secret"
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
    assert client.get("/metrics", headers={"Authorization": "scrape-secret"}).status_code == 404
    response = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    assert 'easel_queue_jobs{queue="generate:easel-tiny"} 0.0' in text
    assert "easel_http_request_duration_seconds_bucket" in text

    app.config["METRICS_TOKEN"] = ""
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404
    app.config["METRICS_ALLOWED_NETWORKS"] = [ipaddress.ip_network("10.0.0.0/8")]
    assert client.get("/metrics").status_code == 404  # the test client is 127.0.0.1
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200


def test_health_and_readiness_follow_the_worker_and_redis(app, client, workers, app_env, make_user):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert {name: check["ok"] for name, check in checks.items()} == {
        "database": True, "redis": True, "storage": True, "generation_workers": False}
    assert all(isinstance(check["seconds"], float) for check in checks.values())

    chores = workers.start(queues="default")  # a chore worker is not a generation worker
    port = free_port()  # a worker on a machine of its own serves its own counts
    proc = workers.start(extra_env={"WORKER_METRICS_PORT": str(port), "METRICS_TOKEN": "w-tok"})
    wait_for(lambda: client.get("/readyz").status_code == 200, timeout=120, message="the worker to be ready")
    assert client.get("/readyz").get_json()["checks"]["generation_workers"]["count"] == 1
    make_user("ada@example.com")
    Auth(client).login()
    generation_id = submit_ok(client, steps="2")
    assert wait_status(client, generation_id, {"succeeded", "failed"})["status"] == "succeeded"
    worker_metrics = f"http://127.0.0.1:{port}/metrics"
    assert requests.get(worker_metrics, timeout=10).status_code == 404
    assert requests.get(worker_metrics, headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 404
    text = requests.get(worker_metrics, headers={"Authorization": "Bearer w-tok"}, timeout=10).text
    assert metric_sample(text, "easel_generations_total", status="succeeded", model="easel-tiny") == 1
    assert metric_sample(text, "easel_images_total", model="easel-tiny") == 1
    proc.send_signal(signal.SIGTERM)  # a worker told to stop leaves the registry at once
    assert proc.wait(60) == 0
    assert client.get("/readyz").status_code == 503
    assert chores.poll() is None

    workers.start()
    wait_for(lambda: client.get("/readyz").status_code == 200, timeout=120, message="the second worker")
    point_redis_at(app, f"redis://:hunter2@127.0.0.1:{free_port()}/0")  # nothing listens there
    response = client.get("/readyz")
    body = response.get_data(as_text=True)
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert not checks["redis"]["ok"] and not checks["generation_workers"]["ok"] and checks["database"]["ok"]
    for secret in ("hunter2", app_env["EASEL_INSTANCE_DIR"], app_env["MEDIA_DIR"], "127.0.0.1"):
        assert secret not in body


