"""Monitoring: /metrics only for the scraper (token or network), /healthz, /readyz with real Redis and workers,
and a site started as ``make run`` starts it whose counters rise as pictures are made."""
from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.support import ROOT, Auth, free_port, http_session, point_redis_at, submit_ok, wait_for, wait_status


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
    assert _sample(text, "easel_generations_total", status="succeeded", model="easel-tiny") == 1
    assert _sample(text, "easel_images_total", model="easel-tiny") == 1
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


def _sample(text: str, name: str, **labels) -> float:
    """One sample's value from Prometheus text (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match and match.group(1) == name and ",".join(sorted((match.group(2) or "").split(","))) == wanted:
            return float(match.group(3))
    return 0.0


def test_a_running_site_counts_pictures_from_every_process(tmp_path):
    """``make run``'s launcher with METRICS_TOKEN: the web process and the worker count into one scrape."""
    port, redis_port = free_port(), free_port()
    instance = tmp_path / "instance"
    env = {k: v for k, v in os.environ.items()
           if k not in {"REDIS_URL", "DATABASE_URL", "SECRET_KEY", "MEDIA_DIR", "PROMETHEUS_MULTIPROC_DIR"}}
    env.update(EASEL_INSTANCE_DIR=str(instance), PORT=str(port), EASEL_REDIS_PORT=str(redis_port),
               EASEL_ENV="development", EASEL_CATALOG=str(ROOT / "tests" / "catalog.toml"), METRICS_TOKEN="tok-123",
               EASEL_MODEL="easel-tiny")
    stale = instance / "metrics" / "counter_1.db"  # left by an earlier run: emptied at start
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"junk")
    base = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "run.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "webapp.launch"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def scrape() -> str:
            response = requests.get(f"{base}/metrics", headers={"Authorization": "Bearer tok-123"}, timeout=10)
            assert response.status_code == 200
            return response.text

        def ready() -> bool:
            assert proc.poll() is None, Path(tmp_path / "run.log").read_text()[-3000:]
            try:
                return requests.get(f"{base}/readyz", timeout=10).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, timeout=120, interval=0.5, message="the site to be ready")
        assert not stale.exists()
        assert requests.get(f"{base}/metrics", timeout=10).status_code == 404
        admin = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi:app", "create-admin", "ops@example.com"],
                               cwd=ROOT, env={**env, "EASEL_ADMIN_PASSWORD": "correct horse"}, capture_output=True,
                               text=True, timeout=120)
        assert admin.returncode == 0, admin.stderr
        before = scrape()
        assert _sample(before, "easel_workers", queue="generate:easel-tiny") == 1
        assert _sample(before, "easel_generations_total", status="succeeded", model="easel-tiny") == 0

        session, token = http_session(base, "ops@example.com")
        client = _Client(session, base, token)
        for made in (1, 2):
            generation_id = submit_ok(client, steps="2", num_images="2")
            assert wait_status(client, generation_id, {"succeeded", "failed"})["status"] == "succeeded"
            after = scrape()
            assert _sample(after, "easel_generations_total", status="succeeded", model="easel-tiny") == made
            assert _sample(after, "easel_images_total", model="easel-tiny") == 2 * made
            assert _sample(after, "easel_generation_seconds_count", model="easel-tiny") == made
            assert _sample(after, "easel_batch_size_count") == made
        # the web's and the worker's histograms are added up (each process counts into its own file)
        pids = {path.name.split("_")[-1] for path in (instance / "metrics").glob("histogram_*.db")}
        assert len(pids) >= 2
        assert _sample(after, "easel_http_request_duration_seconds_count", route="/generations", status="303") == 2
        assert _sample(after, "easel_queue_jobs", queue="generate:easel-tiny") == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


class _Client:
    """The shape of Flask's test client that ``submit_ok`` and ``wait_status`` use, over real HTTP."""

    def __init__(self, session: requests.Session, base: str, token: str):
        self.session, self.base, self.token = session, base, token

    def get(self, path: str):
        return _Response(self.session.get(self.base + path, timeout=30))

    def post(self, path: str, data: dict):
        return _Response(self.session.post(self.base + path, data=data, allow_redirects=False, timeout=30))


class _Response:
    def __init__(self, response: requests.Response):
        self.response = response
        self.status_code = response.status_code
        self.headers = {k: v.removeprefix(self_base(response)) for k, v in response.headers.items()}

    def get_json(self):
        return self.response.json()

    def get_data(self, as_text: bool = False):
        return self.response.text if as_text else self.response.content


def self_base(response: requests.Response) -> str:
    """The scheme and host of the request, so a Location header reads as a path."""
    url = response.request.url
    return url[: url.index("/", url.index("//") + 2)]
