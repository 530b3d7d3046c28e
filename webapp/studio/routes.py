"""Studio routes: the form, ``POST /generations``, the progress page, cancel and the live preview."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from redis.exceptions import RedisError
from wtforms.fields.choices import SelectChoice

from models.capabilities import pipeline_capabilities
from models.catalog import LoraEntry, ModelEntry

from .. import progress, services
from ..access import owned_generation_or_404, viewable_generation_or_404, viewable_image_or_404
from ..controls import ControlProblem
from ..drawable import offered_styles
from ..editing import HiresRejected, MaskRejected, hires_offered
from ..errors import render_error, wants_json
from ..extensions import db
from ..generation_rules import shown_reason
from ..generations import (
    GenerationRefused,
    PromptBlocked,
    cancel_generation,
    create_generation,
    generation_state,
    reused_control,
)
from ..groups.limits import visible
from ..image_files import serve_file
from ..prompting.grids import AXES as GRID_TYPES
from ..prompting.styles import styles_for
from ..styles import STYLES
from ..tables import DEFAULT_STRENGTH, Source, Upload
from .board import board
from .controls import control_info, studio_controls
from .forms import GenerationForm, lora_choices, model_choices
from .landing import landing_page, showcase_thumbnail
from .masks import hires_edit, mask_edit

bp = Blueprint("studio", __name__)
GRID_AXES = [(name, label) for name, (label, _) in GRID_TYPES.items()]


def default_entry(models: dict[str, ModelEntry]) -> ModelEntry:
    """The site's default model: ``EASEL_MODEL`` if usable, else the first usable entry."""
    preferred = services.default_model()
    if preferred in models and models[preferred].unavailable_reason() is None:
        return models[preferred]
    return next((e for e in models.values() if e.unavailable_reason() is None), next(iter(models.values())))


def start_image_params(form: GenerationForm) -> dict:
    """Columns for a starting image chosen by id: one the person may see, or an upload of their own; else 404."""
    if form.init_image_id.data:
        image = viewable_image_or_404(form.init_image_id.data)
        return {"source": Source.IMAGE, "parent_image_id": image.id, "init_image_key": image.storage_key}
    if form.upload_id.data:
        upload = db.session.get(Upload, form.upload_id.data)
        if upload is None or upload.user_id != current_user.id:
            abort(404)
        return {"source": Source.UPLOAD, "upload_id": upload.id, "init_image_key": upload.storage_key}
    return {}


def start_preview(form: GenerationForm) -> dict | None:
    """What the form shows of a starting image chosen by id (its picture's URL; the reason when it is held), or None."""
    if form.init_image_id.data:
        image = viewable_image_or_404(form.init_image_id.data)
        return {"url": url_for("gallery.image_thumbnail", image_id=image.id), "label": "the chosen image",
                "held_reason": (image.held_reason or "Held by the safety check.") if image.is_held else None}
    if form.upload_id.data:
        start_image_params(form)
        upload = db.session.get(Upload, form.upload_id.data)
        return {"url": url_for("studio.upload_file", upload_id=upload.id), "label": "your upload",
                "held_reason": (upload.held_reason or "Held by the safety check.") if upload.is_held else None}
    return None


def render_studio(form: GenerationForm, status: int = 200, error: str | None = None, grid_error: bool = False):
    """The studio page with the form, the models' defaults for the script, and recent work.

    The menus list only the models and LoRAs that the person's groups allow (the others are refused anyway).
    """
    models = visible(current_user.id, form.catalog) or form.catalog  # a list of models all gone: refused on submit
    loras = visible(current_user.id, form.lora_catalog, "loras")
    form.model.choices = model_choices(models)
    form.style.choices = [SelectChoice(name, label) for name, label in styles_for(current_user.id)]
    for pick in form.loras:
        pick.form.name.choices = lora_choices(loras)
    controls = control_info(models)
    form.control.choices = [SelectChoice("", "The first that fits the model")] + [
        SelectChoice(name, c["label"]) for name, c in controls.items()]
    model_info = {
        name: {"width": e.default_width, "height": e.default_height, "steps": e.default_steps,
               "guidance": e.default_guidance, "sizes": e.sizes, "min_steps": e.min_steps, "max_steps": e.max_steps,
               "max_guidance": e.max_guidance, "max_images": e.max_images, "description": e.description,
               "unavailable": shown_reason(e), "takes": capability_info(e), "hires": hires_offered(e.sizes),
               "loras": [lora.name for lora in loras.values() if lora.fits(e)], "styles": offered_styles(e)}
        for name, e in models.items()
    }
    entry = form.entry or default_entry(models)
    return render_template("studio/studio.html", form=form, entry=entry, model_info=model_info,
                           lora_info=lora_info(loras), capabilities=capability_info(entry),
                           styles=STYLES.values(), recent=board(current_user.id), error=error, start=start_preview(form),
                           hires=hires_offered(entry.sizes), grid_axes=GRID_AXES, grid_error=grid_error,
                           control_info=controls), status


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
        return landing_page()
    models = visible(current_user.id, services.catalog()) or services.catalog()
    form = GenerationForm(models, formdata=None, lora_catalog=services.loras())
    remix_id = request.args.get("remix")
    if remix_id:
        image = viewable_image_or_404(remix_id)
        source = image.generation
        form.process(data={"prompt": source.prompt, "negative_prompt": source.negative_prompt, "model": source.model,
                           "width": source.width, "height": source.height, "steps": source.steps,
                           "guidance": source.guidance, "seed": str(source.seed + image.index), "num_images": 1,
                           "style": source.style, "init_image_id": source.parent_image_id or "",
                           "upload_id": "" if source.parent_image_id else (source.upload_id or ""),
                           "strength": source.strength or DEFAULT_STRENGTH, "resize_mode": source.resize_mode or "crop",
                           "timelapse": source.timelapse, "scheduler": source.scheduler or "",
                           "loras": [{"name": name, "scale": scale} for name, scale in source.loras or []],
                           **reused_control(source)})
        if source.source == Source.UPSCALE:  # remixing an upscale starts from words again, at the model's size
            form.init_image_id.data = form.upload_id.data = ""
            form.width.data, form.height.data = source.width // source.upscale_factor, source.height // source.upscale_factor
    start_id = request.args.get("init_image_id")
    if start_id:
        viewable_image_or_404(start_id)
        form.init_image_id.data, form.upload_id.data = start_id, ""
    if not form.model.data or form.model.data not in models:
        form.fill_defaults(default_entry(models))
    return render_studio(form)


