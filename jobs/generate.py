"""The generation job. It runs in a warm worker: the pipeline is loaded once per process.

Statuses move only through ``webapp.tables.move_generation`` (conditional updates: ``queued → running →
final``), so a cancel from the web and the worker never overwrite each other.
"""
from __future__ import annotations

import io
import json
import logging
import time

import torch
from flask import current_app
from PIL import Image as PILImage
from PIL import PngImagePlugin
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Retry, get_current_job
from rq.exceptions import AbandonedJobError
from rq.timeouts import JobTimeoutException
from sqlalchemy.exc import OperationalError

from models import loader
from models.catalog import ModelError
from webapp import progress, services
from webapp.extensions import db
from webapp.mail.outbox import notify_generation_finished
from webapp.storage import StorageError, image_key, thumbnail_key
from webapp.styles import postprocess, styled_prompt
from webapp.tables import Generation, GenerationStatus, Image, move_generation, new_id, utcnow

from . import pipelines
from .app_context import get_app, with_app
from .preview import previewer_for

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 256
PREVIEW_SIZE = 128
PREVIEW_BUDGET = 0.02  # previews may cost at most this share of the elapsed time
WRITE_INTERVAL = 0.1  # seconds between progress writes when steps are faster than that
TRANSIENT_ERRORS = (RedisConnectionError, RedisTimeoutError, OperationalError)
RETRY_INTERVALS = [5, 15, 30]
WORKER_STOPPED = "The worker stopped while making this picture. Please try again."


class Canceled(Exception):
    """The person canceled while the pipeline ran."""


def configure_threads() -> int:
    """Leave a core to the web server and Redis: oversubscribed CPU threads make diffusion 10-20x slower.

    Returns:
        The number of threads torch will use (``EASEL_TORCH_THREADS``, default cores - 1).
    """
    threads = current_app.config["EASEL_TORCH_THREADS"]
    torch.set_num_threads(threads)
    return threads


def pipeline_for(name: str):
    """The warm pipeline of a catalog model on this worker's device (loaded on first use, prepared for it)."""
    return pipelines.pipeline_for(name)


def warm_up(serves: list[str]) -> None:
    """Set up torch and load the default model (else the first served) before the first job, so nobody waits."""
    with get_app().app_context():
        configure_threads()
        name = current_app.config["EASEL_MODEL"]
        name = name if name in serves or not serves else serves[0]
        try:
            previewer_for(pipeline_for(name))
        except ModelError as exc:
            log.warning("not warming up %s: %s", name, exc)


def readable_error(exc: BaseException, generation: Generation) -> str:
    """A message a person can act on, never a traceback."""
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


def encode_png(image: PILImage.Image, parameters: dict) -> bytes:
    """PNG with the parameters in text chunks: ``parameters`` (readable) and ``easel`` (JSON)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", (
        f"{parameters['prompt']}\nNegative prompt: {parameters['negative_prompt']}\n"
        f"Steps: {parameters['steps']}, CFG scale: {parameters['guidance']}, Seed: {parameters['seed']}, "
        f"Size: {parameters['width']}x{parameters['height']}, Model: {parameters['model']}, Style: {parameters['style']}"))
    info.add_itxt("easel", json.dumps(parameters, ensure_ascii=False))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, optimize=False, compress_level=6)
    return buffer.getvalue()


def encode_webp(image: PILImage.Image, size: int, quality: int = 85,
                resample: PILImage.Resampling = PILImage.Resampling.LANCZOS) -> bytes:
    """A square-bounded WebP: small images are scaled up, large ones down."""
    scale = size / max(image.size)
    resized = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), resample)
    buffer = io.BytesIO()
    resized.save(buffer, format="WEBP", quality=quality, method=4)
    return buffer.getvalue()


class ProgressReporter:
    """The ``callback_on_step_end``: step to Redis, a preview within a time budget, cancel checks.

    Steps slower than ``WRITE_INTERVAL`` are each written and checked for a cancel; faster ones are
    batched to one Redis round trip per interval (the page polls once a second), so a cancel stops
    the pipeline within a step or ``WRITE_INTERVAL``, whichever is longer.
    """

    def __init__(self, generation_id: str, total_steps: int):
        self.generation_id = generation_id
        self.total = total_steps
        self.redis = services.redis()
        self.started = time.perf_counter()
        self.last_write = self.started
        self.preview_seconds = 0.0
        self.preview_cost = 0.0  # the last preview's cost: the next one is made only if the budget allows it
        self.canceled = False
        progress.start(self.redis, generation_id, total_steps)

    def _preview(self, pipe, latents: torch.Tensor) -> bytes:
        began = time.perf_counter()
        data = encode_webp(previewer_for(pipe)(latents), PREVIEW_SIZE, quality=70, resample=PILImage.Resampling.BILINEAR)
        cost = time.perf_counter() - began
        self.preview_seconds += cost
        self.preview_cost = cost
        return data

    def __call__(self, pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        done = step + 1
        now = time.perf_counter()
        if now - self.last_write < WRITE_INTERVAL and done < self.total:
            return callback_kwargs
        self.last_write = now
        elapsed = now - self.started
        preview = None
        affordable = self.preview_seconds + self.preview_cost <= PREVIEW_BUDGET * elapsed
        if done < self.total and affordable and "latents" in callback_kwargs:
            preview = self._preview(pipe, callback_kwargs["latents"])
        if progress.record_step(self.redis, self.generation_id, done, preview):
            self.canceled = True
            pipe._interrupt = True
        return callback_kwargs


def _make_images(generation: Generation) -> list[PILImage.Image]:
    """Call the warm pipeline with the generation's parameters."""
    pipe, prompt, _ = pipelines.ready(generation)  # raises ModelError when the model is not usable here
    previewer_for(pipe)  # fitted once per pipeline, before the clock of the preview budget starts
    reporter = ProgressReporter(generation.id, generation.steps)
    generators = [torch.Generator("cpu").manual_seed(generation.seed + i) for i in range(generation.num_images)]
    result = pipelines.call(
        pipe, prompt=styled_prompt(prompt, generation.style),
        negative_prompt=generation.negative_prompt or None,
        width=generation.width, height=generation.height,
        num_inference_steps=generation.steps, guidance_scale=generation.guidance,
        num_images_per_prompt=generation.num_images, generator=generators,
        callback_on_step_end=reporter, output_type="pil",
    )
    if reporter.canceled:
        raise Canceled()
    return [postprocess(image, generation.style) for image in result.images]


