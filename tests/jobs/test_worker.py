"""Workers read jobs as JSON: a pickle written into Redis is refused, never unpickled."""
from __future__ import annotations

import os
import subprocess
import sys
import zlib

from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus

from tests.support import ROOT
from webapp.queues import SERIALIZER


class Planted:
    """Unpickling this runs ``os.mkdir(path)``: what an attacker with Redis access would plant."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def stored_data(connection: Redis, job_id: str) -> bytes:
    """A job's function and arguments as RQ keeps them in Redis (zlib-compressed)."""
    return zlib.decompress(connection.hget(f"rq:job:{job_id}", "data"))


def test_a_pickled_job_is_refused_and_a_json_one_runs(app, app_env, redis_url, tmp_path):
    marker = tmp_path / "unpickled"
    connection = Redis.from_url(redis_url)
    planted = Queue("default", connection=connection).enqueue("math.sqrt", Planted(str(marker)))  # RQ's default: pickle
    assert stored_data(connection, planted.id).startswith(b"\x80")
    honest = Queue("default", connection=connection, serializer=SERIALIZER).enqueue("math.sqrt", 9)
    assert stored_data(connection, honest.id).startswith(b"[")  # JSON
    done = subprocess.run([sys.executable, "-m", "jobs.worker", "--queues", "default", "--burst"], cwd=ROOT,
                          env={**os.environ, **app_env}, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert not marker.exists()  # nothing was unpickled
    assert Job.fetch(planted.id, connection=connection, serializer=SERIALIZER).get_status() == JobStatus.FAILED
    assert Job.fetch(honest.id, connection=connection, serializer=SERIALIZER).return_value() == 3.0
