"""Request and response schemas of ``/api/v1``: they validate the requests and generate the OpenAPI document.

Types and shapes live here; the limits (sizes, steps, guidance, images) are ``generation_rules``', checked
against the model's catalog entry, the same rules the studio form uses.
"""
from __future__ import annotations

from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError, fields, post_load, validate

from models.lora import MAX_LORAS
from models.samplers import SAMPLERS
from models.upscalers import FACTORS, LANCZOS

from ... import generation_rules as rules
from ...editing import DEFAULT_MASK_BLUR, INPAINT_AREAS, MASK_BLUR_OUT_OF_RANGE, MAX_MASK_BLUR
from ...generations import MAX_SEED
from ...inputs import AsciiFloat, AsciiInteger, json_text
from ...prompting.wildcards import VARIANTS
from ...styles import STYLES
from ...tables import DEFAULT_STRENGTH, GenerationStatus
from ...uploads import RESIZE_MODES


class ProblemSchema(Schema):
    """An RFC 9457 problem: every error of this API."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "each invalid field's messages"})


class LoraPickSchema(Schema):
    """One LoRA to apply; it loads as a ``(name, scale)`` pair."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=100),
                         metadata={"description": "a catalog name (GET /api/v1/loras)"})
    scale = AsciiFloat(load_default=None, allow_none=True, allow_nan=False,
                         validate=validate.Range(rules.MIN_LORA_SCALE, rules.MAX_LORA_SCALE,
                                                 error=rules.LORA_SCALE_OUT_OF_RANGE),
                         metadata={"description": "how strongly it applies; null or left out: the LoRA's default"})

    @post_load
    def as_pair(self, data: dict, **kwargs) -> tuple[str, float | None]:
        return data["name"], data["scale"]


LORAS_DESCRIPTION = (f"up to {MAX_LORAS} LoRAs made for the model's kind; one that states steps or guidance "
                     f"(an LCM-LoRA) gives their defaults and may narrow the steps allowed")


class JsonPartList(fields.List):
    """A list sent in multipart/form-data as a JSON text part (OpenAPI's encoding of an array of objects there)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            items = []
            for text in value:
                if not text.strip():
                    continue
                try:
                    parsed = json_text(text, attr)
                except ValidationError as exc:
                    raise ValidationError(f'Send {attr} as JSON text, e.g. [{{"name": "…", "scale": 0.8}}]: '
                                          f'{" ".join(exc.messages)}') from None
                items.extend(parsed if isinstance(parsed, list) else [parsed])
            value = items
        return super()._deserialize(value, attr, data, **kwargs)


def lora_picks(kind: type[fields.List] = fields.List, note: str = "") -> fields.List:
    """The ``loras`` field of a request body (``JsonPartList`` in a multipart one)."""
    return kind(fields.Nested(LoraPickSchema), load_default=list, metadata={"description": LORAS_DESCRIPTION + note},
                validate=validate.Length(max=MAX_LORAS, error=rules.TOO_MANY_LORAS))


class HiresSchema(Schema):
    """A hires fix: made at ``width``×``height``, enlarged ``scale`` times, then refined at the larger size (which the
    model must make); one generation, one progress bar over both passes."""

    scale = fields.Float(load_default=None, allow_nan=False, metadata={"description": "above 1, at most 4 (default 2)"})
    upscaler = fields.String(load_default=None, metadata={"description": "lanczos (default), bicubic, bilinear, nearest"})
    strength = fields.Float(load_default=None, allow_nan=False,
                            metadata={"description": "the second pass's denoising strength (default 0.4)"})
    steps = fields.Integer(load_default=None, strict=True,
                           metadata={"description": "the second pass's steps (default: as many as the first)"})
CONTROL_DOC = {
    "control": "a control model's catalog name (GET /api/v1/controls); left out: the first that fits the model",
    "control_scale": "how strongly the control image steers, 0 to 2; left out: the control model's default",
    "control_preprocessor": "none, scribble or canny (depth, pose where installed); left out: the control model's own",
}


def control_fields() -> dict:
    """The control image's settings (beside ``control_image``), as JSON or multipart text."""
    return {"control": fields.String(load_default=None, validate=validate.Length(min=1, max=100),
                                     metadata={"description": CONTROL_DOC["control"]}),
            "control_scale": AsciiFloat(load_default=None, allow_nan=False,
                                        metadata={"description": CONTROL_DOC["control_scale"]}),
            "control_preprocessor": fields.String(load_default=None, validate=validate.Length(max=32),
                                                  metadata={"description": CONTROL_DOC["control_preprocessor"]})}


