"""The OpenAI Images dialect: ``POST /v1/images/generations``, ``/v1/images/edits`` and ``GET /v1/models``.

The call waits for the generation (``API_WAIT_SECONDS``); it is an ordinary generation, so it shows
in the gallery even when the wait runs out. Easel's extras come as extension fields, as other
self-hosted servers do: ``negative_prompt``, ``steps``, ``guidance``, ``seed``, ``style``, ``variants``
(``all``: one image per combination of the prompt's ``{a|b}`` and ``__list__`` choices; ``n`` is then ignored).
"""
from __future__ import annotations

import base64
import io
import re
from calendar import timegm

from flask import Blueprint, Flask, jsonify, request
from flask_login import current_user
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from PIL import Image as PILImage

from .. import services
from ..editing import MaskInput
from ..errors import register_api_errors
from ..generations import generation_state
from ..groups.limits import visible
from ..inputs import AsciiFloat, ascii_float, ascii_int
from ..links.tokens import public_url, result_token
from ..prompting.styles import apply_style
from ..prompting.wildcards import VARIANTS
from ..services import default_model as default_model_name
from ..tables import Generation
from .gate import Scheme, protect
from .problems import ApiError, openai_error
from .submit import decode_mask_input, decode_start_image, stored_png, submit, wait_for_images, waiting_place

bp = Blueprint("openai_images", __name__, url_prefix="/v1")
protect(bp, Scheme.BEARER)

SIZE_RE = re.compile(r"([0-9]{1,5})x([0-9]{1,5})")
OUTPUT_FORMATS = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG"}
# Our field names → the request's, so a refusal names the parameter the client sent.
PARAMS = {"num_images": "n", "width": "size", "height": "size"}
# The openai client retries 408/409/429/5xx on its own; a retried generation would be a second one.
NO_RETRY = {"x-should-retry": "false"}


class ImageGenerateSchema(Schema):
    """``POST /v1/images/generations``; fields OpenAI defines that Easel does not use are ignored."""

    class Meta:
        unknown = EXCLUDE

    prompt = fields.String(required=True)
    model = fields.String(load_default=None, allow_none=True)
    n = fields.Integer(load_default=1, allow_none=True, strict=True,
                       validate=validate.Range(1, 10, error="n must be from 1 to 10."))
    size = fields.String(load_default=None, allow_none=True)
    response_format = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(["b64_json", "url"]))
    output_format = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(list(OUTPUT_FORMATS)))
    stream = fields.Boolean(load_default=False, allow_none=True)
    negative_prompt = fields.String(load_default=None, allow_none=True)
    steps = fields.Integer(load_default=None, allow_none=True, strict=True)
    guidance = AsciiFloat(load_default=None, allow_none=True, allow_nan=False)
    seed = fields.Integer(load_default=None, allow_none=True, strict=True)
    strength = AsciiFloat(load_default=None, allow_none=True, allow_nan=False)
    style = fields.String(load_default=None, allow_none=True)
    variants = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(
        VARIANTS, error="variants is random (each image picks from its seed) or all (one image per combination)."))


class ImageEditSchema(ImageGenerateSchema):
    """``POST /v1/images/edits`` (multipart): the same fields, with ``strength`` for the starting image (and the
    optional ``mask`` file: its fully transparent pixels are repainted, the rest kept)."""


def _parse(schema: Schema, body: object = None) -> dict:
    body = request.get_json(silent=True) if body is None else body
    if not isinstance(body, dict):
        raise ApiError(400, "Send a JSON object (Content-Type: application/json).")
    try:
        return schema.load(body)
    except ValidationError as exc:
        errors = {field: messages for field, messages in exc.normalized_messages().items()}
        first = next(iter(errors))
        raise ApiError(400, f"Invalid '{first}': {' '.join(map(str, errors[first]))}", errors=errors,
                       param=first) from None


def _size(raw: str | None, model: str) -> tuple[int | None, int | None]:
    """``WxH`` (or ``auto``/absent: the model's default) → width, height; a size it does not make → 400."""
    if raw in (None, "", "auto"):
        return None, None
    match = SIZE_RE.fullmatch(raw)
    entry = services.catalog().get(model)
    offered = ", ".join(f"{w}x{h}" for w, h in entry.sizes) if entry else ""
    if match is None or (entry and (int(match[1]), int(match[2])) not in set(entry.sizes)):
        detail = f" {model} makes: {offered}." if entry else ""
        raise ApiError(400, f"Invalid size {raw!r}.{detail}", param="size", kind="invalid_size")
    return int(match[1]), int(match[2])


def _encode(png: bytes, output_format: str) -> bytes:
    if output_format == "png":
        return png
    image = PILImage.open(io.BytesIO(png)).convert("RGB")
    out = io.BytesIO()
    image.save(out, OUTPUT_FORMATS[output_format], quality=90)
    return out.getvalue()


