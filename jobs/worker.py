"""``python -m jobs.worker``: RQ workers that keep their pipeline warm between jobs.

Jobs run in the worker process (RQ's ``SimpleWorker``), so the pipeline loaded once stays in
memory and CUDA is never touched by a forking parent. A thread keeps the job's heartbeat fresh
while the pipeline runs, so a worker killed mid-job is noticed within ``EASEL_HEARTBEAT_TTL``
seconds and its job is settled by the reaper chore. A worker that loses Redis waits for it with
back-off and carries on, keeping its warm pipeline.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import SimpleWorker
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.timeouts import JobTimeoutException
from rq.utils import now
from rq.worker import DequeueStrategy, WorkerStatus

from webapp import logs, metrics, services, telemetry
from webapp.queues import CHORE_QUEUE, GENERATE_QUEUE, SERIALIZER, is_generation_queue, model_queue_name, record_batch
from webapp.supervision import die_with_parent

from .app_context import get_app

RECONNECT_MAX_WAIT = 30.0  # seconds between tries at most while Redis is away

log = logging.getLogger(__name__)


class OneLinePerJobEnd(logging.Filter):
    """RQ reports each finished job in three INFO lines ("Job OK", "Successfully completed", "result is kept
    for"): none is kept, since the job itself logs its one ending line (a generation: what it made, in how long).

    Matched on RQ 3.0's wording: should it change, the lines come back, nothing is lost.
    """

    ENDINGS = ("Job OK", "Successfully completed", "result is kept for")

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or not any(words in record.getMessage() for words in self.ENDINGS)


def configure_logging(level: str, log_format: str = "text") -> None:
    """Log to stderr at ``LOG_LEVEL``, each line carrying the job id (JSON lines with ``LOG_FORMAT=json``)."""
    logs.configure(level, log_format)
    for handler in logging.getLogger().handlers:
        handler.addFilter(OneLinePerJobEnd())


class WarmWorker(SimpleWorker):
    """A ``SimpleWorker`` whose heartbeat keeps beating while a long job runs in-process."""

    stopping = False
    after_job: Callable[[], None] | None = None  # generation workers: publish the models they hold
    # Whether this worker's last pipeline call had company: only then is waiting for company worth it. A lone
    # person's images run at once; people who come back together (a batch just ended) are waited for.
    company_lately = False
    heartbeat_ttl = 30  # ``EASEL_HEARTBEAT_TTL``, set from the app's settings in ``main``

    def request_stop(self, signum, frame) -> None:
        """Remember that a stop was asked for, so that losing Redis then ends the worker instead."""
        self.stopping = True
        super().request_stop(signum, frame)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """Short TTLs (kept fresh by the heartbeat thread) instead of the job's whole timeout."""
        return self.heartbeat_ttl

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run the job here, with the queued jobs that can share its pipeline call, beating every third of the TTL."""
        # Busy from the moment the job is taken: a SIGTERM while companions are claimed waits for the batch
        # (RQ's warm shutdown) instead of stopping the worker between taking jobs and running them.
        self.set_state(WorkerStatus.BUSY)
        members = [(job, self.prepare_execution(job))]
        done = threading.Event()

        def beat() -> None:
            while not done.wait(max(1.0, self.heartbeat_ttl / 3)):
                for member, execution in list(members):
                    try:
                        self.maintain_heartbeats(member, execution)
                    except Exception:  # a missed beat is retried at the next tick
                        self.log.warning("heartbeat for job %s failed", member.id, exc_info=True)

        thread = threading.Thread(target=beat, name="easel-heartbeat", daemon=True)
        thread.start()
        try:
            members.extend((companion, self.prepare_execution(companion)) for companion in self.companions(job, queue))
            began = time.perf_counter()
            with telemetry.job_span(job, is_generation_queue(queue.name), companions=len(members) - 1):
                if len(members) == 1:
                    self.perform_job(job, queue, members[0][1])
                else:
                    self.perform_batch(members, queue)
            if is_generation_queue(queue.name):
                self.company_lately = len(members) > 1
                try:
                    record_batch(self.connection, len(members), time.perf_counter() - began)
                except RedisError:  # a statistic for the admin charts, never worth a job
                    self.log.warning("could not record the batch size")
        finally:
            done.set()
            thread.join(5)
        self.set_state(WorkerStatus.IDLE)
        self._report()

    def _report(self) -> None:
        """Run ``after_job`` in the app, never letting a failed report stop the worker."""
        if self.after_job is None:
            return
        try:
            with get_app().app_context():
                self.after_job()
        except Exception:
            self.log.warning("could not publish this worker's models", exc_info=True)

    def companions(self, job: Job, queue: Queue) -> list[Job]:
        """Queued jobs claimed to share this job's pipeline call (none on the chore queue)."""
        if not is_generation_queue(queue.name):
            return []
        from .batching import claim_companions

        try:
            with get_app().app_context():
                return claim_companions(job, queue, wait=self.company_lately)
        except Exception:  # batching is an optimisation: the job still runs alone
            self.log.warning("could not look for company for job %s", job.id, exc_info=True)
            return []

    def perform_batch(self, members: list[tuple[Job, Execution]], queue: Queue) -> None:
        """``perform_job`` for several jobs made by one pipeline call; each is finished through RQ on its own."""
        from .generate import run_batch

        for job, _ in members:
            self.prepare_job_execution(job, remove_from_intermediate_queue=True)
            job.started_at = now()
        lead = members[0][0]
        timeout = max(job.timeout or self.queue_class.DEFAULT_TIMEOUT for job, _ in members)
        try:
            with self.death_penalty_class(timeout, JobTimeoutException, job_id=lead.id):
                outcomes = run_batch([job for job, _ in members])
        except BaseException:  # the call as a whole failed (a timeout): every job failed with it
            error = sys.exc_info()
            outcomes = {job.id: ("error", error) for job, _ in members}
        for job, execution in members:
            kind, value = outcomes.get(job.id, ("error", (RuntimeError, RuntimeError("not run"), None)))
            try:
                if kind == "ok":
                    self._finalize_success(job, queue, execution, value)
                else:
                    self._finalize_failure(job, queue, execution, value)
            except Exception:  # one job's bookkeeping must not leave the others unfinished
                self.log.exception("could not finish job %s", job.id)

def _settle(worker: WarmWorker) -> None:
    """Undo what a worker cut off from Redis left behind, so the next one can register under its name."""
    for step in (worker.register_death, worker.unsubscribe):
        try:
            step()
        except (RedisError, AttributeError):  # AttributeError: it never got as far as subscribing
            pass


def work_until_stopped(make_worker: Callable[[], WarmWorker], burst: bool = False) -> None:
    """Work until stopped by a signal; when the work loop ends otherwise, wait (1, 2, 4 … 30 s) and start again.

    RQ's own loop waits out a lost Redis only while idle: losing it while starting, or during or
    right after a job, ends ``work()`` ("found an unhandled exception, quitting"). Starting again
    here keeps the pipeline loaded, which a restart of the process would not.
    """
    wait = 1.0
    while True:
        worker = make_worker()
        started = time.monotonic()
        try:
            # round robin: one model's long queue does not starve the others' jobs
            worker.work(burst=burst, with_scheduler=True, dequeue_strategy=DequeueStrategy.ROUND_ROBIN)
            reason, cut_off = "its work loop ended (see above)", False
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if burst:
                raise
            reason, cut_off = f"it lost Redis ({exc})", True
        if worker.stopping or burst:
            return
        if time.monotonic() - started > 60:
            wait = 1.0
        log.warning("worker %s stopped working: %s; starting again in %.0f s", worker.name, reason, wait)
        # No job runs now, so a stop while waiting may end the process at once.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        while True:
            time.sleep(wait)
            wait = min(wait * 2, RECONNECT_MAX_WAIT)
            try:
                worker.connection.ping()
                break
            except RedisError as exc:
                log.warning("Redis is still unreachable (%s); trying again in %.0f s", exc, wait)
        if cut_off:  # its teardown could not reach Redis
            _settle(worker)
        log.info("worker %s starts again", worker.name)


def served_models(app, requested: str | None) -> list[str]:
    """The catalog models this worker serves: those asked for (each must be usable here), else every usable one.

    Raises:
        SystemExit: a requested model is unknown or its files are not on this machine.
    """
    with app.app_context():
        catalog = services.catalog()
    if requested:
        names = [name.strip() for name in requested.split(",") if name.strip()]
        for name in names:
            if name not in catalog:
                raise SystemExit(f"--models: unknown model {name!r}; the catalog lists: {', '.join(catalog)}")
            if reason := catalog[name].unavailable_reason():
                raise SystemExit(f"--models: {name} cannot be served here: {reason}")
        return names
    usable = [name for name, entry in catalog.items() if entry.unavailable_reason() is None]
    for name in set(catalog) - set(usable):
        log.info("not serving %s: %s", name, catalog[name].unavailable_reason())
    return usable


def precisions(app, serves: list[str]) -> str:
    """The worker's start line's list: each served model with the precision it runs in on this worker's device."""
    from models.loader import pick_device
    from models.precision import choose

    with app.app_context():
        catalog = services.catalog()
    from models.openvino_unet import find_ir, model_folder

    device = pick_device(app.config["EASEL_DEVICE"])

    def openvino(name: str) -> str:  # the UNet through OpenVINO where `flask models optimize` made it
        on = device == "cpu" and app.config["EASEL_OPENVINO"] and (folder := model_folder(catalog[name])) is not None
        return ", OpenVINO UNet" if on and find_ir(folder, name, app.config["INSTANCE_DIR"]) else ""

    return ", ".join(f"{name} ({choose(catalog[name].precision, app.config['EASEL_PRECISION'], device)} on {device}"
                     f"{openvino(name)})" for name in serves)


def queue_names(queues: list[str], serves: list[str], requested: bool) -> list[str]:
    """The RQ queues to listen to: ``generate`` becomes one queue per served model (plus the plain one if all)."""
    if GENERATE_QUEUE not in queues:
        return queues
    names = [model_queue_name(name) for name in serves] + ([] if requested else [GENERATE_QUEUE])
    index = queues.index(GENERATE_QUEUE)
    return queues[:index] + names + queues[index + 1:]


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and work until stopped."""
    parser = argparse.ArgumentParser(description="Easel worker")
    parser.add_argument("--queues", default=GENERATE_QUEUE, help=f"comma-separated: {GENERATE_QUEUE}, {CHORE_QUEUE}")
    parser.add_argument("--models", default=None,
                        help="comma-separated catalog names this generation worker serves (default: every usable one)")
    parser.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    parser.add_argument("--name", default=None, help="worker name (default: host.pid)")
    args = parser.parse_args(argv)
    telemetry.setup("easel-worker")  # before the app, whose Flask instrumentation would name it the web
    app = get_app()
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    generating = GENERATE_QUEUE in queues
    serves = served_models(app, args.models) if generating else []
    queues = queue_names(queues, serves, requested=bool(args.models))
    name = args.name or f"{socket.gethostname()}.{os.getpid()}"
    logging.getLogger("rq.worker").addFilter(OneLinePerJobEnd())
    if not generating:
        # Chores run every few seconds: RQ's lines for each (started, OK, result kept) would fill an idle
        # console. The chores themselves log what they changed; RQ's warnings and errors still show.
        logging.getLogger("rq.worker").setLevel(logging.WARNING)
        log.info("chore worker starting on %s (RQ logs only its warnings)", ", ".join(queues))
    if generating:
        from . import pipelines
        from .generate import warm_up

        log.info("serving models: %s", precisions(app, serves) or "none")
        warm_up(serves)
        with app.app_context():
            pipelines.publish(name, serves)
    if app.config["WORKER_METRICS_PORT"]:
        metrics.serve(app.config["WORKER_METRICS_PORT"], app.config["WORKER_METRICS_HOST"],
                      app.config["METRICS_TOKEN"], app.config["METRICS_ALLOWED_NETWORKS"])
    # RQ forks its scheduler: it must end with this worker, even when the worker is SIGKILLed.
    os.register_at_fork(after_in_child=die_with_parent)
    with app.app_context():
        connection = services.redis()

    def make_worker() -> WarmWorker:
        # JSON: a job that is a pickle is refused, never unpickled. An idle worker beats every EASEL_HEARTBEAT_TTL
        # seconds (RQ's blocking wait is worker_ttl - 15), so /readyz sees a killed one within a minute.
        worker = WarmWorker(queues, connection=connection, name=name, serializer=SERIALIZER,
                            worker_ttl=app.config["EASEL_HEARTBEAT_TTL"] + 15)
        worker.heartbeat_ttl = app.config["EASEL_HEARTBEAT_TTL"]
        if generating:
            worker.after_job = lambda: pipelines.publish(name, serves)
        return worker

    work_until_stopped(make_worker, burst=args.burst)


def exit_at_once(code: int = 0) -> None:
    """End the process without the interpreter's teardown, once the worker has stopped cleanly.

    By then the job is finished or handed back and Redis knows the worker is gone; tearing down the
    thousands of modules torch, diffusers and transformers bring takes about two more seconds, which
    a supervisor's restart, Ctrl-C and every test that stops a worker would wait for. Logs are flushed first.
    """
    telemetry.flush()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
    exit_at_once()
