"""The AUTOMATIC1111 dialect under ``/sdapi/v1`` (HTTP Basic: the account's email and a token as password).

The subset its clients (webuiapi, Open WebUI, SillyTavern) use. Unknown fields are ignored, as A1111
does. LoRAs come as ``<lora:NAME:SCALE>`` tags in the prompt (``extra_networks``), as A1111's LoRA extension
reads them. ``sampler_name`` (with ``scheduler``, A1111's schedule type: "Karras") chooses one of Easel's samplers
(``models.samplers``, listed by ``samplers``); on a model or LoRA that runs its own scheduler (SD 3, an LCM-LoRA)
it is left out, as clients always send one. ``POST options`` with ``sd_model_checkpoint`` sets the token's model,
never the site's.
"""
from __future__ import annotations

import base64
import io
import json

from flask import Blueprint, Flask, jsonify, request
from flask_login import current_user
from PIL import Image as PILImage
from redis.exceptions import RedisError
from sqlalchemy import select

from models.samplers import SAMPLERS
from models.upscalers import LANCZOS

from .. import progress, services
from ..derived_images import upscale_upload, upscaler_menu
from ..editing import A1111_FILLS, DEFAULT_MASK_BLUR, DEFAULT_PADDING, MaskInput
from ..errors import register_api_errors
from ..extensions import db
from ..generations import cancel_generation, generation_state
from ..groups.limits import allowance, visible
from ..prompting.styles import style_names
from ..services import default_model as default_model_name
from ..tables import ACTIVE_STATUSES, Generation, GenerationStatus
from . import a1111_controlnet
from .a1111_fields import (
    a1111_sampler,
    a1111_style,
    a1111_variants,
    base64_bytes,
    decode_image,
    number,
    read_body,
    read_png_text,
    whole_number,
)
from .a1111_grids import is_xyz_plot, xyz_plot
from .control_input import a1111_controls
from .extra_networks import lora_tags, refuse_tags_in_negative_prompt
from .gate import Scheme, current_token, protect
from .problems import ApiError, a1111_error
from .submit import decode_mask_input, refusals_as_api_errors, stored_png, submit, wait_for_images, waiting_place

bp = Blueprint("automatic1111", __name__, url_prefix="/sdapi/v1")
protect(bp, Scheme.BASIC)


def _model_name(raw: str) -> str:
    """A checkpoint title as clients send it (``name``, ``name.safetensors``, ``name [hash]``) → catalog name."""
    name = raw.split(" [", 1)[0].strip()
    for suffix in (".safetensors", ".ckpt"):
        name = name.removesuffix(suffix)
    return name


def _usable_models() -> dict:
    """The catalog models that can run here and the person's groups allow."""
    return {name: e for name, e in visible(current_user.id, services.catalog()).items() if e.unavailable_reason() is None}


def token_model() -> str:
    """This token's model (chosen with ``POST options``) while it is usable, else the site's default."""
    token = current_token()
    if token is not None and token.default_model in _usable_models():
        return token.default_model
    return default_model_name()


def txt2img_params(body: dict) -> dict:
    """A1111's txt2img fields as Easel's generation parameters."""
    overrides = body.get("override_settings") if isinstance(body.get("override_settings"), dict) else {}
    checkpoint = overrides.get("sd_model_checkpoint")
    seed = whole_number(body, "seed", -1)
    prompt = body.get("prompt", "")
    negative = body.get("negative_prompt", "")
    if not isinstance(prompt, str) or not isinstance(negative, str):
        raise ApiError(422, "prompt and negative_prompt must be text.")
    prompt, loras = lora_tags(prompt)
    refuse_tags_in_negative_prompt(negative)
    model = _model_name(checkpoint) if isinstance(checkpoint, str) and checkpoint else token_model()
    return {
        "prompt": prompt, "negative_prompt": negative, "loras": loras, "style": a1111_style(body),
        "model": model, "scheduler": a1111_sampler(body, model, loras),
        "width": whole_number(body, "width", None), "height": whole_number(body, "height", None),
        "steps": whole_number(body, "steps", None), "guidance": number(body, "cfg_scale"),
        "seed": None if seed is None or seed < 0 else seed,
        "num_images": (whole_number(body, "batch_size", 1) or 1) * (whole_number(body, "n_iter", 1) or 1),
        "variants": a1111_variants(body),
    }


def _infotext(png: bytes) -> str:
    return PILImage.open(io.BytesIO(png)).info.get("parameters", "")


