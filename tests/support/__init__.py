"""Helpers shared by the tests: ports and waiting, CSRF-carrying requests, signing in, driving
generations through the real routes, worker processes, reading sent mail and the S3 bucket.

Fixtures live in ``tests/conftest.py``; everything a test imports comes from here.
"""
from __future__ import annotations

import email
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from types import SimpleNamespace

import requests

ROOT = Path(__file__).resolve().parent.parent.parent
TEST_CATALOG = Path(os.environ.get("EASEL_TEST_CATALOG", ROOT / "tests" / "catalog.toml"))


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    """Block until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} within {timeout}s")


def migrate(database_url: str, instance: Path, revision: str = "head") -> None:
    """Build or bring up a database as ``make run`` does, in a process of its own (no test settings leak in).

    ``head`` runs ``webapp.launch.upgrade_database`` itself; another revision runs ``flask db upgrade REVISION``.
    """
    env = {**os.environ, "EASEL_ENV": "test", "SECRET_KEY": "migrations", "EASEL_INSTANCE_DIR": str(instance),
           "DATABASE_URL": database_url, "HF_HUB_OFFLINE": "1"}
    if revision == "head":
        argv = [sys.executable, "-c", "from webapp.launch import upgrade_database; upgrade_database()"]
    else:
        argv = [sys.executable, "-m", "flask", "--app", "wsgi:app", "db", "upgrade", revision]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"the migrations failed on {database_url}:\n{done.stderr[-4000:]}")


def point_redis_at(app, url: str) -> None:
    """Make ``app`` use another Redis from now on (its clients are made anew on next use)."""
    app.config["REDIS_URL"] = url
    for client in ("redis", "quick_redis"):
        app.extensions["easel"].__dict__.pop(client, None)


def queued_jobs(redis_url: str, queue: str = "generate") -> int:
    """How many jobs wait in an RQ queue; for ``generate``, in every generation queue (one per model)."""
    from redis import Redis
    from rq import Queue

    connection = Redis.from_url(redis_url)
    if queue != "generate":
        return Queue(queue, connection=connection).count
    return sum(q.count for q in Queue.all(connection=connection) if q.name.split(":")[0] == "generate")


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1, message: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def metric_sample(text: str, name: str, **labels) -> float:
    """One sample's value from Prometheus text (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match and match.group(1) == name and ",".join(sorted((match.group(2) or "").split(","))) == wanted:
            return float(match.group(3))
    return 0.0


def csrf_token(client, path: str) -> str:
    """Fetch ``path`` and read the CSRF token from its form, as a browser would."""
    html = client.get(path).get_data(as_text=True)
    match = CSRF_RE.search(html)
    assert match, f"no csrf_token on {path}"
    return match.group(1) or match.group(2)


class Auth:
    """Sign in and out through the real forms (with CSRF tokens)."""

    def __init__(self, client):
        self.client = client

    def register(self, email: str = "ada@example.com", password: str = "correct horse", confirm: str | None = None):
        token = csrf_token(self.client, "/auth/register")
        return self.client.post("/auth/register", data={
            "email": email, "password": password, "confirm": password if confirm is None else confirm, "csrf_token": token,
        })

    def sign_up(self, app, app_env: dict[str, str], email: str = "ada@example.com", password: str = "correct horse"):
        """Sign up all the way: the form, the emailed link, its button; returns the last response."""
        assert self.register(email, password).status_code == 200
        run_chores(app)
        message = [m for m in sent_mail(app_env) if m["To"] == email.strip().lower()][-1]
        [link] = links_in(body(message), "/auth/welcome/")
        path = link.removeprefix(app_env["PUBLIC_BASE_URL"])
        return self.client.post(path, data={"csrf_token": csrf_token(self.client, path)})

    def login(self, email: str = "ada@example.com", password: str = "correct horse", **extra):
        token = csrf_token(self.client, "/auth/login")
        return self.client.post("/auth/login", data={"email": email, "password": password, "csrf_token": token, **extra})

    def logout(self):
        token = csrf_token(self.client, "/")
        return self.client.post("/auth/logout", data={"csrf_token": token})


class Workers:
    """Start real ``python -m jobs.worker`` processes; all are stopped after the test."""

    def __init__(self, env: dict[str, str], log_dir: Path):
        self.env = env
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []
        self.logs: list = []

    def start(self, queues: str = "generate", extra_env: dict[str, str] | None = None,
              name: str | None = None, models: str | None = None, module: str = "jobs.worker") -> subprocess.Popen:
        """A worker process (``module``: another entry point that ends in ``jobs.worker.main``, for tests)."""
        env = {**os.environ, **self.env, **(extra_env or {}), "PYTHONUNBUFFERED": "1"}
        name = name or f"test-worker-{len(self.procs)}-{uuid.uuid4().hex[:6]}"
        log = open(self.log_dir / f"{name}.log", "wb")
        self.logs.append(log)
        argv = [sys.executable, "-m", module, "--queues", queues, "--name", name]
        argv += ["--models", models] if models else []
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        proc.log_path = self.log_dir / f"{name}.log"  # type: ignore[attr-defined]
        proc.worker_name = name  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self.logs:
            log.close()


