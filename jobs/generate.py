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
from webapp import progress, safety, services
from webapp.extensions import db
from webapp.lineage import chain_from
from webapp.mail.outbox import notify_generation_finished
from webapp.storage import StorageError, image_key, thumbnail_key, timelapse_key
from webapp.styles import postprocess, styled_prompt
from webapp.tables import Generation, GenerationStatus, Image, Source, move_generation, new_id, utcnow
from webapp.uploads import fit_to

from . import pipelines
from .app_context import get_app, with_app
from .preview import previewer_for
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


def transient_retry(exc: BaseException, retries: int) -> Retry | None:
    """A retry after a transient error while retries remain, else None.

    The job goes back to the front of its queue: it was at the head when it ran, and its person's fair
    turn (``webapp.queues.place_fairly``) was already counted, so it resumes that turn.
    """
    if not isinstance(exc, TRANSIENT_ERRORS) or retries >= len(RETRY_INTERVALS):
        return None
    return Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS, enqueue_at_front=True)


def readable_error(exc: BaseException, generation: Generation) -> str:
    """A message a person can act on, never a traceback."""
    if isinstance(exc, StartImageGone):
        return "The starting image is no longer there (it was deleted). Choose another one."
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


# Every character str.splitlines() breaks on, written as an escape: a prompt cannot add lines to ``parameters``.
LINE_BREAKS = {ord(c): f"\\u{ord(c):04x}" for c in "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"} | {
    ord("\n"): "\\n", ord("\r"): "\\r"}


def one_line(text: str) -> str:
    """``text`` with its line breaks escaped (``\\n``, ``\\r``, ``\\u2028``…), so it stays on one line."""
    return text.translate(LINE_BREAKS)


def encode_png(image: PILImage.Image, parameters: dict) -> bytes:
    """PNG with the parameters in text chunks: ``parameters`` (readable, one line per part) and ``easel`` (JSON)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", (
        f"{one_line(parameters['prompt'])}\nNegative prompt: {one_line(parameters['negative_prompt'])}\n"
        f"Steps: {parameters['steps']}, CFG scale: {parameters['guidance']}, Seed: {parameters['seed']}, "
        f"Size: {parameters['width']}x{parameters['height']}, Model: {parameters['model']}, Style: {parameters['style']}"
        + (f", Denoising strength: {parameters['strength']}" if parameters.get("strength") is not None else "")))
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

    def __init__(self, generation_id: str, total_steps: int, recorder: TimelapseRecorder | None = None,
                 budget: float = PREVIEW_BUDGET):
        self.generation_id = generation_id
        self.budget = budget  # this reporter's share of the elapsed time for previews
        self.total = total_steps
        self.recorder = recorder
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
        if self.recorder is not None and "latents" in callback_kwargs:
            self.recorder.add(callback_kwargs["latents"])  # every step, unlike the batched progress writes
        now = time.perf_counter()
        if now - self.last_write < WRITE_INTERVAL and done < self.total:
            return callback_kwargs
        self.last_write = now
        elapsed = now - self.started
        preview = None
        affordable = self.preview_seconds + self.preview_cost <= self.budget * elapsed
        if done < self.total and affordable and "latents" in callback_kwargs:
            preview = self._preview(pipe, callback_kwargs["latents"])
        if progress.record_step(self.redis, self.generation_id, done, preview):
            self.canceled = True
            pipe._interrupt = True
        return callback_kwargs


def img2img_for(pipe):
    """The image-to-image pipeline sharing the warm pipeline's weights (made once, no second load)."""
    img2img = getattr(pipe, "_easel_img2img", None)
    if img2img is None:
        img2img = loader.img2img_from(pipe)
        img2img._easel_previewer = previewer_for(pipe)  # same VAE: the fitted preview map is shared
        pipe._easel_img2img = img2img
    img2img.scheduler = pipe.scheduler  # a LoRA (LCM) may have swapped the warm pipeline's since the twin was made
    return img2img


def start_image(generation: Generation) -> PILImage.Image:
    """The generation's starting image, at its size (crop to fill, or fit)."""
    try:
        data = services.storage().open(generation.init_image_key)
    except FileNotFoundError as exc:
        raise StartImageGone() from exc
    with PILImage.open(io.BytesIO(data)) as picture:
        picture = picture.convert("RGB")
    return fit_to(picture, (generation.width, generation.height), generation.resize_mode or "crop")


