"""What every API does with a generation request: defaults, the shared rules, the ordinary
``create_generation`` (gallery, email, limits, blocked terms), and waiting for it when a dialect must."""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flask import current_app
from flask_login import current_user
from PIL import Image as PILImage

from models.catalog import ModelEntry
from models.samplers import canonical

from .. import services
from ..controls import ControlProblem, ControlUnit, prepare
from ..editing import HiresRejected, MaskInput, MaskRejected, decode_mask, hires_request
from ..extensions import db
from ..generation_rules import chosen_loras, problems
from ..generations import GenerationRefused, PromptBlocked, create_generation
from ..prompting.styles import find_style, style_names
from ..tables import DEFAULT_STRENGTH, Generation, GenerationStatus, Image, Source
from ..uploads import UploadRejected, decode_upload
from .problems import ApiError

WAIT_INTERVAL = 0.25
# Seconds a client refused a waiting place is told to wait, at least: Flask-Limiter moves Retry-After on to the end
# of the token's rate window when that is later.
BUSY_RETRY_AFTER = 10


def with_defaults(params: Mapping[str, Any]) -> dict:
    """Fill what the request left out from the chosen LoRAs (an LCM-LoRA's steps and guidance), the model's
    catalog entry (size, steps, guidance) and the site."""
    filled = {"negative_prompt": "", "seed": None, "num_images": 1, "style": "none", "loras": [], **{
        key: value for key, value in params.items() if value is not None}}
    for name in style_names(filled.get("style")):  # several: the first one's suggestion wins
        if (saved := find_style(name, current_user.id if current_user.is_authenticated else None)):
            for key in ("model", "steps", "guidance"):  # what the style suggests, where the request says nothing
                if getattr(saved, key) is not None:
                    filled.setdefault(key, getattr(saved, key))
    filled.setdefault("model", services.default_model())
    for lora, _ in chosen_loras(services.loras(), filled["loras"]):
        if lora.default_steps is not None:
            filled.setdefault("steps", lora.default_steps)
        if lora.default_guidance is not None:
            filled.setdefault("guidance", lora.default_guidance)
    entry: ModelEntry | None = services.catalog().get(filled["model"])
    if entry is not None:
        filled.setdefault("width", entry.default_width)
        filled.setdefault("height", entry.default_height)
        filled.setdefault("steps", entry.default_steps)
        filled.setdefault("guidance", entry.default_guidance)
    else:  # the model's own error is reported; the numbers are never checked against no model
        for key in ("width", "height", "steps"):
            filled.setdefault(key, 0)
        filled.setdefault("guidance", 0.0)
    filled["seed"] = params.get("seed")
    return filled


def decode_start_image(data: bytes, field: str) -> PILImage.Image:
    """A starting image's bytes, checked as every upload is (format, pixels, bombs), as RGB.

    Raises:
        ApiError: 400 naming ``field`` when the bytes are not an image this site takes.
    """
    try:
        return decode_upload(data, current_app.config["MAX_UPLOAD_PIXELS"])
    except UploadRejected as exc:
        raise ApiError(400, str(exc), errors={field: str(exc)}) from None


def decode_mask_input(data: bytes, field: str, transparent_edits: bool = False) -> PILImage.Image:
    """A mask's bytes, checked as every upload is, as an "L" picture (255 = repaint).

    Raises:
        ApiError: 400 naming ``field`` when the bytes are not an image this site takes.
    """
    try:
        return decode_mask(data, current_app.config["MAX_UPLOAD_PIXELS"], transparent_edits)
    except UploadRejected as exc:
        raise ApiError(400, str(exc), errors={field: str(exc)}, param=field) from None


def submit(params: Mapping[str, Any], start: PILImage.Image | None = None, mask: MaskInput | None = None,
           mask_field: str = "mask", hires: Mapping[str, Any] | None = None,
           controls: list[ControlUnit] | None = None, parent: Image | None = None) -> Generation:
    """Check the request against the rules and start it as the current user.

    Args:
        params: generation parameters (``loras``: ``(name, scale)`` pairs, scale None for the LoRA's default);
            what is missing comes from the LoRAs, the model and the site.
        start: a decoded starting image (image-to-image at ``params["strength"]``), or None.
        mask: what to repaint in ``start`` (inpainting), and how; ``mask_field`` names it in refusals.
        hires: a hires fix of the picture (``scale``, ``upscaler``, ``strength``, ``steps``; None each for the
            default): ``params``' size is the first pass's.
        controls: control images to steer it (checked against the model here, 400 naming the field).
        parent: instead of ``start``, an image the caller checked the person may see, as the starting image.

    Raises:
        ApiError: 400 with per-field messages; 429 (with Retry-After) over a limit; 403; 503 queue down.
    """
    columns, edit = edit_columns(params, start, mask, mask_field, hires, parent)
    entry = services.catalog()[columns["model"]]
    try:
        prepared = prepare(controls or [], entry, columns["width"], columns["height"],
                           start is not None or parent is not None)
    except ControlProblem as exc:
        raise ApiError(400, str(exc), errors={exc.field: str(exc)}) from None
    with refusals_as_api_errors():
        return create_generation(current_user._get_current_object(), columns, job_timeout=entry.job_timeout,
                                 upload=start, edit=edit, controls=prepared)


def checked_columns(params: Mapping[str, Any], start: PILImage.Image | None = None) -> dict:
    """The request with its defaults filled in, checked against the rules, as generation columns.

    Raises:
        ApiError: 400 with per-field messages.
    """
    return edit_columns(params, start)[0]


