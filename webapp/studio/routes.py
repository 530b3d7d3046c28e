"""Studio routes: the form, ``POST /generations``, the progress page, cancel and the live preview."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from redis.exceptions import RedisError
from sqlalchemy import select

from models.catalog import ModelEntry

from .. import progress, services
from ..access import owned_generation_or_404, viewable_generation_or_404, viewable_image_or_404
from ..extensions import db
from ..generations import GenerationRefused, PromptBlocked, cancel_generation, create_generation, generation_state
from ..styles import STYLES
from ..tables import Generation
from .forms import GenerationForm, shown_reason

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
               "unavailable": shown_reason(e)}
        for name, e in models.items()
    }
    recent = db.session.scalars(select(Generation).where(Generation.user_id == current_user.id)
                                .order_by(Generation.created_at.desc()).limit(RECENT)).all()
    entry = form.entry or default_entry(models)
    return render_template("studio/studio.html", form=form, entry=entry, model_info=model_info,
                           styles=STYLES.values(), recent=recent, error=error), status


@bp.get("/")
def index():
    """The studio for a signed-in person (pre-filled from the model, or from a remix); else the landing page."""
    if not current_user.is_authenticated:
        return render_template("studio/landing.html")
    models = services.catalog()
    form = GenerationForm(models, formdata=None)
    remix_id = request.args.get("remix")
    if remix_id:
        image = viewable_image_or_404(remix_id)
        source = image.generation
        form.process(data={"prompt": source.prompt, "negative_prompt": source.negative_prompt, "model": source.model,
                           "width": source.width, "height": source.height, "steps": source.steps,
                           "guidance": source.guidance, "seed": str(source.seed + image.index), "num_images": 1,
                           "style": source.style})
    if not form.model.data or form.model.data not in models:
        form.fill_defaults(default_entry(models))
    return render_studio(form)


@bp.post("/generations")
@login_required
def create():
    """Validate, insert, enqueue; 303 to the progress page. Invalid input: 400 with the form."""
    form = GenerationForm(services.catalog())
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
    generation = viewable_generation_or_404(generation_id)
    return render_template("studio/generation.html", generation=generation, state=generation_state(generation),
                           is_owner=generation.user_id == current_user.id)


@bp.post("/generations/<generation_id>/cancel")
@login_required
def cancel(generation_id: str):
    """The owner stops a queued or running generation (admins: the audited admin cancel)."""
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
    generation = viewable_generation_or_404(generation_id)
    try:
        data = progress.read_preview(services.redis(), generation.id)
    except RedisError:
        data = None
    if not data:
        abort(404)
    response = Response(data, mimetype="image/webp")
    response.headers["Cache-Control"] = "private, max-age=60"
    return response