class GenerationCreateSchema(Schema):
    """A new text-to-image generation; what is left out comes from the model's defaults."""

    prompt = fields.String(required=True, validate=validate.Length(max=rules.PROMPT_MAX, error=rules.PROMPT_TOO_LONG),
                           error_messages={"required": rules.PROMPT_MISSING})
    negative_prompt = fields.String(load_default="", validate=validate.Length(max=rules.PROMPT_MAX,
                                                                              error=rules.NEGATIVE_TOO_LONG))
    model = fields.String(load_default=None, metadata={"description": "a catalog name (GET /api/v1/models)"})
    width = fields.Integer(load_default=None, strict=True)
    height = fields.Integer(load_default=None, strict=True)
    steps = fields.Integer(load_default=None, strict=True)
    guidance = AsciiFloat(load_default=None, allow_nan=False)
    seed = fields.Integer(load_default=None, allow_none=True, strict=True,
                          validate=validate.Range(0, MAX_SEED, error=rules.SEED_OUT_OF_RANGE))
    num_images = fields.Integer(load_default=1, strict=True,
                                validate=validate.Range(1, rules.IMAGES_MAX, error=rules.IMAGES_OUT_OF_RANGE))
    style = fields.String(load_default="none", validate=validate.Length(max=32, error=rules.STYLE_UNKNOWN),
                          metadata={"description": f"a bundled style ({', '.join(STYLES)}) or a saved one, by name"})
    loras = lora_picks()
    scheduler = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40), metadata={
        "description": f"the sampler, by its AUTOMATIC1111 name ({', '.join(SAMPLERS)}); left out, null or \"\": "
                       "the model's own scheduler"})
    hires = fields.Nested(HiresSchema, load_default=None, allow_none=True)
    variants = fields.String(load_default="random", validate=validate.OneOf(VARIANTS, error=rules.VARIANTS_UNKNOWN),
                             metadata={"description": "random: each image picks its {a|b} and __list__ choices from "
                                                      "its seed; all: one image per combination (num_images ignored)"})
    control_image = fields.String(load_default=None, metadata={
        "description": "a control image, base64 (PNG, JPEG or WebP; a data: URL is fine) — docs/controls.md"})
    control = control_fields()["control"]
    control_scale = control_fields()["control_scale"]
    control_preprocessor = control_fields()["control_preprocessor"]


class GenerationFromImageSchema(GenerationCreateSchema):
    """``multipart/form-data``: the same fields (as text), plus how far to move from the starting image."""

    class Meta:
        exclude = ("hires",)

    width = AsciiInteger(load_default=None)
    height = AsciiInteger(load_default=None)
    steps = AsciiInteger(load_default=None)
    seed = AsciiInteger(load_default=None, allow_none=True,
                          validate=validate.Range(0, MAX_SEED, error=rules.SEED_OUT_OF_RANGE))
    num_images = AsciiInteger(load_default=1,
                                validate=validate.Range(1, rules.IMAGES_MAX, error=rules.IMAGES_OUT_OF_RANGE))
    strength = AsciiFloat(load_default=DEFAULT_STRENGTH, allow_nan=False,
                            validate=validate.Range(rules.MIN_STRENGTH, rules.MAX_STRENGTH,
                                                    error=rules.STRENGTH_OUT_OF_RANGE))
    resize_mode = fields.String(load_default="crop", validate=validate.OneOf(list(RESIZE_MODES)),
                                metadata={"description": "crop (fill) or fit (bars) to the model's size"})
    init_image = Upload(load_default=None, metadata={"description": "the starting picture: PNG, JPEG or WebP "
                                                                    "(or init_image_id)"})
    init_image_id = fields.String(load_default=None, metadata={
        "description": "instead of init_image: an image I may see (mine, or a public one) as the starting picture"})
    loras = lora_picks(JsonPartList, "; in this multipart body, one part of JSON text")
    mask = Upload(load_default=None, metadata={
        "description": "inpainting: white repaints, black keeps (PNG, JPEG or WebP, resized to the starting picture); "
                       "outside the mask every pixel stays the original's"})
    mask_blur = AsciiInteger(load_default=DEFAULT_MASK_BLUR, validate=validate.Range(
        0, MAX_MASK_BLUR, error=MASK_BLUR_OUT_OF_RANGE), metadata={"description": "pixels the mask's edge is softened"})
    inpaint_area = fields.String(load_default="whole", validate=validate.OneOf(INPAINT_AREAS), metadata={
        "description": "whole: the model sees the whole picture; masked: only the masked area, cropped with padding "
                       "and pasted back"})
    control_image = Upload(load_default=None, metadata={"description": "a control image: PNG, JPEG or WebP"})