def images_response(generation: Generation, response_format: str, output_format: str) -> dict:
    """The OpenAI ``ImagesResponse`` for a finished generation, selected from ``generation_state``."""
    state = generation_state(generation)
    images = {image.id: image for image in generation.images}
    data = []
    for shown in state["images"]:
        image = images[shown["id"]]
        # the prompt this image was made from (its own pick of the wildcards), styled as the model saw it
        revised = apply_style(shown.get("prompt") or state["params"]["prompt"], "", state["params"]["style"],
                              generation.user_id)[0]
        item: dict = {"revised_prompt": revised} if revised != state["params"]["prompt"] else {}
        if response_format == "url":
            item["url"] = public_url("links.result_file", token=result_token(image))
        else:
            item["b64_json"] = base64.b64encode(_encode(stored_png(image), output_format)).decode()
        data.append(item)
    return {"created": timegm(generation.created_at.timetuple()), "data": data,
            "size": f"{state['width']}x{state['height']}", "output_format": output_format}


def _generate(args: dict, start: PILImage.Image | None = None, mask: MaskInput | None = None):
    """Start the generation (from ``start`` when given, repainting ``mask``), wait for it, answer with OpenAI's
    ``ImagesResponse``."""
    if args["stream"]:
        raise ApiError(400, "Streaming is not supported; send stream: false.", param="stream")
    response_format = args["response_format"] or "b64_json"
    output_format = args["output_format"] or "png"
    if response_format == "url" and output_format != "png":
        raise ApiError(400, "url links serve the PNG; ask for output_format png, or response_format b64_json.",
                       param="output_format")
    model = args["model"] or default_model_name()
    width, height = _size(args["size"], model)
    params = {"prompt": args["prompt"], "negative_prompt": args["negative_prompt"], "model": model, "width": width,
              "height": height, "steps": args["steps"], "guidance": args["guidance"], "seed": args["seed"],
              "num_images": 1 if args["n"] is None else args["n"], "style": args["style"], "strength": args["strength"],
              "variants": args["variants"]}
    with waiting_place():
        try:
            generation = submit(params, start, mask)
        except ApiError as exc:
            if exc.code == 429:
                exc.extra_headers.setdefault("x-should-retry", "false")
            exc.param = PARAMS.get(exc.param or "", exc.param)
            raise
        wait_for_images(generation, NO_RETRY)
    return jsonify(images_response(generation, response_format, output_format))


@bp.post("/images/generations")
def generate():
    """Text to image, OpenAI style; waits for the images."""
    args = _parse(ImageGenerateSchema())
    if args["strength"] is not None:
        raise ApiError(400, "strength needs a starting image; this endpoint makes images from text "
                            "(use /v1/images/edits).", param="strength")
    return _generate(args)


@bp.post("/images/edits")
def edit():
    """Image to image from the uploaded ``image`` (or ``image[]``), OpenAI style; waits for the images."""
    if request.mimetype != "multipart/form-data":
        raise ApiError(400, "Send the image as multipart/form-data.", param="image")
    files = [f for f in request.files.getlist("image") + request.files.getlist("image[]") if f.filename]
    if len(files) != 1:
        raise ApiError(400, "Send exactly one image (as image or image[]).", param="image")
    args = _parse(ImageEditSchema(), _form_fields())
    start = decode_start_image(files[0].read(), "image")
    mask = None
    if (sent := request.files.get("mask")) is not None and sent.filename:
        # OpenAI's mask: a PNG as large as the image whose fully transparent pixels mark where to edit
        picture = decode_mask_input(sent.read(), "mask", transparent_edits=True)
        if picture.size != start.size:
            raise ApiError(400, f"The mask must be as large as the image ({start.width}x{start.height}), not "
                                f"{picture.width}x{picture.height}.", param="mask", kind="invalid_mask")
        mask = MaskInput(picture)
    return _generate(args, start, mask)


def _form_fields() -> dict:
    """Multipart text fields as JSON-like values (numbers in ASCII parsed, so the schema checks them as in JSON;
    anything else stays text, which the schema refuses as not a number)."""
    values: dict = {}
    for key, value in request.form.items():
        if key in {"n", "steps", "seed"}:
            try:
                values[key] = ascii_int(value)
            except ValueError:
                values[key] = value
        elif key in {"guidance", "strength"}:
            try:
                values[key] = ascii_float(value)
            except ValueError:
                values[key] = value
        elif key == "stream":
            values[key] = value.lower() in {"1", "true", "yes"}
        else:
            values[key] = value
    return values


@bp.get("/models")
def models():
    """The catalog's usable models the person's groups allow, as OpenAI's model list."""
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "easel"}
            for name, entry in visible(current_user.id, services.catalog()).items() if entry.unavailable_reason() is None]
    return jsonify({"object": "list", "data": data})


def register(app: Flask) -> None:
    """Serve the dialect; its errors are OpenAI-shaped."""
    app.register_blueprint(bp)
    register_api_errors(app, "/v1", openai_error)
