"""Generations from the web side: create and enqueue, cancel, report progress. No torch here."""
from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from flask import current_app, url_for
from PIL import Image as PILImage
from redis.exceptions import RedisError
from rq import Worker
from rq.job import Job, JobStatus
from rq.queue import Queue
from sqlalchemy import func, select, update

from models.controls import ESTIMATORS

from . import controls as control_images
from . import lifecycle, progress, safety, services
from .drawable import drawing_hint
from .editing import EditRequest, save_mask
from .extensions import db
from .groups.limits import allowance, choices_refusal, limits_refusal, requests_count
from .moderation.blocked_terms import find_blocked_term
from .moderation.prompt_classifier import ClassifierChoice, classifier_refusal, site_choice
from .prompting.picks import image_prompts, prompt_of
from .prompting.wildcards import PromptProblem
from .queues import SERIALIZER, model_queue_name, queued_eta
from .tables import (
    DEFAULT_STRENGTH,
    MAX_IMAGES_PER_REQUEST,
    Generation,
    GenerationStatus,
    Image,
    Source,
    Upload,
    User,
    new_id,
    utcnow,
)
from .uploads import encode_png, fit_to, new_upload_id, upload_key

log = logging.getLogger(__name__)


MAX_SEED = 2**32 - 1
LIVE_UNAVAILABLE = "Live progress is unavailable right now; the picture is still being made. This page will update."
RETRYING = ("A service the worker needs did not answer while making this picture. It will try again in a few "
            "seconds, at the front of the queue.")
ACTIVE_RETRY_SECONDS = 10  # a generation on the bundled model takes about that long
QUEUE_DOWN = "The image queue is not reachable right now, so nothing was started. Please try again in a minute."


