"""The generation job: one or several compatible generations made by one call of a warm pipeline.

A solo generation is a batch of one: ``run`` (the RQ job) and ``run_batch`` (the worker's batch of
companions, ``jobs.batching``) both go through ``make``, which takes each generation through its life
with the verbs of ``webapp.lifecycle`` (start, succeed, fail, requeue, stopped) and asks
``jobs.pipelines.generate`` for the images, the one function that prepares a pipeline and calls it.
Each image keeps its own prompt, negative prompt and ``torch.Generator``, so a batched image is the image
its person would have got alone; each generation keeps its own progress, preview, cancel (a canceled one
is dropped, its files never written), failure and email.
"""
from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field

import torch
from flask import current_app
from PIL import Image as PILImage
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Retry, get_current_job
from rq.exceptions import AbandonedJobError
from rq.job import Job
from rq.timeouts import JobTimeoutException
from sqlalchemy.exc import OperationalError

from models import allocator
from models.catalog import ModelError
from webapp import lifecycle, progress, safety, services
from webapp.extensions import db
from webapp.grids import picture as grid_picture
from webapp.lineage import chain_from
from webapp.prompting.picks import prompt_of
from webapp.storage import StorageError, image_key, thumbnail_key, timelapse_key
from webapp.styles import postprocess
from webapp.tables import Generation, GenerationStatus, Image, Source, new_id
from webapp.uploads import encode_png, fit_to

from . import editing, pipelines
from .app_context import get_app, with_app
from .preview import LatentPreviewer
from .timelapse import TimelapseRecorder
from .upscale import make_upscaled

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 256
PREVIEW_SIZE = 128
PREVIEW_BUDGET = 0.02  # previews may cost at most this share of the elapsed time
WRITE_INTERVAL = 0.1  # seconds between progress writes when steps are faster than that
TRANSIENT_ERRORS = (RedisConnectionError, RedisTimeoutError, OperationalError)
RETRY_INTERVALS = [5, 15, 30]
WORKER_STOPPED = "The worker stopped while making this picture. Please try again."

# What became of one job: ("ok", its return value or a Retry) or ("error", exc_info); the worker finishes
# each RQ job with it.
Outcome = tuple[str, object]


class Canceled(Exception):
    """The person canceled while the pipeline ran."""


class StartImageGone(Exception):
    """The starting image was deleted before the job ran."""


def configure_threads() -> int:
    """Leave a core to the web server and Redis: oversubscribed CPU threads make diffusion 10-20x slower.

    Returns:
        The number of threads torch will use (``EASEL_TORCH_THREADS``, default cores - 1).
    """
    threads = current_app.config["EASEL_TORCH_THREADS"]
    torch.set_num_threads(threads)
    return threads


def configure_memory() -> bool:
    """On a CPU worker with ``EASEL_KEEP_FREED_MEMORY`` (on by default), keep freed memory in the process for the next
    step instead of giving it back to the kernel (``models.allocator``); True where that took effect."""
    if not current_app.config["EASEL_KEEP_FREED_MEMORY"] or pipelines.device() != "cpu":
        return False
    kept = allocator.keep_freed_memory()
    log.info("freed memory is %s (EASEL_KEEP_FREED_MEMORY)", "kept for the next step" if kept
             else "given back to the system: this C library is not glibc")
    return kept


def warm_up(serves: list[str]) -> None:
    """Set up torch and load the default model (else the first served) before the first job, so nobody waits."""
    with get_app().app_context():
        configure_memory()  # before the first load, so that every large block is served the same way
        configure_threads()
        name = current_app.config["EASEL_MODEL"]
        name = name if name in serves or not serves else serves[0]
        try:
            pipelines.STATE.warm(name).previewer  # noqa: B018  (fitted now, not during the first job)
        except ModelError as exc:
            log.warning("not warming up %s: %s", name, exc)


def transient_retry(exc: BaseException, retries: int) -> Retry | None:
    """A retry after a transient error while retries remain, else None.

    The job goes back to the front of its queue: it was at the head when it ran, and its person's fair
    turn (``webapp.queues.place_fairly``) was already counted, so it resumes that turn.
    """
    if not isinstance(exc, TRANSIENT_ERRORS) or retries >= len(RETRY_INTERVALS):
        return None
    return Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS, enqueue_at_front=True)


