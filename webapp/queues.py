"""The queues the web and the workers share; the web enqueues jobs by their dotted names (no torch here).

Job functions live in ``jobs/`` (``jobs.generate.run``, ``jobs.mail.*``, ``jobs.chores.*``); their
dotted names are stored in Redis with each queued job, so they never change.
"""
from __future__ import annotations

from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from . import services

# Jobs are stored as JSON, never pickles: whoever can write to Redis cannot make a worker run code by unpickling.
# Every Queue, Job and Worker in the web, the workers and the scheduler uses it.
SERIALIZER = JSONSerializer

GENERATE_QUEUE = "generate"
CHORE_QUEUE = "default"
QUEUE_NAMES = (GENERATE_QUEUE, CHORE_QUEUE)


def generation_queue() -> Queue:
    """The queue the GPU workers read."""
    return Queue(GENERATE_QUEUE, connection=services.redis(), serializer=SERIALIZER)


def chore_queue() -> Queue:
    """The queue for email, cleanup and other chores."""
    return Queue(CHORE_QUEUE, connection=services.redis(), serializer=SERIALIZER)


def fetch_job(job_id: str) -> Job:
    """The RQ job with this id (raises ``rq.exceptions.NoSuchJobError`` when it is gone)."""
    return Job.fetch(job_id, connection=services.redis(), serializer=SERIALIZER)
