"""The queues the web and the workers share; the web enqueues jobs by their dotted names (no torch here).

Job functions live in ``jobs/`` (``jobs.generate.run``, ``jobs.mail.*``, ``jobs.chores.*``); their
dotted names are stored in Redis with each queued job, so they never change.
"""
from __future__ import annotations

from rq import Queue

from . import services

GENERATE_QUEUE = "generate"
CHORE_QUEUE = "default"
QUEUE_NAMES = (GENERATE_QUEUE, CHORE_QUEUE)


def generation_queue() -> Queue:
    """The queue the GPU workers read."""
    return Queue(GENERATE_QUEUE, connection=services.redis())


def chore_queue() -> Queue:
    """The queue for email, cleanup and other chores."""
    return Queue(CHORE_QUEUE, connection=services.redis())