def txt2img_response(generation: Generation, body: dict) -> dict:
    """A1111's response: base64 PNGs, the request's parameters, and ``info`` as a JSON string.

    ``info`` selects from ``generation_state``, the one serializer of a generation (status JSON, /api/v1, studio).
    """
    state = generation_state(generation)
    params, shown = state["params"], state["images"]
    stored = {image.id: stored_png(image) for image in generation.images}
    pngs = [stored[image["id"]] for image in shown] if body.get("send_images", True) else []
    seeds = [image["seed"] for image in shown]
    info = {
        "prompt": params["prompt"], "all_prompts": [image.get("prompt", params["prompt"]) for image in shown],
        "negative_prompt": params["negative_prompt"], "all_negative_prompts": [params["negative_prompt"]] * len(seeds),
        "seed": params["seed"], "all_seeds": seeds, "subseed": -1, "all_subseeds": [-1] * len(seeds),
        "width": params["width"], "height": params["height"], "steps": params["steps"],
        "cfg_scale": params["guidance"], "batch_size": params["num_images"], "sd_model_name": params["model"],
        "sampler_name": params["scheduler"] or services.catalog()[params["model"]].scheduler or "default",
        "styles": [name for name in style_names(params["style"]) if name != "none"],
        "infotexts": [_infotext(stored[image["id"]]) for image in shown],
        "job_timestamp": generation.created_at.strftime("%Y%m%d%H%M%S"), "easel_generation_id": state["id"],
    }
    if generation.strength is not None:
        info["denoising_strength"] = params["strength"]
    return {"images": [base64.b64encode(png).decode() for png in pngs], "parameters": body,
            "info": json.dumps(info, ensure_ascii=False)}


# A1111's resize_mode numbers as Easel's resize modes (uploads.RESIZE_MODES): 0 just resize, 1 crop and resize,
# 2 resize and fill (3: latent upscale).
A1111_RESIZE_MODES = {0: "crop", 1: "crop", 2: "fit", 3: "crop"}


def _run(params: dict, body: dict, start: PILImage.Image | None = None, mask: MaskInput | None = None,
         hires: dict | None = None):
    """Start the generation, wait for it, and answer in A1111's shape (ControlNet units steer it)."""
    controls = a1111_controls(body)
    with waiting_place():
        # a 400 is answered as FastAPI's 422 by a1111_error
        generation = submit(params, start, mask, hires=hires, controls=controls)
        wait_for_images(generation)
    return jsonify(txt2img_response(generation, body))


def a1111_mask(body: dict) -> MaskInput | None:
    """img2img's ``mask`` (base64: white repaints) with ``mask_blur``, ``inpainting_fill`` (0 fill, 1 original,
    2 latent noise; 3 latent nothing is refused), ``inpaint_full_res`` (only the masked area) and its padding,
    and ``inpainting_mask_invert``; None without a mask."""
    if not body.get("mask"):
        return None
    fill = whole_number(body, "inpainting_fill", 1)
    if fill not in A1111_FILLS:
        raise ApiError(422, "inpainting_fill 3 (latent nothing) is not offered on this site; use 0 (fill), "
                            "1 (original) or 2 (latent noise).", errors={"inpainting_fill": "Use 0, 1 or 2."})
    picture = decode_mask_input(base64_bytes(body["mask"], "mask"), "mask")
    return MaskInput(picture, mask_blur=whole_number(body, "mask_blur", DEFAULT_MASK_BLUR),
                     inpaint_area="masked" if body.get("inpaint_full_res") else "whole",
                     padding=whole_number(body, "inpaint_full_res_padding", DEFAULT_PADDING), fill=A1111_FILLS[fill],
                     invert=bool(whole_number(body, "inpainting_mask_invert", 0)))


@bp.post("/txt2img")
def txt2img():
    """Text to image; waits for the images (``API_WAIT_SECONDS``)."""
    body = read_body()
    if is_xyz_plot(body):  # A1111's X/Y/Z plot script: an Easel grid (webapp/api/a1111_grids.py)
        return xyz_plot(txt2img_params(body), body)
    return _run(txt2img_params(body), body, hires=a1111_hires(body))


def a1111_hires(body: dict) -> dict | None:
    """txt2img's hires fix (``enable_hr``, ``hr_scale``, ``hr_upscaler``, ``denoising_strength``,
    ``hr_second_pass_steps``; ``hr_resize_x``/``hr_resize_y`` give the scale from the width); None when off."""
    if not body.get("enable_hr"):
        return None
    scale = number(body, "hr_scale")
    resize_x, width = whole_number(body, "hr_resize_x", 0), whole_number(body, "width", None)
    if resize_x and width:
        scale = resize_x / width
    upscaler = body.get("hr_upscaler")
    return {"scale": scale, "upscaler": upscaler if isinstance(upscaler, str) else None,
            "strength": number(body, "denoising_strength"), "steps": whole_number(body, "hr_second_pass_steps", 0)}