class GenerationRefused(Exception):
    """The request is valid but cannot be taken now; ``status`` is the HTTP answer (429 limits, 503 queue down).

    ``retry_after`` is how many seconds until trying again makes sense (None: unknown).
    """

    def __init__(self, message: str, status: int = 429, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class PromptBlocked(GenerationRefused):
    """The prompt contains a term the admins have blocked; ``field`` names the form field."""

    field = "prompt"


class PromptRefused(GenerationRefused):
    """The prompt's wildcards cannot be expanded (an unknown list, too many combinations): a 400 on its field."""

    field = "prompt"

    def __init__(self, message: str):
        super().__init__(message, status=400)


def new_seed() -> int:
    """A random seed, resolved before enqueueing so every result can be reproduced."""
    return secrets.randbelow(MAX_SEED + 1)


def lock_user(user_id: int) -> None:
    """Hold this person's lock until the transaction ends, so their limit checks and inserts run one at a time.

    PostgreSQL locks the user's row (``SELECT … FOR UPDATE``); other people are not held up. SQLite has no
    row locks: a write to the row takes the database's single write lock at once (the driver begins the
    transaction before it), and every other writer waits for the commit (``busy_timeout``).
    """
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(update(User).where(User.id == user_id).values(id=User.id))
    else:
        db.session.execute(select(User.id).where(User.id == user_id).with_for_update())


def check_limits(user: User, num_images: int, new_request: bool = True) -> None:
    """Refuse a new request past ``MAX_QUEUED_PER_USER`` waiting ones or the daily image quota (call under
    ``lock_user``). A grid is one request of all its cells' images (``webapp.grids.start``): its cells are then
    made with ``new_request`` False, so only their images are counted again.

    Waiting and running are limited apart: at most ``MAX_ACTIVE_PER_USER`` of a person's generations run at once
    (a worker's pipeline call takes no more of them; see ``jobs.batching``), the rest wait in the fair queue, where
    they delay nobody else's turn, up to ``MAX_QUEUED_PER_USER`` of them. A person's groups may set their own
    limits instead (webapp/groups/limits.py); the refusal then names the group.
    """
    refusal, replaced = limits_refusal(user.id, num_images, new_request)
    if refusal is not None:
        raise GenerationRefused(refusal.message, status=refusal.status, retry_after=refusal.retry_after)
    waiting = requests_count(user.id, (GenerationStatus.QUEUED,)) if new_request else 0
    limit = current_app.config["MAX_QUEUED_PER_USER"]
    if "max_queued" not in replaced and waiting >= limit:
        raise GenerationRefused(
            f"You already have {waiting} generation{'s' if waiting != 1 else ''} waiting in the queue "
            f"(the limit is {limit}). Wait for one to start, or cancel one.",
            retry_after=ACTIVE_RETRY_SECONDS)
    quota = current_app.config["DAILY_IMAGE_QUOTA"]
    since = utcnow() - timedelta(days=1)
    counted = (Generation.user_id == user.id, Generation.created_at >= since,
               Generation.status.notin_([GenerationStatus.FAILED, GenerationStatus.CANCELED]))
    used = db.session.scalar(select(func.coalesce(func.sum(Generation.num_images), 0)).where(*counted)) or 0
    if "daily_images" not in replaced and used + num_images > quota:
        oldest = db.session.scalar(select(func.min(Generation.created_at)).where(*counted))
        frees_in = (oldest + timedelta(days=1) - utcnow()).total_seconds() if oldest else 86400
        raise GenerationRefused(f"You have reached today's limit of {quota} images. Try again tomorrow.",
                                retry_after=max(1, int(frees_in) + 1))


def check_prompt(prompt: str, user_id: int | None = None) -> None:
    """Refuse a prompt with a blocked term, or one the text classifier scores as offensive when it is on for the
    person (``user_id``; webapp/moderation/prompt_classifier.py). The negative prompt is not checked: it says
    what to avoid."""
    term = find_blocked_term(prompt)
    if term is not None:
        raise PromptBlocked(f"The prompt contains “{term}”, which this site does not allow. Please rephrase it.")
    if user_id is None:
        return
    setting = allowance(user_id).prompt_classifier  # the person's groups', else the site's
    choice = ClassifierChoice(bool(setting.value), setting.group) if setting is not None else site_choice()
    if (refusal := classifier_refusal(prompt, choice)) is not None:
        raise PromptBlocked(refusal)


def _store_upload(user: User, picture: PILImage.Image, params: dict, verdict: safety.Verdict) -> tuple[Upload, str]:
    """Save the upload, resized to the size the job starts from, as a PNG, with the safety check's ``verdict``;
    the row is added, not committed.

    An upscale starts from the upload at ``1/upscale_factor`` of the generation's (enlarged) size.
    """
    factor = params.get("upscale_factor") or 1
    picture = fit_to(picture, (params["width"] // factor, params["height"] // factor),
                     params.get("resize_mode") or "crop")
    data = encode_png(picture)
    upload = Upload(id=new_upload_id(), user_id=user.id, width=picture.width, height=picture.height,
                    file_bytes=len(data), **verdict.columns())
    upload.storage_key = upload_key(user.id, upload.id)
    services.storage().save(upload.storage_key, data, "image/png")
    db.session.add(upload)
    db.session.flush()  # the generation row refers to it
    return upload, upload.storage_key


def create_generation(user: User, params: dict, job_timeout: int, upload: PILImage.Image | None = None,
                      edit: EditRequest | None = None, controls: list | None = None,
                      grid_cell: bool = False) -> Generation:
    """Insert the row, then enqueue its job (id = row id).

    Args:
        user: who asks.
        params: validated column values (prompt, model, width, ..., seed may be None).
        job_timeout: seconds the job may run (from the model's catalog entry).
        upload: a decoded starting image to store with the row (only once every check has passed).
        edit: a mask (at the generation's size) and its settings, stored with the row (``webapp.editing``).
        controls: checked control images (``webapp.controls.prepare``), stored with the row likewise.
        grid_cell: a cell of a grid whose request the caller already counted (``check_limits``).

    Raises:
        GenerationRefused: banned, over a limit, or the queue is down (the row is then marked failed).
        PromptBlocked: the prompt has a blocked term (nothing is inserted or enqueued).
    """
    if user.is_banned:
        raise GenerationRefused("This account has been suspended, so it cannot make images.", status=403)
    if edit is not None and edit.inpaint_area == "masked" and len(controls or []) > 1:  # diffusers crops one only
        raise GenerationRefused("Repainting only the masked area works with one control image; send one, or repaint "
                                "the whole picture.", status=400)
    check_prompt(params["prompt"], user.id)
    if (refusal := choices_refusal(user.id, params)) is not None:  # a model, LoRA or upscaler outside its groups'
        raise GenerationRefused(refusal.message, status=refusal.status)
    if params.get("seed") is None:
        params = {**params, "seed": new_seed()}
    params, picks = _pick_prompts(user, params)
    # before the lock: the detector takes a fraction of a second, and SQLite's lock is everyone's
    verdict = safety.check(upload) if upload is not None else None
    # The checks and the insert are one transaction under the person's lock: simultaneous submits cannot
    # all see room for one more (check-then-insert), however many arrive at once.
    lock_user(user.id)
    try:
        check_limits(user, params["num_images"], new_request=not grid_cell)
    except GenerationRefused:
        db.session.rollback()
        raise
    upload_file = None
    if upload is not None:
        row, upload_file = _store_upload(user, upload, params, verdict)
        # an upload is image-to-image unless the caller says otherwise (an upscale of the upload)
        params = {"source": Source.UPLOAD, **params, "upload_id": row.id, "init_image_key": upload_file}
    written = [upload_file] if upload_file else []
    recorded = None
    try:
        if controls:  # stored in the generation's folder: its id is chosen here
            params = {**params, "id": new_id()}
            recorded = params["controls"] = control_images.store(user.id, params["id"], controls)
        generation = Generation(user_id=user.id, status=GenerationStatus.QUEUED, **params)
        if generation.id is None:
            generation.id = new_id()  # the mask's key is made of it
        if picks is not None:
            generation.prompt_picks = picks
        db.session.add(generation)
        if edit is not None:
            key = None if edit.mask is None else save_mask(services.storage(), user.id, generation.id, edit.mask)
            written += [key] if key else []
            db.session.add(edit.row(generation.id, key))
        db.session.commit()
    except BaseException:
        db.session.rollback()
        for key in written:
            services.storage().delete(key)
        control_images.forget(recorded)
        raise
    try:
        lifecycle.enqueue(generation, job_timeout)
    except RedisError:
        log.exception("generation %s: could not enqueue", generation.id)
        lifecycle.fail(generation.id, QUEUE_DOWN, (GenerationStatus.QUEUED,), notify=False)  # the answer says so
        raise GenerationRefused(QUEUE_DOWN, status=503) from None
    return generation


def _pick_prompts(user: User, params: dict) -> tuple[dict, object]:
    """Each image's prompt from the wildcards (``webapp.prompting``), checked for blocked terms like the prompt.

    Raises:
        PromptRefused: the wildcards cannot be expanded. PromptBlocked: a pick holds a blocked term.
    """
    entry = services.catalog().get(params["model"])
    limit = min(MAX_IMAGES_PER_REQUEST, entry.max_images if entry is not None else MAX_IMAGES_PER_REQUEST)
    try:
        params, picks = image_prompts(user.id, params, limit)
    except PromptProblem as exc:
        db.session.rollback()
        raise PromptRefused(str(exc)) from None
    for prompt in picks.prompts if picks is not None else ():
        check_prompt(prompt)
    return params, picks


def cancel_generation(generation: Generation) -> None:
    """Cancel: a queued job never runs; a running one stops within a step (the worker marks it)."""
    lifecycle.cancel(generation.id)
    db.session.refresh(generation)


def queue_position(generation: Generation) -> int | None:
    """1 for the next job of its model to run, None when it is not waiting in the queue.

    Raises:
        RedisError: Redis did not answer within ``services.QUICK_READ_TIMEOUT``.
    """
    position = _quick_queue(generation.model).get_job_position(generation.id)
    return None if position is None else position + 1


def _quick_queue(model: str) -> Queue:
    """A model's queue on the short-timeout client, for the page's optional reads."""
    return Queue(model_queue_name(model), connection=services.quick_redis(), serializer=SERIALIZER)


def unserved_notice(model: str) -> str | None:
    """Why a queued generation may wait forever: no live worker serves its model (None when one does).

    Raises:
        RedisError: Redis did not answer within ``services.QUICK_READ_TIMEOUT``.
    """
    if Worker.all(queue=_quick_queue(model)):
        return None
    return (f"No worker serves model {model} right now. It will start when a worker for it comes online; "
            f"you can cancel it and choose another model.")


def _retry_waiting(generation_id: str) -> bool:
    """Whether the generation's job waits in RQ's scheduled registry for a retry after a transient error."""
    status = services.quick_redis().hget(Job.key_for(generation_id), "status")  # what Job.get_status reads
    return status is not None and status.decode() == JobStatus.SCHEDULED


def generation_params(generation: Generation) -> dict:
    """The studio form's values that made this generation, by field name (the studio's "reuse all settings")."""
    return {"prompt": generation.prompt, "negative_prompt": generation.negative_prompt, "model": generation.model,
            "width": generation.width, "height": generation.height, "steps": generation.steps,
            "guidance": generation.guidance, "seed": generation.seed, "num_images": generation.num_images,
            "style": generation.style, "timelapse": bool(generation.timelapse),
            "scheduler": generation.scheduler or "",  # the sampler chosen; "": the model's own
            # the starting image, so a reused try starts from the same picture (remix does the same)
            "init_image_id": (generation.parent_image_id or "") if generation.source != Source.UPSCALE else "",
            "upload_id": generation.upload_id or "", "resize_mode": generation.resize_mode or "crop",
            "strength": generation.strength if generation.strength is not None else DEFAULT_STRENGTH,
            **lora_fields(generation.loras), **edit_fields(generation), **reused_control(generation)}


def edit_fields(generation: Generation) -> dict:
    """The studio's mask fields: an edit's mask comes back by the id of the generation that stored it."""
    edit = generation.edit
    if edit is None:
        return {"mask_from": "", "hires": False}
    if edit.kind == "hires":  # the form asks for the first pass's size
        return {"mask_from": "", "hires": True, "hr_scale": edit.hr_scale, "hr_upscaler": edit.hr_upscaler,
                "hr_strength": edit.hr_strength, "hr_steps": edit.hr_steps or "",
                "width": round(generation.width / edit.hr_scale), "height": round(generation.height / edit.hr_scale)}
    found = {"mask_from": generation.id, "mask_blur": edit.mask_blur, "inpaint_area": edit.inpaint_area, "hires": False}
    if edit.kind == "outpaint":  # its start is the canvas it stored (an upload), not the image it came from
        found["init_image_id"] = ""
    return found


def reused_control(generation: Generation) -> dict:
    """The studio's control fields for a generation's first control image (its stored copy, by generation id)."""
    unit = (generation.controls or [{}])[0]
    # the stored copy is preprocessed, except for an estimator (depth), whose map the worker makes again
    again = unit.get("preprocessor") if unit.get("preprocessor") in ESTIMATORS else ""
    return {"control": unit.get("name", ""), "control_scale": unit.get("scale", ""), "control_preprocessor": again,
            "control_from": generation.id if unit else ""}


def lora_fields(loras: list | None, slots: int = 3) -> dict:
    """The studio's LoRA menus and scales (``loras-0-name``, ``loras-0-scale`` …) for a generation's LoRAs."""
    picks = list(loras or []) + [("", None)] * slots
    return {key: value for index, (name, scale) in enumerate(picks[:slots])
            for key, value in ((f"loras-{index}-name", name), (f"loras-{index}-scale", "" if scale is None else scale))}


def image_json(image: Image) -> dict:
    """One image as the API shows it; ``seed`` remakes it alone."""
    return {
        "id": image.id,
        "seed": image.generation.seed + image.index,
        "prompt": prompt_of(image.generation, image.index),  # its own, with wildcard picks filled in
        "url": url_for("gallery.image_file", image_id=image.id),
        "thumbnail_url": url_for("gallery.image_thumbnail", image_id=image.id),
        "page_url": url_for("gallery.image_detail", image_id=image.id),
        "width": image.width,
        "height": image.height,
        "held": image.is_held,  # by the safety check: shown blurred, with the reason
        "held_reason": image.held_reason,
        "timelapse_url": url_for("gallery.image_timelapse", image_id=image.id) if image.timelapse_key else None,
    }


def generation_state(generation: Generation) -> dict:
    """The JSON of ``GET /api/generations/<id>``: the row, plus live progress from Redis.

    When Redis does not answer at once, ``notice`` says the live progress is unavailable and the rest
    comes from the database alone.
    """
    state = {
        "id": generation.id,
        "status": generation.status,
        "queue_position": None,
        "step": 0,
        "total_steps": generation.total_steps,
        "width": generation.width,
        "height": generation.height,
        "eta_seconds": None,
        "preview_url": None,
        "images": [],
        "error": generation.error,
        "notice": None,
        "hint": None,  # once done: what in the prompt the model cannot draw (webapp/drawable.py)
        "params": generation_params(generation),
        "api_url": url_for("api.generation", generation_id=generation.id),
        "page_url": url_for("studio.generation_page", generation_id=generation.id),
        "cancel_url": url_for("studio.cancel", generation_id=generation.id),
    }
    status = GenerationStatus(generation.status)
    if status == GenerationStatus.QUEUED:
        try:
            state["queue_position"] = queue_position(generation)
            state["notice"] = unserved_notice(generation.model) or (
                RETRYING if state["queue_position"] is None and _retry_waiting(generation.id) else None)
            if state["queue_position"] is not None:
                state["eta_seconds"] = queued_eta(services.quick_redis(), state["queue_position"], generation.model)
        except RedisError:
            state["notice"] = LIVE_UNAVAILABLE
    elif status == GenerationStatus.RUNNING:
        try:
            live = progress.read(services.quick_redis(), generation.id)
        except RedisError:  # the row is the truth; progress is a nicety that must not hold the page up
            live = {}
            state["notice"] = LIVE_UNAVAILABLE
        step = int(live.get("step", 0))
        total = int(live.get("total", generation.total_steps)) or generation.total_steps
        state.update(step=step, total_steps=total)
        if step > 0 and "started" in live:
            per_step = (live["updated"] - live["started"]) / step
            state["eta_seconds"] = round(max(0.0, per_step * (total - step)), 1)
        if "preview_step" in live:
            state["preview_url"] = url_for("studio.preview", generation_id=generation.id, step=int(live["preview_step"]))
    elif status == GenerationStatus.SUCCEEDED:
        state.update(step=generation.total_steps, images=[image_json(image) for image in generation.images],
                     hint=drawing_hint(services.catalog().get(generation.model), generation.prompt))
    return state