class GenerationWithControlSchema(GenerationFromImageSchema):
    """``multipart/form-data``: a generation steered by a control image, from text or from a starting image."""

    init_image = Upload(load_default=None, metadata={"description": "a starting picture (optional)"})
    control_image = Upload(required=True, metadata={"description": "the control image: PNG, JPEG or WebP"})


class ControlSchema(Schema):
    """A control model of the catalog."""

    name = fields.String(required=True)
    label = fields.String(required=True)
    type = fields.String(required=True, metadata={"description": "controlnet or t2i-adapter"})
    base_kinds = fields.List(fields.String(), required=True)
    models = fields.List(fields.String(), required=True, metadata={"description": "the catalog models it fits"})
    preprocessor = fields.String(required=True, metadata={"description": "what its control images want"})
    default_scale = fields.Float(required=True)
    description = fields.String(required=True)
    available = fields.Boolean(required=True)
    unavailable_reason = fields.String(allow_none=True, required=True)


class ImageSchema(Schema):
    """One image."""

    id = fields.String(required=True)
    generation_id = fields.String(required=True)
    index = fields.Integer(required=True)
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    prompt = fields.String(required=True, metadata={"description": "the prompt this very image was made from "
                                                                   "(wildcard picks filled in)"})
    seed = fields.Integer(required=True, metadata={"description": "the seed of this very image"})
    starred = fields.Boolean(required=True)
    public = fields.Boolean(required=True)
    hidden = fields.Boolean(required=True)
    held = fields.Boolean(required=True, metadata={"description": "held by the safety check until released"})
    held_reason = fields.String(allow_none=True, metadata={"description": "why it is held"})
    created_at = fields.AwareDateTime(required=True)
    download_url = fields.String(required=True)


class AppliedLoraSchema(Schema):
    """A LoRA a generation applies, at the scale it applies it."""

    name = fields.String(required=True)
    scale = fields.Float(required=True)


class GenerationSchema(Schema):
    """A generation: its parameters, where it is, and its images once done."""

    id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf([s.value for s in GenerationStatus]))
    prompt = fields.String(required=True)
    negative_prompt = fields.String(required=True)
    model = fields.String(required=True)
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    steps = fields.Integer(required=True)
    guidance = fields.Float(required=True)
    seed = fields.Integer(required=True)
    num_images = fields.Integer(required=True)
    style = fields.String(required=True)
    scheduler = fields.String(allow_none=True, required=True,
                              metadata={"description": "the sampler chosen; null: the model's own scheduler"})
    loras = fields.List(fields.Nested(AppliedLoraSchema), required=True)
    created_at = fields.AwareDateTime(required=True)
    queue_position = fields.Integer(allow_none=True, required=True, metadata={"description": "1 = next to run"})
    step = fields.Integer(required=True)
    total_steps = fields.Integer(required=True)
    eta_seconds = fields.Float(allow_none=True, required=True)
    preview_url = fields.String(allow_none=True, required=True)
    images = fields.List(fields.Nested(ImageSchema), required=True)
    error = fields.String(allow_none=True, required=True)


class PageQuerySchema(Schema):
    """``?page=&per_page=``."""

    page = AsciiInteger(load_default=1, validate=validate.Range(1, 10_000))
    per_page = AsciiInteger(load_default=20, validate=validate.Range(1, 100))


class GenerationListQuerySchema(PageQuerySchema):
    """Filter my generations by status."""

    status = fields.String(load_default=None, validate=validate.OneOf([s.value for s in GenerationStatus]))


class ImageListQuerySchema(PageQuerySchema):
    """Search my images by prompt words."""

    q = fields.String(load_default="", validate=validate.Length(max=200),
                      metadata={"description": "words that must all appear in the prompt"})
    starred = fields.Boolean(load_default=None)


class PageSchema(Schema):
    """Where a page sits in the whole list."""

    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)
    pages = fields.Integer(required=True)


class GenerationPageSchema(PageSchema):
    """One page of generations, newest first."""

    items = fields.List(fields.Nested(GenerationSchema), required=True)


