"""Studio routes: the form, ``POST /generations``, the progress page, cancel and the live preview."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from redis.exceptions import RedisError
from sqlalchemy import select

from models.capabilities import pipeline_capabilities
from models.catalog import LoraEntry, ModelEntry

from .. import progress, services
from ..access import owned_generation_or_404, viewable_image_or_404
from ..extensions import db
from ..generations import GenerationRefused, PromptBlocked, cancel_generation, create_generation, generation_state
from ..styles import STYLES
from ..tables import Generation
from .forms import GenerationForm

bp = Blueprint("studio", __name__)

RECENT = 8


def default_entry(models: dict[str, ModelEntry]) -> ModelEntry:
    """The site's default model: ``EASEL_MODEL`` if usable, else the first usable entry."""
    preferred = services.default_model()
    if preferred in models and models[preferred].unavailable_reason() is None:
        return models[preferred]
    return next((e for e in models.values() if e.unavailable_reason() is None), next(iter(models.values())))


def render_studio(form: GenerationForm, status: int = 200, error: str | None = None):
    """The studio page with the form, the models' defaults for the script, and recent work."""
    models = form.catalog
    model_info = {
        name: {"width": e.default_width, "height": e.default_height, "steps": e.default_steps,
               "guidance": e.default_guidance, "sizes": e.sizes, "min_steps": e.min_steps, "max_steps": e.max_steps,
               "max_guidance": e.max_guidance, "max_images": e.max_images, "description": e.description,
               "unavailable": e.unavailable_reason(), **capability_info(e),
               "loras": [lora.name for lora in form.lora_catalog.values() if lora.fits(e)]}
        for name, e in models.items()
    }
    recent = db.session.scalars(select(Generation).where(Generation.user_id == current_user.id)
                                .order_by(Generation.created_at.desc()).limit(RECENT)).all()
    entry = form.entry or default_entry(models)
    return render_template("studio/studio.html", form=form, entry=entry, model_info=model_info,
                           lora_info=lora_info(form.lora_catalog), capabilities=capability_info(entry),
                           styles=STYLES.values(), recent=recent, error=error), status


def capability_info(entry: ModelEntry) -> dict:
    """Which optional fields the model's pipeline takes, for hiding the others (no torch: a stored table)."""
    caps = pipeline_capabilities(entry)
    return {"negative_prompt": caps.negative_prompt, "guidance": caps.guidance}


def lora_info(loras: dict[str, LoraEntry]) -> dict:
    """Each LoRA's trigger words and what it implies (steps, guidance, scale), for the studio's script."""
    return {name: {"label": lora.label, "trigger_words": list(lora.trigger_words), "scale": lora.default_scale,
                   "steps": lora.default_steps, "min_steps": lora.min_steps, "max_steps": lora.max_steps,
                   "guidance": lora.default_guidance, "scheduler": lora.scheduler, "description": lora.description}
            for name, lora in loras.items() if lora.unavailable_reason() is None}


@bp.get("/")
def index():
    """The studio for a signed-in person (pre-filled from the model, or from a remix); else the landing page."""
    if not current_user.is_authenticated:
        return render_template("studio/landing.html")
    models = services.catalog()
    form = GenerationForm(models, formdata=None, lora_catalog=services.loras())
    remix_id = request.args.get("remix")
    if remix_id:
        image = viewable_image_or_404(remix_id)
        source = image.generation
        form.process(data={"prompt": source.prompt, "negative_prompt": source.negative_prompt, "model": source.model,
                           "width": source.width, "height": source.height, "steps": source.steps,
                           "guidance": source.guidance, "seed": str(source.seed + image.index), "num_images": 1,
                           "style": source.style,
                           "loras": [{"name": name, "scale": scale} for name, scale in source.loras or []]})
    if not form.model.data or form.model.data not in models:
        form.fill_defaults(default_entry(models))
    return render_studio(form)


@bp.post("/generations")
@login_required
def create():
    """Validate, insert, enqueue; 303 to the progress page. Invalid input: 400 with the form."""
    form = GenerationForm(services.catalog(), lora_catalog=services.loras())
    if not form.validate_on_submit():
        return render_studio(form, 400)
    entry = form.entry
    try:
        generation = create_generation(current_user, form.params(), job_timeout=entry.job_timeout)
    except PromptBlocked as exc:
        getattr(form, exc.field).errors.append(str(exc))
        return render_studio(form, 400)
    except GenerationRefused as exc:
        return render_studio(form, exc.status, error=str(exc))
    return redirect(url_for("studio.generation_page", generation_id=generation.id), 303)


@bp.get("/generations/<generation_id>")
@login_required
def generation_page(generation_id: str):
    """The progress page; it polls the JSON API until the status is final."""
    generation = owned_generation_or_404(generation_id)
    return render_template("studio/generation.html", generation=generation, state=generation_state(generation))


@bp.post("/generations/<generation_id>/cancel")
@login_required
def cancel(generation_id: str):
    """Owner or admin: stop a queued or running generation."""
    generation = owned_generation_or_404(generation_id)
    if generation.is_final:
        flash("That generation has already finished.", "info")
    else:
        cancel_generation(generation)
        flash("Canceled." if generation.is_final else "Stopping after the current step…", "info")
    return redirect(url_for("studio.generation_page", generation_id=generation.id), 303)


@bp.get("/generations/<generation_id>/preview.webp")
@login_required
def preview(generation_id: str):
    """The latest live preview of a running generation (from Redis, which expires it)."""
    generation = owned_generation_or_404(generation_id)
    try:
        data = progress.read_preview(services.redis(), generation.id)
    except RedisError:
        data = None
    if not data:
        abort(404)
    response = Response(data, mimetype="image/webp")
    response.headers["Cache-Control"] = "private, max-age=60"
    return response
