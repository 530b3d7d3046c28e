"""`make run` under faults, with the real processes: a killed worker or Redis is restarted, the site keeps serving.

One site (``python -m webapp.launch``) serves the whole module; its teardown is the Ctrl-C test.
"""
from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support import CSRF_RE, ROOT, free_port, wait_for, wait_for_port

from .test_launch import alive, descendants, stop_site

HEARTBEAT_TTL, REAPER_INTERVAL = 3, 2
BOUND = HEARTBEAT_TTL + REAPER_INTERVAL  # what the README promises, at these settings
FIELDS = {"prompt": "a red circle on a blue background", "negative_prompt": "", "model": "easel-tiny",
          "width": "64", "height": "64", "steps": "8", "guidance": "5.0", "seed": "42", "num_images": "1",
          "style": "none"}


class Site:
    """The launched site: its supervisord process, its log, and a signed-in browser session."""

    def __init__(self, proc: subprocess.Popen, url: str, log: Path, redis_port: int):
        self.proc, self.url, self.log, self.redis_port = proc, url, log, redis_port
        self.http = requests.Session()
        self.seen: set[int] = set()  # every process the site ever had, killed ones too

    def child(self, *words: str) -> int:
        """The pid of supervisord's child whose command line holds all ``words``."""
        for pid in descendants(self.proc.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            if ppid == self.proc.pid and all(word in cmdline for word in words):
                return pid
        raise LookupError(f"no process running {words}")

    def remember(self) -> None:
        self.seen |= descendants(self.proc.pid)

    def token(self, path: str) -> str:
        match = CSRF_RE.search(self.http.get(self.url + path, timeout=10).text)
        assert match, f"no csrf_token on {path}"
        return match.group(1) or match.group(2)

    def submit(self, **overrides) -> requests.Response:
        data = {**FIELDS, **{k: str(v) for k, v in overrides.items()}, "csrf_token": self.token("/")}
        return self.http.post(self.url + "/generations", data=data, allow_redirects=False, timeout=30)

    def submit_ok(self, **overrides) -> str:
        response = self.submit(**overrides)
        assert response.status_code == 303, response.text[:2000]
        return re.fullmatch(r"/generations/([0-9a-f-]{36})", response.headers["Location"]).group(1)

    def state(self, generation_id: str) -> dict:
        response = self.http.get(f"{self.url}/api/generations/{generation_id}", timeout=10)
        assert response.status_code == 200, response.text[:500]
        return response.json()

    def wait_final(self, generation_id: str, timeout: float) -> dict:
        return wait_for(lambda: (s := self.state(generation_id))["status"] in {"succeeded", "failed", "canceled"} and s,
                        timeout=timeout, interval=0.2, message=f"generation {generation_id} to end")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("site")
    port, redis_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "SECRET_KEY", "MEDIA_DIR"}}
    env.update(EASEL_INSTANCE_DIR=str(tmp / "instance"), PORT=str(port), EASEL_REDIS_PORT=str(redis_port),
               EASEL_ENV="development", EASEL_CATALOG=str(ROOT / "tests" / "catalog.toml"), EASEL_MODEL="easel-tiny",
               EASEL_HEARTBEAT_TTL=str(HEARTBEAT_TTL), EASEL_REAPER_INTERVAL=str(REAPER_INTERVAL),
               MAIL_BACKEND="console", EASEL_TORCH_THREADS="1", MAX_ACTIVE_PER_USER="5")
    log = tmp / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "webapp.launch"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    site = Site(proc, f"http://127.0.0.1:{port}", log, redis_port)
    served = False
    try:
        wait_for(lambda: "Listening on generate" in site.log_text() or proc.poll() is not None, timeout=120,
                 message="the generation worker")
        assert proc.poll() is None, site.log_text()[-3000:]
        token = site.token("/auth/register")
        response = site.http.post(site.url + "/auth/register", timeout=30, data={
            "email": "ada@example.com", "password": "correct horse", "confirm": "correct horse", "csrf_token": token})
        [link] = re.findall(r'id="finish-signup" href="([^"]+)"', response.text)  # no mail server: the page shows it
        response = site.http.post(site.url + link, timeout=30, data={"csrf_token": site.token(link)})
        assert response.status_code == 200 and "Sign out" in response.text, response.text[:2000]
        site.remember()
        yield site
        site.remember()
        served = True
    finally:
        stop_site(proc, site.seen, interrupt=served)  # Ctrl-C in the terminal once the tests are done