def edit_columns(params: Mapping[str, Any], start: PILImage.Image | None = None, mask: MaskInput | None = None,
                 mask_field: str = "mask", hires: Mapping[str, Any] | None = None,
                 parent: Image | None = None) -> tuple[dict, Any]:
    """``checked_columns``, and the edit (a fitted mask, or a hires fix's settings; None for neither).

    Raises:
        ApiError: 400 with per-field messages.
    """
    full = with_defaults(params)
    has_start = start is not None or parent is not None
    if has_start:
        full.setdefault("strength", DEFAULT_STRENGTH)
        full.setdefault("resize_mode", "crop")
    elif full.get("strength") is not None:
        raise ApiError(400, "strength needs a starting image.", errors={"strength": "Needs a starting image."})
    hires_edit = None
    if hires is not None and (entry := services.catalog().get(full["model"])) is not None:
        if has_start:
            raise ApiError(400, "The hires fix makes a picture from words, not from a starting image.",
                           errors={"enable_hr": "Not with a starting image."})
        try:
            (full["width"], full["height"]), hires_edit = hires_request(entry.sizes, full["width"], full["height"],
                                                                        **hires)
        except HiresRejected as exc:
            raise ApiError(400, str(exc), errors={exc.field: str(exc)}, param=exc.field) from None
    found = problems(services.catalog(), full, services.loras())
    if mask is not None:
        found |= mask.problems()
        if not has_start:
            found[mask_field] = "A mask needs a starting image."
    if found:
        raise ApiError(400, "The request is not valid: " + " ".join(found.values()), errors=found)
    columns = {key: full[key] for key in ("prompt", "negative_prompt", "model", "width", "height", "steps",
                                         "guidance", "seed", "num_images", "style")}
    if has_start:
        columns |= {"strength": float(full["strength"]), "resize_mode": full["resize_mode"]}
    if parent is not None:
        columns |= {"source": Source.INPAINT if mask else Source.IMAGE, "parent_image_id": parent.id,
                    "init_image_key": parent.storage_key}
    columns["prompt"] = columns["prompt"].strip()
    columns["negative_prompt"] = (columns["negative_prompt"] or "").strip()
    columns["guidance"] = float(columns["guidance"])
    columns["variants"] = full.get("variants") or "random"
    columns["scheduler"] = canonical(full.get("scheduler"))  # the table's spelling; None: the model's own
    columns["loras"] = [[lora.name, scale] for lora, scale in chosen_loras(services.loras(), full["loras"])] or None
    edit = hires_edit
    if mask is not None:
        try:
            size = start.size if start is not None else (parent.width, parent.height)
            edit = mask.fitted(size, (columns["width"], columns["height"]), columns["resize_mode"])
        except MaskRejected as exc:
            raise ApiError(400, str(exc), errors={mask_field: str(exc)}, param=mask_field) from None
        if mask.fill == "latent_noise":  # the masked area starts from noise alone
            columns["strength"] = 1.0
    return columns, edit


@contextmanager
def refusals_as_api_errors(fields: Iterable[str] = ()) -> Iterator[None]:
    """The one translation of a refused generation into an API error, whichever dialect answers it: a blocked
    term (400 naming its field), a limit (its status and Retry-After), a wrong choice (400 naming ``fields``)."""
    try:
        yield
    except PromptBlocked as exc:
        raise ApiError(400, str(exc), errors={exc.field: str(exc)}, kind="content_policy_violation") from None
    except GenerationRefused as exc:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
        errors = {field: str(exc) for field in fields} if exc.status == 400 else None
        raise ApiError(exc.status, str(exc), headers=headers, errors=errors,
                       kind="invalid_request" if exc.status == 400 else "limit_reached") from None


@contextmanager
def waiting_place() -> Iterator[None]:
    """Hold one of this web process's ``API_MAX_WAITING`` places while a request starts and waits for its images.

    Raises:
        ApiError: 503 with Retry-After when every place is taken; nothing was started.
    """
    places = services.api_waiting()
    if not places.acquire(blocking=False):
        raise ApiError(503, "The server is busy: other requests are already waiting for their images. Try again "
                            "when the Retry-After header says, or use /api/v1, which answers at once and lets you poll.",
                       headers={"Retry-After": str(BUSY_RETRY_AFTER)}, kind="server_busy")
    try:
        yield
    finally:
        places.release()


def wait_until_final(generation: Generation, timeout: float) -> bool:
    """Block until the generation is final (True) or ``timeout`` seconds pass (False); it goes on either way."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.refresh(generation)
        if generation.is_final:
            return True
        if time.monotonic() >= deadline:
            return False
        db.session.commit()  # end the read transaction, so the next refresh sees the worker's commit
        time.sleep(WAIT_INTERVAL)


def wait_for_images(generation: Generation, headers: Mapping[str, str] | None = None) -> None:
    """Wait up to ``API_WAIT_SECONDS`` for the images, for the dialects whose calls answer with them.

    Raises:
        ApiError: 504 when the wait runs out (the generation goes on into the gallery), 500 when it did not
            succeed; both carry ``headers``.
    """
    wait = current_app.config["API_WAIT_SECONDS"]
    if not wait_until_final(generation, wait):
        raise ApiError(504, f"The images were not ready within {wait} seconds. They are still being made and will "
                            f"appear in your gallery (generation {generation.id}).", kind="timeout", headers=headers)
    if generation.status != GenerationStatus.SUCCEEDED:
        raise ApiError(500, f"The generation {generation.status}: {generation.error or 'no image was made'}",
                       kind=f"generation_{generation.status}", headers=headers)


def stored_png(image) -> bytes:
    """The image's PNG bytes from storage."""
    return services.storage().open(image.storage_key)