def _make_images(generation: Generation) -> tuple[list[PILImage.Image], TimelapseRecorder | None]:
    """Call the warm pipeline (or its image-to-image twin); the images, and their timelapse frames if asked."""
    pipe, prompt, _ = pipelines.ready(generation)  # raises ModelError when the model is not usable here
    previewer = previewer_for(pipe)  # fitted once per pipeline, before the clock of the preview budget starts
    recorder = TimelapseRecorder(generation.num_images, previewer) if generation.timelapse else None
    reporter = ProgressReporter(generation.id, generation.total_steps, recorder)
    generators = [torch.Generator("cpu").manual_seed(generation.seed + i) for i in range(generation.num_images)]
    common = {
        "prompt": styled_prompt(prompt, generation.style),  # with the LoRAs' trigger words
        "negative_prompt": generation.negative_prompt or None,
        "num_inference_steps": generation.steps, "guidance_scale": generation.guidance,
        "num_images_per_prompt": generation.num_images, "generator": generators,
        "callback_on_step_end": reporter, "output_type": "pil",
    }
    if generation.init_image_key:
        result = pipelines.call(img2img_for(pipe), image=start_image(generation), strength=generation.strength,
                                **common)
    else:
        result = pipelines.call(pipe, width=generation.width, height=generation.height, **common)
    if reporter.canceled:
        raise Canceled()
    return [postprocess(image, generation.style) for image in result.images], recorder


def _store(generation: Generation, images: list[PILImage.Image], recorder: TimelapseRecorder | None = None) -> None:
    """Save files first, then the rows and the final status in one commit; no row ever points at a missing file."""
    storage = services.storage()
    saved: list[str] = []
    rows = []
    lineage = chain_from(generation)
    try:
        for index, picture in enumerate(images):
            parameters = {
                "prompt": generation.prompt, "negative_prompt": generation.negative_prompt, "model": generation.model,
                "seed": generation.seed + index, "steps": generation.steps, "guidance": generation.guidance,
                "width": generation.width, "height": generation.height, "style": generation.style,
                "generation_id": generation.id, "source": generation.source, "loras": generation.loras or [],
            }
            if generation.source == Source.UPSCALE:
                parameters.update(upscaler=generation.upscaler, upscale_factor=generation.upscale_factor)
            if generation.init_image_key:
                parameters.update(strength=generation.strength, resize_mode=generation.resize_mode)
            if lineage:
                parameters["lineage"] = lineage
            key = image_key(generation.user_id, generation.id, index)
            thumb = thumbnail_key(generation.user_id, generation.id, index)
            storage.save(key, encode_png(picture, parameters), "image/png")
            saved.append(key)
            storage.save(thumb, encode_webp(picture, THUMBNAIL_SIZE), "image/webp")
            saved.append(thumb)
            timelapse = None
            if recorder is not None:
                timelapse = timelapse_key(generation.user_id, generation.id, index)
                storage.save(timelapse, recorder.encode(index, picture), "image/webp")
                saved.append(timelapse)
            rows.append(Image(id=new_id(), generation_id=generation.id, user_id=generation.user_id, index=index,
                              storage_key=key, thumbnail_key=thumb, timelapse_key=timelapse,
                              width=picture.width, height=picture.height, **safety.check(picture).columns()))
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
        if generation.source == Source.UPSCALE:
            images, recorder = make_upscaled(generation, StartImageGone, Canceled), None
        else:
            images, recorder = _make_images(generation)
        _store(generation, images, recorder)
        del recorder  # the frames are dropped as soon as the animations are written
    except Canceled:
        move_generation(generation_id, GenerationStatus.CANCELED, (GenerationStatus.RUNNING,), finished_at=utcnow())
        log.info("canceled")
        return {"canceled": True}
    except Exception as exc:
        job = get_current_job()
        if retry := transient_retry(exc, (job.number_of_retries or 0) if job else len(RETRY_INTERVALS)):
            log.warning("transient %r, retrying", exc)
            db.session.rollback()
            move_generation(generation_id, GenerationStatus.QUEUED, (GenerationStatus.RUNNING,), started_at=None)
            return retry
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