@bp.post("/img2img")
def img2img():
    """Image to image from ``init_images[0]`` at ``denoising_strength``; waits for the images."""
    body = read_body()
    images = body.get("init_images")
    if not isinstance(images, list) or not images:
        raise ApiError(422, "init_images must hold one base64 image.", errors={"init_images": "Required."})
    start = decode_image(images[0], "init_images")
    strength = number(body, "denoising_strength")
    resize = whole_number(body, "resize_mode", 0)
    params = {**txt2img_params(body), "strength": 0.75 if strength is None else strength,
              "resize_mode": A1111_RESIZE_MODES.get(resize, "crop")}
    shown = {key: value for key, value in body.items() if key not in ("init_images", "mask")}
    return _run(params, shown, start, a1111_mask(body))


def _active() -> list[Generation]:
    """My queued and running generations, running first, then oldest first."""
    rows = db.session.scalars(select(Generation).where(
        Generation.user_id == current_user.id, Generation.status.in_(list(ACTIVE_STATUSES)))
        .order_by(Generation.created_at)).all()
    return sorted(rows, key=lambda g: g.status != GenerationStatus.RUNNING)


def _preview_png(generation: Generation) -> str | None:
    try:
        webp = progress.read_preview(services.redis(), generation.id)
    except RedisError:
        return None
    if not webp:
        return None
    out = io.BytesIO()
    PILImage.open(io.BytesIO(webp)).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


@bp.get("/progress")
def progress_of_mine():
    """The current job's progress (0–1), ETA, steps, how many jobs are waiting, and the live preview."""
    active = _active()
    state = {"skipped": False, "interrupted": False, "job": "", "job_count": len(active), "job_timestamp": "0",
             "job_no": 0, "sampling_step": 0, "sampling_steps": 0}
    body = {"progress": 0.0, "eta_relative": 0.0, "state": state, "current_image": None, "textinfo": None}
    if active:
        current = active[0]
        live = generation_state(current)
        total = live["total_steps"] or current.steps
        state.update(job=f"generation {current.id}", job_timestamp=current.created_at.strftime("%Y%m%d%H%M%S"),
                     sampling_step=live["step"], sampling_steps=total)
        body["progress"] = round(live["step"] / total, 4) if total else 0.0
        body["eta_relative"] = live["eta_seconds"] or 0.0
        if request.args.get("skip_current_image", "false").lower() != "true":
            body["current_image"] = _preview_png(current)
        body["textinfo"] = f"{current.status}, step {live['step']} of {total}"
    return jsonify(body)


@bp.post("/interrupt")
def interrupt():
    """Stop all my queued and running generations."""
    for generation in _active():
        cancel_generation(generation)
    return jsonify({})


@bp.post("/skip")
def skip():
    """Stop the generation being made now; the queued ones go on."""
    active = _active()
    if active and active[0].status == GenerationStatus.RUNNING:
        cancel_generation(active[0])
    return jsonify({})


@bp.get("/sd-models")
def sd_models():
    """The usable catalog models, as checkpoints (``filename``: the server's path for admins, else the name)."""
    admin = current_user.is_admin
    return jsonify([{"title": name, "model_name": name, "hash": None, "sha256": None,
                     "filename": str(entry.path or entry.hf_id or name) if admin else name, "config": None}
                    for name, entry in _usable_models().items()])


@bp.get("/loras")
def loras():
    """The usable catalog LoRAs as A1111's LoRA extension lists them; ``name`` is what a ``<lora:NAME>`` tag says.

    ``path`` is the file on this server for admins, the name for everyone else (no server paths leak).
    """
    admin = current_user.is_admin
    return jsonify([{"name": name, "alias": name, "path": str(lora.path) if admin else name,
                     "metadata": {"label": lora.label, "description": lora.description,
                                  "base_kinds": list(lora.base_kinds), "default_scale": lora.default_scale,
                                  "trigger_words": list(lora.trigger_words)}}
                    for name, lora in visible(current_user.id, services.loras(), "loras").items()
                    if lora.unavailable_reason() is None])


@bp.post("/refresh-loras")
def refresh_loras():
    """Nothing to rescan: the catalog lists the LoRAs (A1111 answers null too)."""
    return jsonify(None)


@bp.get("/options")
def options():
    """The options clients read: the model this token uses."""
    return jsonify({"sd_model_checkpoint": token_model(), "sd_checkpoint_hash": None, "samples_format": "png",
                    "sd_vae": "Automatic", "CLIP_stop_at_last_layers": 1})


