"""Scheduled work for ``rq cron jobs.cron``: each entry is a plain function on the chore queue."""
from __future__ import annotations

from rq import cron
from rq.queue import Queue

from webapp.config import cleanup_cron, reaper_interval
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

# Abandoned generations (a worker killed mid-job) are settled within EASEL_REAPER_INTERVAL (30 s) of their
# heartbeat expiring.
cron.register(chores.reap_abandoned_generations, CHORE_QUEUE, interval=reaper_interval(), job_timeout=60)
# Rows left queued or running by a fault (the database down when the job ended) are brought to a final status.
cron.register(chores.reconcile_generations, CHORE_QUEUE, interval=reaper_interval(), job_timeout=60)
# Queue weights live in the users table; a Redis that lost its data (or missed a write) gets its copy back.
cron.register(chores.restore_queue_weights, CHORE_QUEUE, interval=reaper_interval(), job_timeout=60)
# Expired images, orphan files and stalled generations go once a day at CLEANUP_AT (the cron host's local time).
cron.register(chores.cleanup, CHORE_QUEUE, cron=cleanup_cron(), job_timeout=3600)
