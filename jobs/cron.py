"""Scheduled work for ``rq cron jobs.cron``: each entry is a plain function on the chore queue."""
from __future__ import annotations

from rq import cron

from webapp.config import cleanup_cron, reaper_interval
from webapp.queues import CHORE_QUEUE

from . import chores

# Abandoned generations (a worker killed mid-job) are settled within EASEL_REAPER_INTERVAL (30 s) of their
# heartbeat expiring.
cron.register(chores.reap_abandoned_generations, CHORE_QUEUE, interval=reaper_interval(), job_timeout=60)
# Rows left queued or running by a fault (the database down when the job ended) are brought to a final status.
cron.register(chores.reconcile_generations, CHORE_QUEUE, interval=reaper_interval(), job_timeout=60)
# Expired images, orphan files and stalled generations go once a day at CLEANUP_AT (the cron host's local time).
cron.register(chores.cleanup, CHORE_QUEUE, cron=cleanup_cron(), job_timeout=3600)
