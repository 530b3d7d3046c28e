"""Scheduled work for ``rq cron jobs.cron``: each entry is a plain function on the chore queue."""
from __future__ import annotations

from rq import cron

from webapp.config import cleanup_cron

from . import chores
from .queues import CHORE_QUEUE

# Abandoned generations (a worker killed mid-job) are settled every minute.
cron.register(chores.reap_abandoned_generations, CHORE_QUEUE, interval=60, job_timeout=120)
# Expired images, orphan files and stalled generations go once a day at CLEANUP_AT (the cron host's local time).
cron.register(chores.cleanup, CHORE_QUEUE, cron=cleanup_cron(), job_timeout=3600)
