"""Live progress of a generation in Redis: step, preview and the cancel flag.

Shared by the web process (reads) and the workers (writes); imports no torch. Everything here
expires: the database row stays the truth.
"""
from __future__ import annotations

import time

from redis import Redis

PROGRESS_TTL = 24 * 3600
PREVIEW_TTL = 3600
CANCEL_TTL = 24 * 3600


def progress_key(generation_id: str) -> str:
    return f"easel:progress:{generation_id}"


def preview_key(generation_id: str) -> str:
    return f"easel:preview:{generation_id}"


def cancel_key(generation_id: str) -> str:
    return f"easel:cancel:{generation_id}"


def start(redis: Redis, generation_id: str, total_steps: int) -> None:
    """Record that work began (step 0 of ``total_steps``)."""
    now = time.time()
    with redis.pipeline() as pipe:
        pipe.hset(progress_key(generation_id), mapping={"step": 0, "total": total_steps, "started": now, "updated": now})
        pipe.expire(progress_key(generation_id), PROGRESS_TTL)
        pipe.execute()


def record_step(redis: Redis, generation_id: str, step: int, preview_webp: bytes | None = None) -> bool:
    """Record the finished step (and a small preview, when given) in one round trip.

    Returns:
        True when someone asked to cancel this generation.
    """
    with redis.pipeline(transaction=False) as pipe:
        mapping: dict = {"step": step, "updated": time.time()}
        if preview_webp is not None:
            mapping["preview_step"] = step
            pipe.set(preview_key(generation_id), preview_webp, ex=PREVIEW_TTL)
        pipe.hset(progress_key(generation_id), mapping=mapping)
        pipe.exists(cancel_key(generation_id))
        return bool(pipe.execute()[-1])


def read(redis: Redis, generation_id: str) -> dict:
    """The progress hash as numbers: ``step``, ``total``, ``started``, ``updated``, ``preview_step``."""
    raw = redis.hgetall(progress_key(generation_id))
    return {k.decode(): float(v) for k, v in raw.items()}


def read_preview(redis: Redis, generation_id: str) -> bytes | None:
    """The latest preview image (WebP), if any."""
    return redis.get(preview_key(generation_id))


def request_cancel(redis: Redis, generation_id: str) -> None:
    """Ask the worker running this generation to stop after the current step."""
    redis.set(cancel_key(generation_id), 1, ex=CANCEL_TTL)


def clear(redis: Redis, generation_id: str) -> None:
    """Drop the preview and the cancel flag once the generation is final (the step hash expires)."""
    redis.delete(preview_key(generation_id), cancel_key(generation_id))