def _store(generation: Generation, images: list[PILImage.Image]) -> None:
    """Save files first, then the rows and the final status in one commit; no row ever points at a missing file."""
    storage = services.storage()
    saved: list[str] = []
    rows = []
    try:
        for index, picture in enumerate(images):
            parameters = {
                "prompt": generation.prompt, "negative_prompt": generation.negative_prompt, "model": generation.model,
                "seed": generation.seed + index, "steps": generation.steps, "guidance": generation.guidance,
                "width": generation.width, "height": generation.height, "style": generation.style,
                "generation_id": generation.id, "loras": generation.loras or [],
            }
            key = image_key(generation.user_id, generation.id, index)
            thumb = thumbnail_key(generation.user_id, generation.id, index)
            storage.save(key, encode_png(picture, parameters), "image/png")
            saved.append(key)
            storage.save(thumb, encode_webp(picture, THUMBNAIL_SIZE), "image/webp")
            saved.append(thumb)
            rows.append(Image(id=new_id(), generation_id=generation.id, user_id=generation.user_id, index=index,
                              storage_key=key, thumbnail_key=thumb, width=picture.width, height=picture.height))
        db.session.add_all(rows)
        moved = move_generation(generation.id, GenerationStatus.SUCCEEDED, (GenerationStatus.RUNNING,), commit=False,
                                finished_at=utcnow(), error=None)
        if not moved:  # canceled from the web at the last moment
            raise Canceled()
        db.session.commit()
    except BaseException:
        db.session.rollback()
        for key in saved:
            try:
                storage.delete(key)
            except Exception:  # the cleanup chore sweeps orphans later
                log.exception("could not remove %s", key)
        raise


@with_app
def run(generation_id: str) -> dict | Retry:
    """Make the images of one generation (RQ job; job id = generation id).

    Returns:
        A summary (images made, pipeline loads in this process), or a ``Retry`` after a transient error.
    """
    generation = db.session.get(Generation, generation_id)
    if generation is None:
        log.warning("no such generation, skipping")
        return {"skipped": "missing"}
    if not move_generation(generation_id, GenerationStatus.RUNNING, (GenerationStatus.QUEUED,), started_at=utcnow()):
        log.info("status is %s, not running it", generation.status)
        return {"skipped": generation.status}
    db.session.refresh(generation)
    began = time.perf_counter()
    try:
        images = _make_images(generation)
        _store(generation, images)
    except Canceled:
        move_generation(generation_id, GenerationStatus.CANCELED, (GenerationStatus.RUNNING,), finished_at=utcnow())
        log.info("canceled")
        return {"canceled": True}
    except Exception as exc:
        job = get_current_job()
        retries = (job.number_of_retries or 0) if job else len(RETRY_INTERVALS)
        if isinstance(exc, TRANSIENT_ERRORS) and retries < len(RETRY_INTERVALS):
            log.warning("transient %r, retrying", exc)
            db.session.rollback()
            move_generation(generation_id, GenerationStatus.QUEUED, (GenerationStatus.RUNNING,), started_at=None)
            return Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS)
        log.exception("failed")
        db.session.rollback()
        if move_generation(generation_id, GenerationStatus.FAILED, (GenerationStatus.RUNNING,),
                       finished_at=utcnow(), error=readable_error(exc, generation)):
            notify_generation_finished(generation_id)
        raise
    finally:
        try:
            progress.clear(services.redis(), generation_id)
        except Exception:  # the keys expire on their own
            log.warning("could not clear live progress")
    notify_generation_finished(generation_id)  # never raises: an email never fails a generation
    seconds = time.perf_counter() - began
    log.info("%d image(s) in %.2fs", len(images), seconds)
    return {"images": len(images), "seconds": round(seconds, 3), "pipeline_loads": loader.LOAD_COUNT}


@with_app
def on_failure(job, connection, exc_type, exc_value, tb) -> None:
    """RQ failure callback, also called when a worker died mid-job (``AbandonedJobError``)."""
    message = WORKER_STOPPED if exc_type is AbandonedJobError or isinstance(exc_value, AbandonedJobError) else (
        "The generation failed unexpectedly. Please try again.")
    if move_generation(job.id, GenerationStatus.FAILED, (GenerationStatus.QUEUED, GenerationStatus.RUNNING),
                   finished_at=utcnow(), error=message):
        notify_generation_finished(job.id)