def form_errors(form: GenerationForm) -> dict[str, list[str]]:
    """Each field's errors by its HTML name; the LoRA list's own errors go to its first menu."""
    found = {name: errors for name, errors in form.errors.items() if name != "loras"}
    for pick in form.loras:
        found.update({sub.name: list(sub.errors) for sub in pick.form if sub.errors})
    if own := [error for error in form.loras.errors if isinstance(error, str)]:
        found.setdefault(form.loras[0].form.name.name, []).extend(own)
    return found


def refused(form: GenerationForm, status: int = 400, error: str | None = None):
    """A refused submit: the studio page again, or for the in-page studio JSON with each field's errors."""
    if wants_json():
        if error:
            return render_error(status, error)
        return jsonify(errors=form_errors(form), status=status), status
    return render_studio(form, status, error=error)


@bp.get("/showcase/<image_id>/thumbnail")
def showcase(image_id: str):
    """A landing-page image's thumbnail, open to everyone while ``PUBLIC_SHOWCASE`` is on."""
    return showcase_thumbnail(image_id)


@bp.post("/generations")
@login_required
def create():
    """Validate, insert, enqueue; 303 to the progress page (JSON asked: 202 with the state). Invalid: 400."""
    form = GenerationForm(services.catalog(), lora_catalog=services.loras())
    start = start_image_params(form)  # before anything else: an image the person may not see is a 404
    if not form.validate_on_submit():
        return refused(form)
    entry = form.entry
    params = {**form.params(), **form.start_params(), **start}
    try:
        edit = mask_edit(form)
    except MaskRejected as exc:
        form.mask.errors.append(str(exc))
        return refused(form)
    if edit is not None and params.get("source") == Source.IMAGE:
        params["source"] = Source.INPAINT
    try:
        if hires := hires_edit(form):
            (params["width"], params["height"]), edit = hires
    except HiresRejected as exc:
        getattr(form, exc.field).errors.append(str(exc))
        return refused(form)
    try:
        controls = studio_controls(form, bool(params.get("init_image_key") or form.upload_picture))
    except ControlProblem as exc:
        getattr(form, exc.field if exc.field != "control" or form.control.data else "control_image").errors.append(
            str(exc))
        return refused(form)
    try:
        generation = create_generation(current_user, params, job_timeout=entry.job_timeout,
                                       upload=form.upload_picture, edit=edit, controls=controls)
    except PromptBlocked as exc:
        getattr(form, exc.field).errors.append(str(exc))
        return refused(form)
    except GenerationRefused as exc:
        return refused(form, exc.status, error=str(exc))
    if wants_json():
        response = jsonify(generation_state(generation))
        response.headers["Location"] = url_for("api.generation", generation_id=generation.id)
        return response, 202
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
    already_final = generation.is_final
    if not already_final:
        cancel_generation(generation)
    if wants_json():
        return jsonify(generation_state(generation))
    if already_final:
        flash("That generation has already finished.", "info")
    else:
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


@bp.get("/uploads/<upload_id>.png")
@login_required
def upload_file(upload_id: str):
    """An upload of one's own, as re-encoded (never the bytes as sent)."""
    upload = db.session.get(Upload, upload_id) if len(upload_id) == 36 else None
    if upload is None or (upload.user_id != current_user.id and not current_user.is_admin):
        abort(404)
    return serve_file(upload.storage_key, "image/png")