def readable_error(exc: BaseException) -> str:
    """A message a person can act on, never a traceback."""
    if isinstance(exc, StartImageGone):
        return "The starting image is no longer there (it was deleted). Choose another one."
    if isinstance(exc, editing.MaskGone):
        return "The mask of this edit is no longer there (it was deleted). Paint it again."
    if isinstance(exc, ModelError):
        return f"The model is not available: {exc}"
    if isinstance(exc, JobTimeoutException):
        return "This took longer than the site allows. Try fewer steps or fewer images."
    if isinstance(exc, torch.OutOfMemoryError):
        return "The GPU ran out of memory. Try a smaller size or fewer images."
    if isinstance(exc, StorageError):
        return "The finished images could not be saved. Please try again later."
    if isinstance(exc, TRANSIENT_ERRORS):
        return "A service the worker needs was unreachable. Please try again later."
    return f"The generation failed unexpectedly ({type(exc).__name__}). Please try again."


def encode_webp(image: PILImage.Image, size: int, quality: int = 85,
                resample: PILImage.Resampling = PILImage.Resampling.LANCZOS) -> bytes:
    """A square-bounded WebP: small images are scaled up, large ones down."""
    scale = size / max(image.size)
    resized = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), resample)
    buffer = io.BytesIO()
    resized.save(buffer, format="WEBP", quality=quality, method=4)
    return buffer.getvalue()