def test_instance_and_redis_password_are_private(site):
    instance = Path(site.log).parent / "instance"
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    for path in (instance / "redis_password", instance / "redis" / "redis.conf"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    password = (instance / "redis_password").read_text().strip()
    assert len(password) >= 32
    from redis import Redis
    from redis.exceptions import AuthenticationError, ResponseError

    with pytest.raises((AuthenticationError, ResponseError)):  # no password, no entry
        Redis(port=site.redis_port).ping()
    assert Redis(port=site.redis_port, password=password).ping()
    for pid in descendants(site.proc.pid):  # the password is on no command line
        assert password.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_killed_worker_is_restarted_and_its_job_ends_failed(site):
    old = site.child("jobs.worker", "generate")
    listening = site.log_text().count("Listening on generate")
    generation_id = site.submit_ok(model="easel-tiny-slow", steps=1000)
    wait_for(lambda: site.state(generation_id)["step"] >= 2, timeout=60, message="the job to run")
    site.remember()
    os.kill(old, signal.SIGKILL)  # as the out-of-memory killer would
    killed_at = time.monotonic()

    assert site.http.get(site.url + "/", timeout=10).status_code == 200  # the site keeps serving
    final = site.wait_final(generation_id, timeout=BOUND + 25)
    took = time.monotonic() - killed_at
    assert final["status"] == "failed" and "worker stopped" in final["error"]
    assert took < BOUND + 10, f"settled after {took:.1f}s"
    print(f"killed worker's generation failed {took:.1f}s after the kill (bound {BOUND}s + chore latency)")

    wait_for(lambda: site.log_text().count("Listening on generate") > listening, timeout=60,
             message="the worker to come back")
    assert "exited: worker (terminated by SIGKILL; not expected)" in site.log_text()
    assert site.child("jobs.worker", "generate") != old
    later = site.submit_ok()
    assert site.wait_final(later, timeout=60)["status"] == "succeeded"


def test_killed_redis_is_restarted_and_nothing_is_lost(site):
    redis_pid, worker_pid = site.child("redis-server"), site.child("jobs.worker", "generate")
    running = site.submit_ok(model="easel-tiny-slow", steps=200)
    queued = site.submit_ok()  # waits behind it, in Redis only
    wait_for(lambda: site.state(running)["step"] >= 2, timeout=60, message="the job to run")
    time.sleep(1.2)  # append-only file: fsync every second
    # Freeze the supervisor so that the outage lasts long enough to look at; thawed, it restarts Redis.
    os.kill(site.proc.pid, signal.SIGSTOP)
    try:
        site.remember()
        os.kill(redis_pid, signal.SIGKILL)
        wait_for(lambda: not alive(redis_pid), timeout=10, message="Redis to die")
        assert site.http.get(site.url + "/", timeout=10).status_code == 200
        refused = site.submit()
        assert refused.status_code == 503 and "try again" in refused.text.lower(), refused.text[:2000]
    finally:
        os.kill(site.proc.pid, signal.SIGCONT)
    wait_for_port(site.redis_port, timeout=30)
    assert site.child("redis-server") != redis_pid
    assert "exited: redis (terminated by SIGKILL; not expected)" in site.log_text()

    # Nothing stuck: the cut-off job ends one way or the other, the queued one survived the restart.
    assert site.wait_final(running, timeout=60)["status"] in {"succeeded", "failed"}
    assert site.wait_final(queued, timeout=60)["status"] == "succeeded"
    after = site.submit_ok()
    assert site.wait_final(after, timeout=60)["status"] == "succeeded"
    assert site.child("jobs.worker", "generate") == worker_pid  # it reconnected rather than died