def worker_report(redis_url: str, proc, generations: int) -> dict:
    """What a generation worker published about itself (``jobs.pipelines.publish``: pipeline loads, calls, catalog
    reads), once its pipeline calls were for at least ``generations`` generations."""
    import json

    from redis import Redis

    from webapp.worker_status import KEY

    def report() -> dict | None:
        with Redis.from_url(redis_url) as redis:
            raw = redis.get(KEY.format(proc.worker_name))
        found = json.loads(raw) if raw else None
        return found if found and found.get("generations", 0) >= generations else None

    return wait_for(report, timeout=30, message=f"worker {proc.worker_name} to report {generations} generation(s)")


def loaded_image_width(page, selector: str, timeout: float = 15000) -> int:
    """Wait until the image at ``selector`` has really loaded, and return its natural width."""
    page.wait_for_function(
        "sel => { const img = document.querySelector(sel); return img && img.complete && img.naturalWidth > 0; }",
        arg=selector, timeout=timeout)
    return page.eval_on_selector(selector, "img => img.naturalWidth")


# Generations through the real routes

FIELDS = {"prompt": "a red circle on a blue background", "negative_prompt": "", "model": "easel-tiny",
          "width": "64", "height": "64", "steps": "8", "guidance": "5.0", "seed": "42", "num_images": "1",
          "style": "none"}


def submit(client, **overrides):
    """POST the studio form (with its CSRF token) and return the response."""
    data = {**FIELDS, **{k: str(v) for k, v in overrides.items()}, "csrf_token": csrf_token(client, "/")}
    return client.post("/generations", data=data)