@bp.post("/options")
def set_options():
    """``sd_model_checkpoint`` sets this token's model (never the site's); other options are ignored."""
    body = read_body()
    checkpoint = body.get("sd_model_checkpoint")
    if checkpoint is not None:
        name = _model_name(str(checkpoint))
        if name not in _usable_models():
            raise ApiError(422, f"Unknown or unavailable model {checkpoint!r}; GET /sdapi/v1/sd-models lists them.",
                           errors={"sd_model_checkpoint": "Not a model this site can run."})
        token = current_token()
        if token is None:
            raise ApiError(401, "Setting the model needs an API token.")
        token.default_model = name
        db.session.commit()
    return jsonify(None)


@bp.get("/samplers")
def samplers():
    """The samplers a request may name in ``sampler_name`` (``models.samplers``)."""
    return jsonify([{"name": sampler.name, "aliases": list(sampler.aliases), "options": {}}
                     for sampler in SAMPLERS.values()])


@bp.get("/schedulers")
def schedulers():
    """The schedule types ``scheduler`` may name: the sampler's own (automatic), or Karras's where the sampler has
    a Karras form ("DPM++ 2M" with "Karras" is "DPM++ 2M Karras")."""
    return jsonify([{"name": "automatic", "label": "Automatic", "aliases": None, "default_rho": -1,
                     "need_inner_model": False},
                    {"name": "karras", "label": "Karras", "aliases": None, "default_rho": 7.0,
                     "need_inner_model": False}])


@bp.get("/upscalers")
def upscalers():
    """The upscalers that can run here and the person's groups allow (for ``extra-single-image``)."""
    allowed_upscalers = allowance(current_user.id).upscalers
    return jsonify([{"name": item["name"], "model_name": item["name"], "model_path": None, "model_url": None,
                     "scale": item["scale"]} for item in upscaler_menu()
                     if not item["unavailable"] and allowed_upscalers.allows(item["name"])])


@bp.post("/extra-single-image")
def extra_single_image():
    """Upscale one base64 image by ``upscaling_resize`` (2 or 4) with ``upscaler_1``; waits for it."""
    body = read_body()
    if whole_number(body, "resize_mode", 0) != 0:
        raise ApiError(422, "Only resize_mode 0 (scale by upscaling_resize) is offered.",
                       errors={"resize_mode": "Use 0."})
    factor = number(body, "upscaling_resize")
    if factor is None or factor != int(factor):
        raise ApiError(422, "upscaling_resize must be 2 or 4.", errors={"upscaling_resize": "Use 2 or 4."})
    upscaler = body.get("upscaler_1") or LANCZOS
    if not isinstance(upscaler, str) or upscaler.lower() == "none":
        raise ApiError(422, "Choose an upscaler as upscaler_1 (GET /sdapi/v1/upscalers lists them).",
                       errors={"upscaler_1": "Required."})
    # A1111's clients send its own spelling (webuiapi's Upscaler.Lanczos is "Lanczos"): names match in any case.
    upscaler = next((item["name"] for item in upscaler_menu() if item["name"].casefold() == upscaler.casefold()),
                    upscaler)
    picture = decode_image(body.get("image"), "image")
    with waiting_place():
        with refusals_as_api_errors(["upscaler_1"]):
            generation = upscale_upload(current_user._get_current_object(), picture, int(factor), upscaler,
                                        token_model())
        wait_for_images(generation)
    png = stored_png(generation.images[0])
    return jsonify({"image": base64.b64encode(png).decode(),
                    "html_info": f"<p>Upscaled ×{generation.upscale_factor} with {generation.upscaler}</p>"})


@bp.get("/latent-upscale-modes")
def latent_upscale_modes():
    """None: high-resolution fix is not offered."""
    return jsonify([])


@bp.get("/sd-vae")
def sd_vae():
    """None to choose: each model uses its own VAE."""
    return jsonify([])


@bp.get("/scripts")
def scripts():
    """No scripts (webuiapi reads this as it starts)."""
    return jsonify({"txt2img": [], "img2img": []})


@bp.post("/png-info")
def png_info():
    """The parameters an image carries in its PNG text chunks."""
    items = read_png_text(read_body().get("image"))
    parameters = items.pop("parameters", "")
    return jsonify({"info": parameters, "items": items})


def register(app: Flask) -> None:
    """Serve the dialect; its errors are A1111-shaped."""
    app.register_blueprint(bp)
    register_api_errors(app, "/sdapi/v1", a1111_error)
    a1111_controlnet.register(app)
