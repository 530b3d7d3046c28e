"""Fixtures for delivery: an S3-compatible server (moto), a Mailgun check server, and reading sent mail.

A test that asks for ``s3_bucket`` runs its whole deployment (web app and workers) on S3; one that
asks for ``mailgun`` sends its mail through the check server. Otherwise mail goes to files.
"""
from __future__ import annotations

import email
import re
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from types import SimpleNamespace

import pytest

from ..conftest import wait_for
from ..mailgun_server import MailgunServer

LINK_RE = re.compile(r"https?://[^\s\"'<>]+")


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


def bucket_keys(bucket: SimpleNamespace) -> list[str]:
    """Every key in the test bucket."""
    return [item["Key"] for item in bucket.client.list_objects_v2(Bucket=bucket.name).get("Contents", [])]


@pytest.fixture
def mailgun() -> Iterator[MailgunServer]:
    """The Mailgun check server; ``problems`` must stay empty."""
    server = MailgunServer().start()
    yield server
    server.stop()
    assert server.problems == [], server.problems


@pytest.fixture
def app_env(app_env: dict[str, str], request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The deployment's environment, on S3 and/or Mailgun when the test asks for those fixtures."""
    extra = {"MAIL_RETRY_INTERVALS": "1,1"}
    if "s3_bucket" in request.fixturenames:
        bucket = request.getfixturevalue("s3_bucket")
        extra |= {"STORAGE": "s3", "S3_BUCKET": bucket.name, "S3_ENDPOINT_URL": bucket.endpoint,
                  "S3_PREFIX": bucket.prefix}
    if "mailgun" in request.fixturenames:
        server = request.getfixturevalue("mailgun")
        extra |= {"MAIL_BACKEND": "mailgun", "MAILGUN_BASE_URL": server.url, "MAILGUN_DOMAIN": server.domain,
                  "MAILGUN_API_KEY": server.api_key, "MAIL_FROM": "Easel <art@mg.example.test>"}
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    return {**app_env, **extra}


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

    from jobs.queues import chore_queue

    with app.app_context():
        queue = chore_queue(app.config["REDIS_URL"])
        SimpleWorker([queue], connection=queue.connection).work(burst=True, with_scheduler=False)