class ProgressReporter:
    """One generation's progress: step to Redis, a preview within a time budget, cancel checks.

    Steps slower than ``WRITE_INTERVAL`` are each written and checked for a cancel; faster ones are
    batched to one Redis round trip per interval (the page polls once a second), so a cancel stops
    the pipeline within a step or ``WRITE_INTERVAL``, whichever is longer.
    """

    def __init__(self, generation_id: str, total_steps: int, previewer: LatentPreviewer,
                 recorder: TimelapseRecorder | None = None, budget: float = PREVIEW_BUDGET):
        self.generation_id = generation_id
        self.budget = budget  # this reporter's share of the elapsed time for previews
        self.total = total_steps
        self.previewer = previewer
        self.recorder = recorder
        self.redis = services.redis()
        self.started = time.perf_counter()
        self.last_write = self.started
        self.preview_seconds = 0.0
        self.preview_cost = 0.0  # the last preview's cost: the next one is made only if the budget allows it
        self.canceled = False
        progress.start(self.redis, generation_id, total_steps)

    def _preview(self, latents: torch.Tensor) -> bytes:
        began = time.perf_counter()
        data = encode_webp(self.previewer(latents), PREVIEW_SIZE, quality=70, resample=PILImage.Resampling.BILINEAR)
        cost = time.perf_counter() - began
        self.preview_seconds += cost
        self.preview_cost = cost
        return data

    def step(self, step: int, latents: torch.Tensor | None) -> None:
        """Note a finished step (``latents``: this generation's own); sets ``canceled`` when asked to stop."""
        done = step + 1
        if self.recorder is not None and latents is not None:
            self.recorder.add(latents)  # every step, unlike the batched progress writes
        now = time.perf_counter()
        if now - self.last_write < WRITE_INTERVAL and done < self.total:
            return
        self.last_write = now
        elapsed = now - self.started
        preview = None
        affordable = self.preview_seconds + self.preview_cost <= self.budget * elapsed
        if done < self.total and affordable and latents is not None:
            preview = self._preview(latents)
        if progress.record_step(self.redis, self.generation_id, done, preview):
            self.canceled = True

    def __call__(self, pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        """As a ``callback_on_step_end`` of its own (a pipeline making only this generation)."""
        self.step(step, callback_kwargs.get("latents"))
        if self.canceled:
            pipe._interrupt = True
        return callback_kwargs


@dataclass
class Member:
    """One generation in a pipeline call: its job, its slice of the call's images, its progress."""

    job_id: str
    retries: int  # retries RQ already made of its job
    generation: Generation
    images: slice = field(default_factory=lambda: slice(0))
    recorder: TimelapseRecorder | None = None
    reporter: ProgressReporter | None = None
    pictures: list[PILImage.Image] = field(default_factory=list)

    def follow(self, first: int, previewer: LatentPreviewer) -> None:
        """Take images ``first …`` of the call and report their progress."""
        generation = self.generation
        self.images = slice(first, first + generation.num_images)
        self.recorder = TimelapseRecorder(generation.num_images, previewer) if generation.timelapse else None
        self.reporter = ProgressReporter(generation.id, generation.total_steps, previewer, self.recorder)

    @property
    def canceled(self) -> bool:
        return self.reporter is not None and self.reporter.canceled


class BatchReporter:
    """The call's ``callback_on_step_end``: each member's reporter sees its own slice of the latents."""

    def __init__(self, members: list[Member]):
        self.members = members
        for member in members:  # the call's previews share one budget, as one generation's do
            member.reporter.budget = PREVIEW_BUDGET / len(members)

    def __call__(self, pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        latents = callback_kwargs.get("latents")
        for member in self.members:
            if not member.canceled:
                member.reporter.step(step, None if latents is None else latents[member.images])
        if all(member.canceled for member in self.members):
            pipe._interrupt = True
        return callback_kwargs


def start_image(generation: Generation) -> PILImage.Image:
    """The generation's starting image, at its size (crop to fill, or fit)."""
    try:
        data = services.storage().open(generation.init_image_key)
    except FileNotFoundError as exc:
        raise StartImageGone() from exc
    with PILImage.open(io.BytesIO(data)) as picture:
        picture = picture.convert("RGB")
    return fit_to(picture, (generation.width, generation.height), generation.resize_mode or "crop")


def _store(generation: Generation, images: list[PILImage.Image], recorder: TimelapseRecorder | None = None,
           seen: str | list[str] | None = None) -> None:
    """Save files first, then the rows and the final status in one commit (``lifecycle.succeed``, which also
    sends the email); no row ever points at a missing file. ``seen``: the text the model saw (for each image)."""
    storage = services.storage()
    seen_by_image = [seen] * len(images) if seen is None or isinstance(seen, str) else seen
    saved: list[str] = []
    rows = []
    lineage = chain_from(generation)
    if generation.source not in (Source.UPSCALE, Source.GRID):
        generation.precision = pipelines.precision_of(generation.model)  # what its warm pipeline computes in
    try:
        for index, picture in enumerate(images):
            parameters = {
                "prompt": prompt_of(generation, index), "negative_prompt": generation.negative_prompt, "model": generation.model,
                "seed": generation.seed + index, "steps": generation.steps, "guidance": generation.guidance,
                "width": generation.width, "height": generation.height, "style": generation.style,
                "generation_id": generation.id, "source": generation.source, "loras": generation.loras or [],
            }
            if seen_by_image[index] is not None:
                parameters["model_prompt"] = seen_by_image[index]  # the text the model saw: the readable line shows it
            if generation.prompt_picks is not None:
                parameters["prompt_template"] = generation.prompt  # as the person wrote it, choices and all
            if generation.source == Source.UPSCALE:
                parameters.update(upscaler=generation.upscaler, upscale_factor=generation.upscale_factor)
            if generation.init_image_key:
                parameters.update(strength=generation.strength, resize_mode=generation.resize_mode)
            if generation.edit is not None:
                parameters.update(editing.parameters(generation.edit))
            if lineage:
                parameters["lineage"] = lineage
            if generation.source == Source.GRID and (grid := grid_picture.grid_of(generation.id)) is not None:
                parameters["grid"] = grid.settings  # the axes and their values, and the request of every cell
            if generation.precision:
                parameters["precision"] = generation.precision
            if generation.scheduler:  # the sampler chosen by name (else the model's own ran)
                parameters["scheduler"] = generation.scheduler
            if generation.controls:  # the control model, scale, preprocessor and the stored control image
                parameters["controls"] = generation.controls
            key = image_key(generation.user_id, generation.id, index)
            thumb = thumbnail_key(generation.user_id, generation.id, index)
            files = {key: (encode_png(picture, parameters), "image/png"),
                     thumb: (encode_webp(picture, THUMBNAIL_SIZE), "image/webp")}
            timelapse = None
            if recorder is not None:
                timelapse = timelapse_key(generation.user_id, generation.id, index)
                files[timelapse] = (recorder.encode(index, picture), "image/webp")
            for file_key, (data, content_type) in files.items():
                storage.save(file_key, data, content_type)
                saved.append(file_key)
            verdict = safety.check(picture, made_from=generation.upload)
            rows.append(Image(id=new_id(), generation_id=generation.id, user_id=generation.user_id, index=index,
                              storage_key=key, thumbnail_key=thumb, timelapse_key=timelapse,
                              width=picture.width, height=picture.height,
                              file_bytes=sum(len(data) for data, _ in files.values()), **verdict.columns()))
        first_seen = seen_by_image[0] if seen_by_image else None
        if not lifecycle.succeed(generation.id, rows, model_prompt=first_seen):  # canceled from the web at the last moment
            raise Canceled()
    except BaseException:
        db.session.rollback()
        for key in saved:
            try:
                storage.delete(key)
            except Exception:  # the cleanup chore sweeps orphans later
                log.exception("could not remove %s", key)
        raise


def _settle_error(member: Member, exc: BaseException) -> Outcome:
    """One generation's error: a retry after a transient error while retries remain, else failed."""
    db.session.rollback()
    generation = member.generation
    if retry := transient_retry(exc, member.retries):
        log.warning("generation %s: transient %r, retrying", generation.id, exc)
        lifecycle.requeue(generation.id)
        return "ok", retry
    log.error("generation %s failed", generation.id, exc_info=exc)
    lifecycle.fail(generation.id, readable_error(exc), (GenerationStatus.RUNNING,))
    return "error", (type(exc), exc, exc.__traceback__)


def _begin(requests: list[tuple[str, int]], outcomes: dict[str, Outcome]) -> list[Member]:
    """Start each queued generation (``lifecycle.start``); the others are settled as skipped."""
    members = []
    for job_id, retries in requests:
        generation = db.session.get(Generation, job_id)
        if generation is None:
            log.warning("no such generation %s, skipping", job_id)
            outcomes[job_id] = ("ok", {"skipped": "missing"})
        elif not lifecycle.start(job_id):
            log.info("generation %s is %s, not running it", job_id, generation.status)
            outcomes[job_id] = ("ok", {"skipped": generation.status})
        else:
            db.session.refresh(generation)
            members.append(Member(job_id, retries, generation))
    return members


def _render(members: list[Member], outcomes: dict[str, Outcome]) -> tuple[list[Member], dict[str, list[str]]]:
    """Make every member's pictures (``member.pictures``); those whose starting image is gone fail alone.

    Returns:
        The members that were made, and the text the model saw for each, by generation id.
    """
    lead = members[0].generation
    if lead.source == Source.UPSCALE:  # another model, never batched
        members[0].pictures = make_upscaled(lead, StartImageGone, Canceled)
        return members, {}
    if lead.source == Source.GRID:  # drawn from its cells' pictures, never batched
        members[0].pictures = [grid_picture.picture_for(lead)]
        return members, {}
    warm = pipelines.STATE.warm(lead.model)  # raises ModelError when the model is not usable here
    starts: dict[str, PILImage.Image] = {}
    edits: dict[str, editing.Edit] = {}
    made: list[Member] = []
    for member in members:
        generation = member.generation
        try:
            if generation.init_image_key:
                starts[generation.id] = start_image(generation)
            if generation.edit is not None and generation.edit.mask_key:
                edits[generation.id] = editing.edit_of(generation, starts[generation.id])
        except Exception as exc:  # one missing starting image fails that generation alone
            outcomes[member.job_id] = _settle_error(member, exc)
            continue
        member.follow(sum(other.generation.num_images for other in made), warm.previewer)
        made.append(member)
    if not made:
        return [], {}
    pictures, seen = pipelines.generate(warm, [member.generation for member in made], starts, BatchReporter(made),
                                        edits)
    for member in made:
        if not member.canceled:
            member.pictures = [postprocess(image, member.generation.style) for image in pictures[member.images]]
    return made, seen


def make(requests: list[tuple[str, int]]) -> dict[str, Outcome]:
    """Make the images of one generation or several compatible ones in one pipeline call; an outcome per job.

    Args:
        requests: (job id = generation id, retries RQ already made of it), the lead first.
    """
    outcomes: dict[str, Outcome] = {}
    members = _begin(requests, outcomes)
    if not members:
        return outcomes
    began = time.perf_counter()
    try:
        made, seen = _render(members, outcomes)
    except Exception as exc:  # the call as a whole: every member shares its fate
        canceled = isinstance(exc, Canceled)
        for member in members:
            if member.job_id not in outcomes:
                if canceled:
                    lifecycle.stopped(member.generation.id)
                    outcomes[member.job_id] = ("ok", {"canceled": True})
                else:
                    outcomes[member.job_id] = _settle_error(member, exc)
        _grid_pictures(members)
        return outcomes
    seconds = time.perf_counter() - began
    for member in made:
        generation = member.generation
        try:
            if member.canceled:
                raise Canceled()
            _store(generation, member.pictures, member.recorder, seen.get(generation.id))
        except Canceled:
            lifecycle.stopped(generation.id)
            log.info("generation %s canceled", generation.id)
            outcomes[member.job_id] = ("ok", {"canceled": True})
            continue
        except Exception as exc:  # one generation's storage error does not fail the others
            outcomes[member.job_id] = _settle_error(member, exc)
            continue
        finally:
            member.recorder = member.pictures = None  # the frames go as soon as the animations are written
        outcomes[member.job_id] = ("ok", {"images": generation.num_images, "seconds": round(seconds, 3),
                                          "batch": len(made)})
        # A generation's one ending line (RQ's own are filtered out: jobs.worker.OneLinePerJobEnd).
        log.info("generation %s done: %d image(s) in %.2fs%s", generation.id, generation.num_images, seconds,
                 f" (one call for {len(made)})" if len(made) > 1 else "")
    _grid_pictures(members)
    return outcomes


def _grid_pictures(members: list[Member]) -> None:
    """Queue the picture of each grid whose last cell just ended (``webapp.grids.picture``)."""
    try:
        grid_picture.queue_picture_when_done([member.generation.id for member in members])
    except Exception:  # the cells are made; a grid picture that was not queued is not their failure
        db.session.rollback()
        log.exception("could not queue a grid picture")


@with_app
def run(generation_id: str) -> dict | Retry:
    """Make the images of one generation (RQ job; job id = generation id): a batch of one.

    Returns:
        A summary (images made, seconds), or a ``Retry`` after a transient error.

    Raises:
        Exception: the generation failed (its row says why); RQ records the job as failed.
    """
    job = get_current_job()
    retries = (job.number_of_retries or 0) if job else len(RETRY_INTERVALS)
    kind, value = make([(generation_id, retries)])[generation_id]
    if kind == "error":
        raise value[1]
    return value


@with_app
def run_batch(jobs: list[Job]) -> dict[str, Outcome]:
    """Make the images of several compatible generations in one call (the worker's batch); an outcome per job."""
    return make([(job.id, job.number_of_retries or 0) for job in jobs])


@with_app
def on_failure(job, connection, exc_type, exc_value, tb) -> None:
    """RQ failure callback, also called when a worker died mid-job (``AbandonedJobError``).

    An abandoned job whose row is queued again was settled for a retry that Redis lost (the worker could
    not hand the retry back): the reconciliation enqueues it again, so it is not failed here.
    """
    if exc_type is AbandonedJobError or isinstance(exc_value, AbandonedJobError):
        lifecycle.fail(job.id, WORKER_STOPPED, (GenerationStatus.RUNNING,))
    else:
        lifecycle.fail(job.id, "The generation failed unexpectedly. Please try again.")
