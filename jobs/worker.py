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

from rq import SimpleWorker
from rq.job import Job
from rq.queue import Queue
from rq.worker import WorkerStatus

from .queues import CHORE_QUEUE, GENERATE_QUEUE, get_redis

HEARTBEAT_TTL = int(os.environ.get("EASEL_HEARTBEAT_TTL", "30"))


class WarmWorker(SimpleWorker):
    """A ``SimpleWorker`` whose heartbeat keeps beating while a long job runs in-process."""

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """Short TTLs (kept fresh by the heartbeat thread) instead of the job's whole timeout."""
        return HEARTBEAT_TTL

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run the job here, beating every third of the TTL until it ends."""
        execution = self.prepare_execution(job)
        done = threading.Event()

        def beat() -> None:
            while not done.wait(max(1.0, HEARTBEAT_TTL / 3)):
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
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    if GENERATE_QUEUE in queues:
        from .generate import warm_up

        warm_up()
    worker = WarmWorker(queues, connection=get_redis(), name=args.name or f"{socket.gethostname()}.{os.getpid()}")
    worker.work(burst=args.burst, with_scheduler=True)


if __name__ == "__main__":
    main()
