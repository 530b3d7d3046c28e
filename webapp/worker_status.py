"""What each generation worker says about its models (served, warm, load times, memory), kept in Redis.

Workers write a small JSON value per worker after warming up and after each job; the admin Models
page reads them and shows only those of workers RQ still lists as alive.
"""
from __future__ import annotations

import json
import time

from redis import Redis

KEY = "easel:worker-models:{}"
TTL = 24 * 3600  # seconds; a worker that died is hidden at once by RQ's registry, its key goes later


def publish(redis: Redis, worker_name: str, info: dict) -> None:
    """Store a worker's report (a JSON-able dict), stamped with the time."""
    redis.set(KEY.format(worker_name), json.dumps({**info, "updated": time.time()}), ex=TTL)


def read(redis: Redis, worker_names: list[str]) -> dict[str, dict]:
    """The reports of these workers, by name (workers that never reported are left out)."""
    if not worker_names:
        return {}
    values = redis.mget([KEY.format(name) for name in worker_names])
    return {name: json.loads(value) for name, value in zip(worker_names, values, strict=True) if value}


def live_workers(redis: Redis, within: float, serializer=None) -> list:
    """RQ's registered workers whose last heartbeat is at most ``within`` seconds old.

    A worker beats at least every ``EASEL_HEARTBEAT_TTL - 15`` seconds while idle (``jobs.worker`` sets its
    RQ ``worker_ttl`` to that setting) and every third of it while a job runs; one that stopped cleanly is
    gone from the registry at once, one that was killed stops beating.
    """
    from datetime import UTC, datetime

    from rq import Worker

    now = datetime.now(UTC)
    alive = []
    for worker in Worker.all(connection=redis, serializer=serializer):
        beat = worker.last_heartbeat
        if beat is None:
            continue
        beat = beat if beat.tzinfo else beat.replace(tzinfo=UTC)
        if (now - beat).total_seconds() <= within:
            alive.append(worker)
    return alive
