"""``python -m jobs.worker``: an RQ worker that keeps its pipeline warm between jobs.

Generation workers are RQ ``SimpleWorker``s: the job runs in this process, so the pipeline
loaded once stays in memory (and CUDA is never touched by a forking parent).
"""
from __future__ import annotations

import argparse
import logging
import os
import socket

from rq import SimpleWorker

from .queues import CHORE_QUEUE, GENERATE_QUEUE, get_redis


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and work until stopped."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queues", default=GENERATE_QUEUE, help=f"comma-separated: {GENERATE_QUEUE}, {CHORE_QUEUE}")
    parser.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    parser.add_argument("--name", default=None, help="worker name (default: host.pid)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    connection = get_redis()
    if GENERATE_QUEUE in queues:
        from .generate import warm_up

        warm_up()
    worker = SimpleWorker(queues, connection=connection, name=args.name or f"{socket.gethostname()}.{os.getpid()}")
    worker.work(burst=args.burst, with_scheduler=True)


if __name__ == "__main__":
    main()
