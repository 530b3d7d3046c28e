"""Several people's generations in one pipeline call, each settled on its own.

Each image keeps its own prompt, negative prompt and ``torch.Generator``, so a batched image is the
image its person would have got alone. Each generation keeps its own progress, preview, cancel (a
canceled one is dropped, its files never written), failure and email; the worker then finishes each
RQ job with the outcome returned here.
"""
from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import torch
from PIL import Image as PILImage
from rq.job import Job

from models import loader
from webapp import progress, services
from webapp.extensions import db
from webapp.mail.outbox import notify_generation_finished
from webapp.styles import postprocess, styled_prompt
from webapp.tables import Generation, GenerationStatus, move_generation, utcnow

from .app_context import with_app
from .generate import (
    PREVIEW_BUDGET,
    Canceled,
    ProgressReporter,
    _store,
    img2img_for,
    pipeline_for,
    readable_error,
    start_image,
    transient_retry,
)
from .preview import previewer_for
from .timelapse import TimelapseRecorder

log = logging.getLogger(__name__)

# An outcome per job id: ("ok", return value) or ("error", exc_info), for the worker to finish the RQ job with.
Outcome = tuple[str, object]


class Member:
    """One generation of the batch: its row, its slice of the batch's images and its own reporter."""

    def __init__(self, job: Job, generation: Generation, first: int, previewer):
        self.job = job
        self.generation = generation
        self.images = slice(first, first + generation.num_images)
        self.recorder = TimelapseRecorder(generation.num_images, previewer) if generation.timelapse else None
        # The reporter stops this member alone: it sets ``_interrupt`` on a stand-in for the pipeline.
        self.stand_in = SimpleNamespace(_easel_previewer=previewer, _interrupt=False)
        self.reporter = ProgressReporter(generation.id, generation.total_steps, self.recorder)

    @property
    def canceled(self) -> bool:
        return self.reporter.canceled


class BatchReporter:
    """The one ``callback_on_step_end``: each member's reporter sees its own slice of the latents."""

    def __init__(self, members: list[Member]):
        self.members = members
        for member in members:  # the batch's previews share one budget, as one generation's do
            member.reporter.budget = PREVIEW_BUDGET / len(members)

    def __call__(self, pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        latents = callback_kwargs.get("latents")
        for member in self.members:
            if member.canceled:
                continue
            own = {} if latents is None else {"latents": latents[member.images]}
            member.reporter(member.stand_in, step, timestep, own)
        if all(member.canceled for member in self.members):
            pipe._interrupt = True
        return callback_kwargs


def _failed(job: Job, generation: Generation, exc: BaseException) -> Outcome:
    """Settle one generation's error as ``generate.run`` does: a retry after a transient error, else failed."""
    db.session.rollback()
    if retry := transient_retry(exc, job.number_of_retries or 0):
        log.warning("generation %s: transient %r, retrying", generation.id, exc)
        move_generation(generation.id, GenerationStatus.QUEUED, (GenerationStatus.RUNNING,), started_at=None)
        return "ok", retry
    log.error("generation %s failed in a batch", generation.id, exc_info=exc)
    if move_generation(generation.id, GenerationStatus.FAILED, (GenerationStatus.RUNNING,),
                       finished_at=utcnow(), error=readable_error(exc, generation)):
        notify_generation_finished(generation.id)
    return "error", (type(exc), exc, exc.__traceback__)


def _call_pipeline(members: list[Member], pipe, starts: dict[str, PILImage.Image]) -> list[PILImage.Image]:
    """One pipeline call for every member's images: lists of prompts, one generator per image."""
    lead = members[0].generation
    prompts, negatives, generators, images = [], [], [], []
    for member in members:
        generation = member.generation
        for index in range(generation.num_images):
            prompts.append(styled_prompt(generation.prompt, generation.style))
            negatives.append(generation.negative_prompt or "")  # "" is what diffusers uses for None
            generators.append(torch.Generator("cpu").manual_seed(generation.seed + index))
            if generation.init_image_key:
                images.append(starts[generation.id])
    common = {
        "prompt": prompts, "negative_prompt": negatives, "num_inference_steps": lead.steps,
        "guidance_scale": lead.guidance, "num_images_per_prompt": 1, "generator": generators,
        "callback_on_step_end": BatchReporter(members), "output_type": "pil",
    }
    if lead.init_image_key:
        return img2img_for(pipe)(image=images, strength=lead.strength, **common).images
    return pipe(width=lead.width, height=lead.height, **common).images


def _begin(jobs: list[Job], outcomes: dict[str, Outcome]) -> list[tuple[Job, Generation]]:
    """Mark each queued generation running; the others are settled as skipped."""
    running = []
    for job in jobs:
        generation = db.session.get(Generation, job.id)
        if generation is None:
            outcomes[job.id] = ("ok", {"skipped": "missing"})
        elif not move_generation(job.id, GenerationStatus.RUNNING, (GenerationStatus.QUEUED,), started_at=utcnow()):
            outcomes[job.id] = ("ok", {"skipped": generation.status})
        else:
            db.session.refresh(generation)
            running.append((job, generation))
    return running


@with_app
def run_batch(jobs: list[Job]) -> dict[str, Outcome]:
    """Make the images of several compatible generations in one call; an outcome per job id."""
    outcomes: dict[str, Outcome] = {}
    running = _begin(jobs, outcomes)
    if not running:
        return outcomes
    began = time.perf_counter()
    members: list[Member] = []
    try:
        pipe = pipeline_for(running[0][1].model)
        previewer = previewer_for(pipe)
        starts: dict[str, PILImage.Image] = {}
        for job, generation in running:
            try:
                if generation.init_image_key:
                    starts[generation.id] = start_image(generation)
            except Exception as exc:  # one missing starting image fails that generation alone
                outcomes[job.id] = _failed(job, generation, exc)
                continue
            first = sum(member.generation.num_images for member in members)
            members.append(Member(job, generation, first, previewer))
        pictures = _call_pipeline(members, pipe, starts) if members else []
    except Exception as exc:
        for job, generation in running:
            if job.id not in outcomes:
                outcomes[job.id] = _failed(job, generation, exc)
        _clear(generation.id for _, generation in running)
        return outcomes
    seconds = time.perf_counter() - began
    for member in members:
        generation = member.generation
        try:
            if member.canceled:
                raise Canceled()
            images = [postprocess(image, generation.style) for image in pictures[member.images]]
            _store(generation, images, member.recorder)
        except Canceled:
            move_generation(generation.id, GenerationStatus.CANCELED, (GenerationStatus.RUNNING,), finished_at=utcnow())
            outcomes[member.job.id] = ("ok", {"canceled": True})
            continue
        except Exception as exc:  # one generation's storage error does not fail the others
            outcomes[member.job.id] = _failed(member.job, generation, exc)
            continue
        finally:
            member.recorder = None  # the frames are dropped as soon as the animations are written
            _clear([generation.id])
        notify_generation_finished(generation.id)
        outcomes[member.job.id] = ("ok", {"images": generation.num_images, "seconds": round(seconds, 3),
                                          "batch": len(members), "pipeline_loads": loader.LOAD_COUNT})
    log.info("batch of %d generation(s), %d image(s) in %.2fs", len(members), len(pictures), seconds)
    return outcomes


def _clear(generation_ids) -> None:
    """Drop the live preview and cancel flag of finished generations (the keys expire anyway)."""
    for generation_id in generation_ids:
        try:
            progress.clear(services.redis(), generation_id)
        except Exception:
            log.warning("could not clear live progress of %s", generation_id)
