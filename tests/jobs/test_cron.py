"""The scheduler's jobs are JSON like every other job (``rq cron`` itself has no serializer option)."""
from __future__ import annotations

import json
import zlib

from redis import Redis
from rq.cron import CronScheduler
from rq.job import Job

from webapp.queues import SERIALIZER


def test_cron_jobs_are_enqueued_as_json(app_env, redis_url):
    connection = Redis.from_url(redis_url)
    scheduler = CronScheduler(connection=connection)
    scheduler.load_config_from_file("jobs.cron")  # what `rq cron jobs.cron` does
    names = set()
    for cron_job in scheduler.get_jobs():
        job = cron_job.enqueue(connection)
        json.loads(zlib.decompress(connection.hget(f"rq:job:{job.id}", "data")))  # not a pickle
        names.add(Job.fetch(job.id, connection=connection, serializer=SERIALIZER).func_name)
    assert names == {"jobs.chores.reap_abandoned_generations", "jobs.chores.reconcile_generations",
                     "jobs.chores.restore_queue_weights", "jobs.chores.cleanup"}
