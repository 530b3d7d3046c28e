"""Generations from the web side: create and enqueue, cancel, report progress. No torch here."""
from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from flask import current_app, url_for
from redis.exceptions import RedisError
from rq import Callback
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import func, select

from . import progress, services
from .extensions import db
from .moderation.blocked_terms import find_blocked_term
from .queues import generation_queue, serving_workers
from .tables import ACTIVE_STATUSES, Generation, GenerationStatus, Image, User, move_generation, utcnow

log = logging.getLogger(__name__)

MAX_SEED = 2**32 - 1
QUEUE_DOWN = "The image queue is not reachable right now, so nothing was started. Please try again in a minute."


class GenerationRefused(Exception):
    """The request is valid but cannot be taken now; ``status`` is the HTTP answer (429 limits, 503 queue down)."""

    def __init__(self, message: str, status: int = 429):
        super().__init__(message)
        self.status = status


class PromptBlocked(GenerationRefused):
    """The prompt contains a term the admins have blocked; ``field`` names the form field."""

    field = "prompt"


def new_seed() -> int:
    """A random seed, resolved before enqueueing so every result can be reproduced."""
    return secrets.randbelow(MAX_SEED + 1)


def check_limits(user: User, num_images: int) -> None:
    """Refuse a new generation past ``MAX_ACTIVE_PER_USER`` or the daily image quota."""
    active = db.session.scalar(select(func.count()).select_from(Generation).where(
        Generation.user_id == user.id, Generation.status.in_(list(ACTIVE_STATUSES))))
    limit = current_app.config["MAX_ACTIVE_PER_USER"]
    if active >= limit:
        raise GenerationRefused(
            f"You already have {active} generation{'s' if active != 1 else ''} waiting or running "
            f"(the limit is {limit}). Wait for one to finish, or cancel one.")
    quota = current_app.config["DAILY_IMAGE_QUOTA"]
    since = utcnow() - timedelta(days=1)
    used = db.session.scalar(select(func.coalesce(func.sum(Generation.num_images), 0)).where(
        Generation.user_id == user.id, Generation.created_at >= since,
        Generation.status.notin_([GenerationStatus.FAILED, GenerationStatus.CANCELED]))) or 0
    if used + num_images > quota:
        raise GenerationRefused(f"You have reached today's limit of {quota} images. Try again tomorrow.")


def check_prompt(prompt: str) -> None:
    """Refuse a prompt with a blocked term (the negative prompt is not checked: it says what to avoid)."""
    term = find_blocked_term(prompt)
    if term is not None:
        raise PromptBlocked(f"The prompt contains “{term}”, which this site does not allow. Please rephrase it.")


def create_generation(user: User, params: dict, job_timeout: int) -> Generation:
    """Insert the row, then enqueue its job (id = row id).

    Args:
        user: who asks.
        params: validated column values (prompt, model, width, ..., seed may be None).
        job_timeout: seconds the job may run (from the model's catalog entry).

    Raises:
        GenerationRefused: banned, over a limit, or the queue is down (the row is then marked failed).
        PromptBlocked: the prompt has a blocked term (nothing is inserted or enqueued).
    """
    if user.is_banned:
        raise GenerationRefused("This account has been suspended, so it cannot make images.", status=403)
    check_prompt(params["prompt"])
    check_limits(user, params["num_images"])
    if params.get("seed") is None:
        params = {**params, "seed": new_seed()}
    generation = Generation(user_id=user.id, status=GenerationStatus.QUEUED, **params)
    db.session.add(generation)
    db.session.commit()
    try:
        generation_queue(generation.model).enqueue(
            "jobs.generate.run", generation.id, job_id=generation.id, job_timeout=job_timeout,
            result_ttl=24 * 3600, failure_ttl=7 * 24 * 3600, on_failure=Callback("jobs.generate.on_failure"),
            description=f"generation {generation.id} for user {user.id}")
    except RedisError:
        log.exception("generation %s: could not enqueue", generation.id)
        move_generation(generation.id, GenerationStatus.FAILED, (GenerationStatus.QUEUED,),
                        error=QUEUE_DOWN, finished_at=utcnow())
        raise GenerationRefused(QUEUE_DOWN, status=503) from None
    return generation


def cancel_generation(generation: Generation) -> None:
    """Cancel: a queued job never runs; a running one stops within a step (the worker marks it)."""
    queued_cancel = move_generation(generation.id, GenerationStatus.CANCELED, (GenerationStatus.QUEUED,),
                                    finished_at=utcnow(), error=None)
    try:
        progress.request_cancel(services.redis(), generation.id)
        if queued_cancel:
            try:
                Job.fetch(generation.id, connection=services.redis()).cancel()
            except NoSuchJobError:
                pass
    except RedisError:
        log.warning("generation %s: Redis unreachable while canceling", generation.id)
    db.session.refresh(generation)


def queue_position(generation: Generation) -> int | None:
    """1 for the next job of its model to run, None when it is not waiting in the queue."""
    try:
        position = generation_queue(generation.model).get_job_position(generation.id)
    except RedisError:
        return None
    return None if position is None else position + 1


def unserved_notice(model: str) -> str | None:
    """Why a queued generation may wait forever: no live worker serves its model (None when one does)."""
    try:
        if serving_workers(model):
            return None
    except RedisError:
        return None
    return (f"No worker serves model {model} right now. It will start when a worker for it comes online; "
            f"you can cancel it and choose another model.")


def image_json(image: Image) -> dict:
    """One image as the API shows it."""
    return {
        "id": image.id,
        "url": url_for("gallery.image_file", image_id=image.id),
        "thumbnail_url": url_for("gallery.image_thumbnail", image_id=image.id),
        "page_url": url_for("gallery.image_detail", image_id=image.id),
        "width": image.width,
        "height": image.height,
    }


def generation_state(generation: Generation) -> dict:
    """The JSON of ``GET /api/generations/<id>``: the row, plus live progress from Redis."""
    state = {
        "id": generation.id,
        "status": generation.status,
        "queue_position": None,
        "step": 0,
        "total_steps": generation.steps,
        "eta_seconds": None,
        "preview_url": None,
        "images": [],
        "error": generation.error,
        "notice": None,
    }
    status = GenerationStatus(generation.status)
    if status == GenerationStatus.QUEUED:
        state["queue_position"] = queue_position(generation)
        state["notice"] = unserved_notice(generation.model)
    elif status == GenerationStatus.RUNNING:
        try:
            live = progress.read(services.redis(), generation.id)
        except RedisError:
            live = {}
        step = int(live.get("step", 0))
        total = int(live.get("total", generation.steps)) or generation.steps
        state.update(step=step, total_steps=total)
        if step > 0 and "started" in live:
            per_step = (live["updated"] - live["started"]) / step
            state["eta_seconds"] = round(max(0.0, per_step * (total - step)), 1)
        if "preview_step" in live:
            state["preview_url"] = url_for("studio.preview", generation_id=generation.id, step=int(live["preview_step"]))
    elif status == GenerationStatus.SUCCEEDED:
        state.update(step=generation.steps, images=[image_json(image) for image in generation.images])
    return state
