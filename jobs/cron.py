"""Scheduled work for ``rq cron jobs.cron``: each entry is a plain function on the chore queue."""
from __future__ import annotations

from rq import cron
from rq.queue import Queue

from webapp.config import cleanup_cron
from webapp.queues import CHORE_QUEUE, SERIALIZER

from . import chores


class JsonQueue(Queue):
    """A queue that stores its jobs as JSON (``webapp.queues.SERIALIZER``), like every other queue here."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("serializer", SERIALIZER)
        super().__init__(*args, **kwargs)


# ``rq cron`` (RQ 3.0) has no serializer option: its CronJob.enqueue builds ``Queue(name, connection)``, which
# would pickle. Loading this file (how ``rq cron`` reads its schedule) makes the scheduler's jobs JSON too;
# tests/jobs/test_cron.py fails if an RQ upgrade moves that name.
cron.Queue = JsonQueue

# Abandoned generations (a worker killed mid-job) are settled within half a minute of their heartbeat expiring.
cron.register(chores.reap_abandoned_generations, CHORE_QUEUE, interval=30, job_timeout=60)
# Expired images, orphan files and stalled generations go once a day at CLEANUP_AT (the cron host's local time).
cron.register(chores.cleanup, CHORE_QUEUE, cron=cleanup_cron(), job_timeout=3600)
