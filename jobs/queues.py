"""Queue names and connections; safe to import in the web process (no torch)."""
from __future__ import annotations

import os
from functools import lru_cache

from redis import Redis
from rq import Queue

GENERATE_QUEUE = "generate"
CHORE_QUEUE = "default"
SOCKET_TIMEOUT = 5


def redis_url() -> str:
    """The Redis URL from ``REDIS_URL`` (the web app passes its config value)."""
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@lru_cache(maxsize=8)
def get_redis(url: str | None = None) -> Redis:
    """A shared Redis client with timeouts, so a dead Redis fails fast instead of hanging."""
    return Redis.from_url(url or redis_url(), socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT)


def generation_queue(url: str | None = None) -> Queue:
    """The queue the GPU workers read."""
    return Queue(GENERATE_QUEUE, connection=get_redis(url))


def chore_queue(url: str | None = None) -> Queue:
    """The queue for email, cleanup and other chores."""
    return Queue(CHORE_QUEUE, connection=get_redis(url))
