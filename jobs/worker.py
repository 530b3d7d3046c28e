"""``python -m jobs.worker``: RQ workers that keep their pipeline warm between jobs.

Jobs run in the worker process (RQ's ``SimpleWorker``), so the pipeline loaded once stays in
memory and CUDA is never touched by a forking parent. A thread keeps the job's heartbeat fresh
while the pipeline runs, so a worker killed mid-job is noticed within ``EASEL_HEARTBEAT_TTL``
seconds and its job is settled by the reaper chore.
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import threading

from rq import SimpleWorker, get_current_job
from rq.job import Job
from rq.queue import Queue
from rq.worker import WorkerStatus

from webapp import services
from webapp.queues import CHORE_QUEUE, GENERATE_QUEUE, SERIALIZER

from .app_context import get_app

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s [%(job_id)s] %(message)s"


class JobIdFilter(logging.Filter):
    """Stamp every log record with the id of the job being run (``-`` outside a job)."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = get_current_job()
        record.job_id = job.id if job else "-"
        return True


def configure_logging(level: str) -> None:
    """Log to stderr at ``LOG_LEVEL``, each line carrying the job id."""
    handler = logging.StreamHandler()
    handler.addFilter(JobIdFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)


class WarmWorker(SimpleWorker):
    """A ``SimpleWorker`` whose heartbeat keeps beating while a long job runs in-process."""

    heartbeat_ttl = 30  # ``EASEL_HEARTBEAT_TTL``, set from the app's settings in ``main``

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """Short TTLs (kept fresh by the heartbeat thread) instead of the job's whole timeout."""
        return self.heartbeat_ttl

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run the job here, beating every third of the TTL until it ends."""
        execution = self.prepare_execution(job)
        done = threading.Event()

        def beat() -> None:
            while not done.wait(max(1.0, self.heartbeat_ttl / 3)):
                try:
                    self.maintain_heartbeats(job, execution)
                except Exception:  # a missed beat is retried at the next tick
                    self.log.warning("heartbeat for job %s failed", job.id, exc_info=True)

        thread = threading.Thread(target=beat, name="easel-heartbeat", daemon=True)
        thread.start()
        try:
            self.perform_job(job, queue, execution)
        finally:
            done.set()
            thread.join(5)
        self.set_state(WorkerStatus.IDLE)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and work until stopped."""
    parser = argparse.ArgumentParser(description="Easel worker")
    parser.add_argument("--queues", default=GENERATE_QUEUE, help=f"comma-separated: {GENERATE_QUEUE}, {CHORE_QUEUE}")
    parser.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    parser.add_argument("--name", default=None, help="worker name (default: host.pid)")
    args = parser.parse_args(argv)
    app = get_app()
    configure_logging(app.config["LOG_LEVEL"])
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    if GENERATE_QUEUE in queues:
        from .generate import warm_up

        warm_up()
    with app.app_context():
        connection = services.redis()
    worker = WarmWorker(queues, connection=connection, name=args.name or f"{socket.gethostname()}.{os.getpid()}",
                        serializer=SERIALIZER)  # JSON: a job that is a pickle is refused, never unpickled
    worker.heartbeat_ttl = app.config["EASEL_HEARTBEAT_TTL"]
    worker.work(burst=args.burst, with_scheduler=True)


if __name__ == "__main__":
    main()