def submit_ok(client, **overrides) -> str:
    """Submit and return the new generation's id (asserting the 303)."""
    response = submit(client, **overrides)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    match = re.fullmatch(r"/generations/([0-9a-f-]{36})", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def state(client, generation_id: str) -> dict:
    response = client.get(f"/api/generations/{generation_id}")
    assert response.status_code == 200
    return response.get_json()


def wait_status(client, generation_id: str, statuses: set[str], timeout: float = 120.0) -> dict:
    """Poll the API until the status is one of ``statuses``."""
    return wait_for(lambda: (s := state(client, generation_id))["status"] in statuses and s,
                    timeout=timeout, interval=0.2, message=f"generation {generation_id} to be {statuses}")


def wait_running(client, generation_id: str, min_step: int = 2, timeout: float = 120.0) -> dict:
    """Poll until the job is running at ``min_step`` or later (fails at once if it ended)."""

    def check():
        s = state(client, generation_id)
        assert s["status"] in {"queued", "running"}, s
        return s if s["step"] >= min_step else None

    return wait_for(check, timeout=timeout, interval=0.1, message=f"generation {generation_id} to run")


# Moderation: signed-in clients, CSRF-carrying POSTs, rows made directly

def sign_in(app, email: str, password: str = "correct horse"):
    """A fresh test client signed in as ``email`` through the real form."""
    client = app.test_client()
    response = Auth(client).login(email, password)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def post(client, path: str, token_page: str = "/auth/account", **data):
    """POST ``data`` with a CSRF token read from ``token_page`` (any page with a form)."""
    return client.post(path, data={"csrf_token": csrf_token(client, token_page), **data})


def audit_entries(app, action: str | None = None) -> list[tuple[str, str, str, int | None]]:
    """(action, target_type, target_id, admin_id) of every audit entry, oldest first."""
    from webapp.extensions import db
    from webapp.tables import AuditLog

    with app.app_context():
        query = db.select(AuditLog).order_by(AuditLog.id)
        if action:
            query = query.where(AuditLog.action == action)
        return [(e.action, e.target_type, e.target_id, e.admin_id) for e in db.session.scalars(query)]


def add_report(app, image_id: str, reporter_id: int, reason: str = "spam", details: str = "") -> int:
    """Insert an open report directly."""
    from webapp.extensions import db
    from webapp.tables import Report

    with app.app_context():
        report = Report(image_id=image_id, reporter_id=reporter_id, reason=reason, details=details)
        db.session.add(report)
        db.session.commit()
        return report.id


def add_generation(app, user_id: int, status: str = "queued", age: timedelta = timedelta(),
                   generation_id: str | None = None) -> str:
    """Insert a generation row (no job) ``age`` ago."""
    from webapp.extensions import db
    from webapp.tables import Generation, utcnow

    with app.app_context():
        generation = Generation(user_id=user_id, status=status, prompt="a blue square", model="easel-tiny", width=64,
                                height=64, steps=4, guidance=5.0, seed=7, num_images=1,
                                created_at=utcnow() - age)
        if generation_id:
            generation.id = generation_id
        db.session.add(generation)
        db.session.commit()
        return generation.id


# Mail, links and the bucket

LINK_RE = re.compile(r"https?://[^\s\"'<>]+")


def bucket_keys(bucket: SimpleNamespace) -> list[str]:
    """Every key in the test bucket."""
    return [item["Key"] for item in bucket.client.list_objects_v2(Bucket=bucket.name).get("Contents", [])]


def sent_mail(app_env: dict[str, str]) -> list[EmailMessage]:
    """The messages the ``file`` backend wrote, oldest first."""
    folder = Path(app_env["MAIL_FILE_DIR"])
    if not folder.is_dir():
        return []
    return [email.message_from_bytes(path.read_bytes(), policy=default_policy)
            for path in sorted(folder.glob("*.eml"))]


def wait_for_mail(app_env: dict[str, str], count: int = 1, timeout: float = 60.0) -> list[EmailMessage]:
    """Block until the ``file`` backend has written ``count`` messages."""
    return wait_for(lambda: (found := sent_mail(app_env)) and len(found) >= count and found,
                    timeout=timeout, interval=0.2, message=f"{count} email(s)")


def body(message: EmailMessage, kind: str = "plain") -> str:
    """The text or HTML part of a message."""
    return message.get_body(preferencelist=(kind,)).get_content()


def links_in(text: str, path_part: str) -> list[str]:
    """Absolute links in ``text`` whose path contains ``path_part``."""
    return [link for link in LINK_RE.findall(text) if path_part in link]


def run_chores(app) -> None:
    """Run every queued chore job in this process (RQ's own worker, burst mode)."""
    from rq import SimpleWorker

    from webapp.queues import chore_queue

    with app.app_context():
        queue = chore_queue()
        SimpleWorker([queue], connection=queue.connection, serializer=queue.serializer).work(burst=True, with_scheduler=False)


def token_for(app, purpose: str, payload, age_seconds: int = 0) -> str:
    """A token signed ``age_seconds`` ago."""
    from itsdangerous import TimestampSigner

    from webapp.links import tokens as links

    with app.app_context():
        if not age_seconds:
            return links.make_token(purpose, payload)
        original = TimestampSigner.get_timestamp
        TimestampSigner.get_timestamp = lambda self: int(time.time()) - age_seconds
        try:
            return links.make_token(purpose, payload)
        finally:
            TimestampSigner.get_timestamp = original


def result_token(app, image_id: str, age_seconds: int = 0) -> str:
    """A result-link token for ``image_id`` as the app would make it now (its current link version)."""
    from webapp.extensions import db
    from webapp.links import tokens as links
    from webapp.tables import Image

    with app.app_context():
        image = db.session.get(Image, image_id)
        version = image.link_version if image is not None else 0
    return token_for(app, links.RESULT_LINK, {"image": image_id, "v": version}, age_seconds)




# Many requests at once, over real HTTP

def http_session(base: str, email: str, pool: int = 20, password: str = "correct horse"):
    """A ``requests`` session signed in through the real form (``pool`` connections), and a CSRF token."""
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=pool))
    token = CSRF_RE.search(session.get(f"{base}/auth/login").text)
    response = session.post(f"{base}/auth/login", data={"email": email, "password": password,
                                                       "csrf_token": token.group(1) or token.group(2)},
                            allow_redirects=False)
    assert response.status_code == 302, response.text[:500]
    token = CSRF_RE.search(session.get(f"{base}/").text)
    return session, token.group(1) or token.group(2)


def fire(count: int, request) -> list:
    """Call ``request()`` from ``count`` threads released together by one barrier; the results in order."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    barrier = Barrier(count)

    def one(_):
        barrier.wait()
        return request()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


# API tokens

def api_token(app, user_id: int, name: str = "script", expires_at=None) -> str:
    """Issue a personal API token for ``user_id`` directly; returns its secret."""
    from webapp.api_tokens import issue_token
    from webapp.extensions import db
    from webapp.tables import User

    with app.app_context():
        return issue_token(db.session.get(User, user_id), name, expires_at).secret


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


class HttpClient:
    """The shape of Flask's test client that ``submit_ok`` and ``wait_status`` use, over real HTTP."""

    def __init__(self, session: requests.Session, base: str, token: str):
        self.session, self.base, self.token = session, base, token

    def get(self, path: str):
        return HttpResponse(self.session.get(self.base + path, timeout=30))

    def post(self, path: str, data: dict):
        return HttpResponse(self.session.post(self.base + path, data=data, allow_redirects=False, timeout=30))


class HttpResponse:
    """A requests answer in the shape of Flask's test response (status, headers as paths, JSON, data)."""

    def __init__(self, response: requests.Response):
        self.response = response
        self.status_code = response.status_code
        self.headers = {k: v.removeprefix(_base_of(response)) for k, v in response.headers.items()}

    def get_json(self):
        return self.response.json()

    def get_data(self, as_text: bool = False):
        return self.response.text if as_text else self.response.content


def _base_of(response: requests.Response) -> str:
    """The scheme and host of the request, so a Location header reads as a path."""
    url = response.request.url
    return url[: url.index("/", url.index("//") + 2)]
