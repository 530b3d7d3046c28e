"""The queues the web and the workers share; the web enqueues jobs by their dotted names (no torch here).

Job functions live in ``jobs/`` (``jobs.generate.run``, ``jobs.mail.*``, ``jobs.chores.*``); their
dotted names are stored in Redis with each queued job, so they never change.

Each model has its own generation queue (``generate:<model>``), so a worker started with
``--models a,b`` listens only to the queues of the models it can run and never takes another's job.
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


def model_queue_name(model: str) -> str:
    """The queue of one model's generations."""
    return f"{GENERATE_QUEUE}:{model}"


def generation_queue(model: str | None = None) -> Queue:
    """The queue of a model's generations (the plain ``generate`` queue when model is None)."""
    name = model_queue_name(model) if model else GENERATE_QUEUE
    return Queue(name, connection=services.redis(), serializer=SERIALIZER)


def generation_queues() -> list[Queue]:
    """Every generation queue: the plain one (jobs queued before per-model queues) and one per catalog model."""
    return [generation_queue()] + [generation_queue(name) for name in services.catalog()]


def chore_queue() -> Queue:
    """The queue for email, cleanup and other chores."""
    return Queue(CHORE_QUEUE, connection=services.redis(), serializer=SERIALIZER)


def fetch_job(job_id: str) -> Job:
    """The RQ job with this id (raises ``rq.exceptions.NoSuchJobError`` when it is gone)."""
    return Job.fetch(job_id, connection=services.redis(), serializer=SERIALIZER)
