"""Scheduled work for ``rq cron jobs.cron``: each entry is a plain function on the chore queue."""
from __future__ import annotations

from rq import cron

from . import chores
from .queues import CHORE_QUEUE

# Abandoned generations (a worker killed mid-job) are settled every minute.
cron.register(chores.reap_abandoned_generations, CHORE_QUEUE, interval=60, job_timeout=120)