class ImagePageSchema(PageSchema):
    """One page of images, newest first."""

    items = fields.List(fields.Nested(ImageSchema), required=True)


class ImageUpdateSchema(Schema):
    """Star or publish (either or both)."""

    starred = fields.Boolean()
    public = fields.Boolean()


class ModelSchema(Schema):
    """A model this site lists, its defaults and limits, and whether it can run here."""

    name = fields.String(required=True)
    label = fields.String(required=True)
    description = fields.String(required=True)
    available = fields.Boolean(required=True)
    unavailable_reason = fields.String(allow_none=True, required=True)
    default = fields.Boolean(required=True, metadata={"description": "the site's default model"})
    default_width = fields.Integer(required=True)
    default_height = fields.Integer(required=True)
    default_steps = fields.Integer(required=True)
    default_guidance = fields.Float(required=True)
    sizes = fields.List(fields.List(fields.Integer()), required=True, metadata={"description": "[width, height] pairs"})
    min_steps = fields.Integer(required=True)
    max_steps = fields.Integer(required=True)
    max_guidance = fields.Float(required=True)
    max_images = fields.Integer(required=True)


class LoraSchema(Schema):
    """A LoRA this site lists: what it fits, its defaults, and whether it can be used here."""

    name = fields.String(required=True)
    label = fields.String(required=True)
    description = fields.String(required=True)
    base_kinds = fields.List(fields.String(), required=True, metadata={"description": "model kinds it is made for"})
    models = fields.List(fields.String(), required=True, metadata={"description": "the listed models it fits"})
    default_scale = fields.Float(required=True)
    trigger_words = fields.List(fields.String(), required=True,
                                metadata={"description": "added to the prompt when it does not hold them"})
    default_steps = fields.Integer(allow_none=True, required=True)
    min_steps = fields.Integer(allow_none=True, required=True)
    max_steps = fields.Integer(allow_none=True, required=True)
    default_guidance = fields.Float(allow_none=True, required=True)
    available = fields.Boolean(required=True)
    unavailable_reason = fields.String(allow_none=True, required=True)


class VariationCreateSchema(Schema):
    """New images from an image: its prompt and settings, new seeds."""

    num_images = fields.Integer(load_default=2, strict=True,
                                validate=validate.Range(1, rules.IMAGES_MAX, error=rules.IMAGES_OUT_OF_RANGE))
    strength = fields.Float(load_default=None, allow_nan=False,
                            validate=validate.Range(rules.MIN_STRENGTH, rules.MAX_STRENGTH,
                                                    error=rules.STRENGTH_OUT_OF_RANGE),
                            metadata={"description": "how far they may move from the image (default 0.35)"})


class HiresCreateSchema(Schema):
    """The hires fix's second pass of an image already made: enlarged, then image-to-image at the larger size."""

    scale = fields.Float(load_default=2.0, allow_nan=False, validate=validate.Range(1, 4, min_inclusive=False, error=(
        "Use a hires scale above 1 and at most 4.")), metadata={
        "description": "the larger size (image × scale) must be one the image's model makes"})
    strength = fields.Float(load_default=0.4, allow_nan=False, validate=validate.Range(
        0.05, 1, error="Use a hires strength from 0.05 to 1."), metadata={"description": "default 0.4"})


def _side(name: str) -> fields.Float:
    return fields.Float(load_default=0.0, allow_nan=False, validate=validate.Range(0, 8192), metadata={
        "description": f"how far to extend the {name} side: pixels, or below 1 a fraction of the picture"})


class OutpaintCreateSchema(Schema):
    """The picture continued beyond its border: pixels (or, below 1, fractions of the picture) added on each side;
    the result is scaled to a size the model makes, the old part kept and the new border painted."""

    left, right, top, bottom = _side("left"), _side("right"), _side("top"), _side("bottom")


class UpscalerSchema(Schema):
    """An upscaler the catalog lists."""

    name = fields.String(required=True)
    label = fields.String(required=True)
    scale = fields.Integer(required=True)
    description = fields.String(required=True)
    available = fields.Boolean(required=True)
    unavailable_reason = fields.String(allow_none=True, required=True)


class UpscaleCreateSchema(Schema):
    """A larger copy of an image, made by an upscaler (GET /api/v1/upscalers lists them)."""

    factor = fields.Integer(required=True, strict=True, validate=validate.OneOf(FACTORS, error="Choose 2 or 4."))
    upscaler = fields.String(load_default=LANCZOS, validate=validate.Length(max=64))
