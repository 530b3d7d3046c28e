"""The prompt form; limits come from the chosen model's catalog entry."""
from __future__ import annotations

from flask import current_app
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError

from models.capabilities import pipeline_capabilities
from models.catalog import LoraEntry, ModelEntry
from models.lora import MAX_LORAS
from models.samplers import MODEL_DEFAULT, SAMPLERS

from .. import editing
from .. import generation_rules as rules
from ..controls import offered_preprocessors
from ..inputs import AsciiFloatField, AsciiIntegerField
from ..styles import STYLES
from ..tables import DEFAULT_STRENGTH
from ..uploads import RESIZE_MODES, UploadRejected, decode_upload

# Kept importable from here for the image-page forms (studio/derived.py) and routes.
MIN_STRENGTH, MAX_STRENGTH = rules.MIN_STRENGTH, rules.MAX_STRENGTH
GUIDANCE_NOT_A_NUMBER = "Use a number for the guidance, like 7.5."


def model_choices(catalog: dict[str, ModelEntry]) -> list[SelectChoice]:
    """The model menu; unavailable models are listed, greyed out, with the reason."""
    return [SelectChoice(name, entry.label if not entry.unavailable_reason() else f"{entry.label} (unavailable)",
                         render_kw={"disabled": True} if entry.unavailable_reason() else {})
            for name, entry in catalog.items()]


def lora_choices(loras: dict[str, LoraEntry]) -> list[SelectChoice]:
    """The LoRA menu: none, then every catalog LoRA (unavailable ones greyed out)."""
    return [SelectChoice("", "None")] + [
        SelectChoice(name, lora.label if not lora.unavailable_reason() else f"{lora.label} (unavailable)",
                     render_kw={"disabled": True} if lora.unavailable_reason() else {})
        for name, lora in loras.items()]


class LoraPick(Form):
    """One LoRA: a catalog name (blank: none) and its scale (blank: the catalog's default)."""

    name = SelectField("LoRA", validate_choice=False)
    scale = AsciiFloatField("Scale", validators=[Optional(), NumberRange(rules.MIN_LORA_SCALE, rules.MAX_LORA_SCALE,
                                                                    rules.LORA_SCALE_OUT_OF_RANGE)])


class GenerationForm(FlaskForm):
    """Fields of ``POST /generations``; the limits are ``generation_rules``' (the APIs use the same)."""

    prompt = TextAreaField("Prompt", validators=[DataRequired("Describe the picture you want.")])
    negative_prompt = TextAreaField("Negative prompt", validators=[Optional()])
    model = SelectField("Model", validate_choice=False)
    width = AsciiIntegerField("Width", validators=[InputRequired("Choose a size.")])
    height = AsciiIntegerField("Height", validators=[InputRequired("Choose a size.")])
    steps = AsciiIntegerField("Steps", validators=[InputRequired("Choose the number of steps.")])
    guidance = AsciiFloatField("Guidance", invalid_value_message=GUIDANCE_NOT_A_NUMBER,
                               validators=[InputRequired("Choose the guidance scale.")])
    seed = StringField("Seed", validators=[Optional(), Length(max=12, message="Use a whole number.")])
    num_images = AsciiIntegerField("Images", validators=[InputRequired("Choose how many images.")])
    style = SelectField("Style", choices=[SelectChoice(s.name, s.label) for s in STYLES.values()],
                        validate_choice=False, default="none")
    init_image = FileField("Starting image (optional)")
    init_image_id = HiddenField()
    upload_id = HiddenField()
    strength = AsciiFloatField("Strength", default=DEFAULT_STRENGTH, validators=[Optional()])
    resize_mode = SelectField("Resize the starting image", default="crop",
                              choices=[SelectChoice(mode, label) for mode, label in RESIZE_MODES.items()])
    timelapse = BooleanField("Make a timelapse")
    # inpainting (webapp/editing.py): white in the mask = repaint; ``mask_from`` reuses a generation's stored mask
    mask = FileField("Mask (optional: white = repaint)")
    mask_from = HiddenField()
    mask_blur = AsciiIntegerField("Mask blur (pixels)", default=editing.DEFAULT_MASK_BLUR, validators=[
        Optional(), NumberRange(0, editing.MAX_MASK_BLUR, editing.MASK_BLUR_OUT_OF_RANGE)])
    inpaint_area = SelectField("Inpaint area", default="whole", choices=[
        SelectChoice("whole", "Whole picture"), SelectChoice("masked", "Only the masked area")])
    # hires fix (webapp/editing.py): the picture at this size, enlarged, then refined at the larger size
    hires = BooleanField("Hires fix: make it, enlarge it, refine it")
    hr_scale = AsciiFloatField("Hires scale", default=editing.DEFAULT_HR_SCALE, validators=[Optional()])
    hr_upscaler = SelectField("Hires upscaler", default="lanczos", choices=[
        SelectChoice(name, name.capitalize()) for name in ("lanczos", "bicubic", "bilinear", "nearest")])
    hr_strength = AsciiFloatField("Hires strength", default=editing.DEFAULT_HR_STRENGTH, validators=[Optional()])
    hr_steps = AsciiIntegerField("Second-pass steps (0: as many as the first)", default=0, validators=[Optional()])
    scheduler = SelectField("Sampler", default="", validate_choice=False, choices=[SelectChoice("", MODEL_DEFAULT)]
                            + [SelectChoice(name, name) for name in SAMPLERS])
    variants = SelectField("Choices like {red|blue}", default="random", choices=[
        SelectChoice("random", "Pick by each image's seed"), SelectChoice("all", "One image per combination")])
    loras = FieldList(FormField(LoraPick), min_entries=MAX_LORAS, max_entries=MAX_LORAS)
    # A control image (webapp/controls.py): an upload or a drawn scribble, or one a reused generation stored
    control_image = FileField("Control image (optional)")
    control_from = HiddenField()
    control = SelectField("Control", validate_choice=False)  # the control model ("Model" would be ambiguous)
    control_scale = AsciiFloatField("Control scale", validators=[Optional()])
    control_preprocessor = SelectField("Preprocessor", default="", validate_choice=False)  # choices: __init__

    def __init__(self, catalog: dict[str, ModelEntry], *args, lora_catalog: dict[str, LoraEntry] | None = None,
                 **kwargs):
        self.catalog = catalog
        self.lora_catalog = lora_catalog or {}
        super().__init__(*args, **kwargs)
        self.model.choices = model_choices(catalog)
        self.control_preprocessor.choices = [SelectChoice("", "The control model's own")] + [
            SelectChoice(name, name) for name in offered_preprocessors()]  # depth only where installed
        self.upload_picture = None  # the decoded upload, set by validate_init_image
        self.mask_picture = None  # the decoded mask, set by validate_mask
        self.control_picture = None  # the decoded control image, set by validate_control_image

    @property
    def has_start(self) -> bool:
        """True when the person chose a starting image (an upload, an image, or a remixed upload)."""
        return bool(self.upload_picture is not None or self.init_image_id.data or self.upload_id.data)

    def validate_init_image(self, field: FileField) -> None:
        storage = field.data
        if storage is None or not getattr(storage, "filename", None):
            return
        if self.init_image_id.data or self.upload_id.data:
            raise ValidationError("Choose one starting image: upload a file or use an image, not both.")
        try:
            self.upload_picture = decode_upload(storage.read(), current_app.config["MAX_UPLOAD_PIXELS"])
        except UploadRejected as exc:
            raise ValidationError(str(exc)) from None

    def validate_mask(self, field: FileField) -> None:
        storage = field.data
        if storage is None or not getattr(storage, "filename", None):
            return
        if not self.has_start:
            raise ValidationError("A mask marks what to repaint in a starting image: choose one too.")
        try:
            self.mask_picture = editing.decode_mask(storage.read(), current_app.config["MAX_UPLOAD_PIXELS"])
        except UploadRejected as exc:
            raise ValidationError(str(exc)) from None

    def validate_control_image(self, field: FileField) -> None:
        storage = field.data
        if storage is None or not getattr(storage, "filename", None):
            return
        try:
            self.control_picture = decode_upload(storage.read(), current_app.config["MAX_UPLOAD_PIXELS"])
        except UploadRejected as exc:
            raise ValidationError(str(exc)) from None

    def validate_strength(self, field: AsciiFloatField) -> None:
        if not self.has_start or field.data is None or self.steps.data is None:
            return
        self._raise(rules.strength_problem(field.data, self.steps.data))

    def process(self, *args, **kwargs) -> None:
        """Process as usual, then give the LoRA menus their choices (processing rebuilds the list's entries)."""
        super().process(*args, **kwargs)
        for pick in self.loras:
            pick.form.name.choices = lora_choices(self.lora_catalog)

    def lora_picks(self) -> list[tuple[str, float | None]]:
        """The menus set to a LoRA, as (name, scale) with None where the scale was left blank."""
        return [(pick.form.name.data, pick.form.scale.data) for pick in self.loras if pick.form.name.data]

    def chosen_loras(self) -> list[tuple[LoraEntry, float]]:
        """The LoRAs picked, with their scales (the catalog default where left blank); unknown names skipped."""
        return rules.chosen_loras(self.lora_catalog, self.lora_picks())

    def validate_loras(self, field: FieldList) -> None:
        if any(pick.errors for pick in field):  # a scale out of range is shown beside it; the rest can wait
            return
        self._raise(rules.loras_problem(self.lora_catalog, self.entry, self.lora_picks()))

    @property
    def entry(self) -> ModelEntry | None:
        return self.catalog.get(self.model.data or "")

    @staticmethod
    def _raise(problem: str | None) -> None:
        if problem:
            raise ValidationError(problem)

    def validate_prompt(self, field: TextAreaField) -> None:
        self._raise(rules.prompt_problem(field.data))

    def validate_negative_prompt(self, field: TextAreaField) -> None:
        self._raise(rules.negative_prompt_problem(field.data))
        entry = self.entry
        if entry and (field.data or "").strip() and not pipeline_capabilities(entry).negative_prompt:
            raise ValidationError(f"{entry.label} takes no negative prompt; leave it empty.")

    def validate_model(self, field: SelectField) -> None:
        self._raise(rules.model_problem(self.catalog, field.data))

    def validate_width(self, field: AsciiIntegerField) -> None:
        if self.entry and field.data is not None and self.height.data is not None:
            self._raise(rules.size_problem(self.entry, field.data, self.height.data))

    def validate_steps(self, field: AsciiIntegerField) -> None:
        if self.entry and field.data is not None:
            self._raise(rules.steps_problem(self.entry, field.data, self.chosen_loras()))

    def validate_guidance(self, field: AsciiFloatField) -> None:
        if self.entry and field.data is not None:
            self._raise(rules.guidance_problem(self.entry, field.data))

    def validate_num_images(self, field: AsciiIntegerField) -> None:
        if field.data is not None:
            self._raise(rules.num_images_problem(self.entry, field.data))

    def validate_style(self, field: SelectField) -> None:
        self._raise(rules.style_problem(field.data))

    def validate_scheduler(self, field: SelectField) -> None:
        self._raise(rules.scheduler_problem(self.entry, field.data, self.chosen_loras()))

    def validate_seed(self, field: StringField) -> None:
        raw = (field.data or "").strip()
        # ASCII digits only: str.isdigit() also takes "²" (which int() refuses) and "٣" or "１２" (which it reads).
        if raw and not (raw.isascii() and raw.isdigit()):
            self._raise(rules.seed_problem(-1))
        self._raise(rules.seed_problem(int(raw)) if raw else None)

    def params(self) -> dict:
        """The validated values as ``Generation`` columns (seed None = pick one)."""
        seed = (self.seed.data or "").strip()
        return {
            "prompt": self.prompt.data.strip(),
            "negative_prompt": (self.negative_prompt.data or "").strip(),
            "model": self.model.data,
            "width": self.width.data,
            "height": self.height.data,
            "steps": self.steps.data,
            "guidance": float(self.guidance.data),
            "seed": int(seed) if seed else None,
            "num_images": self.num_images.data,
            "style": self.style.data,
            "timelapse": bool(self.timelapse.data),
            "loras": [[lora.name, scale] for lora, scale in self.chosen_loras()] or None,
            "variants": self.variants.data or "random",
            "scheduler": self.scheduler.data or None,
        }

    def start_params(self) -> dict:
        """Columns for a starting image (strength, resize mode); empty for text-to-image."""
        if not self.has_start:
            return {}
        strength = DEFAULT_STRENGTH if self.strength.data is None else float(self.strength.data)
        return {"strength": strength, "resize_mode": self.resize_mode.data or "crop"}

    def fill_defaults(self, entry: ModelEntry) -> None:
        """Pre-fill the fields a person did not set with the model's defaults."""
        self.model.data = entry.name
        self.width.data = self.width.data or entry.default_width
        self.height.data = self.height.data or entry.default_height
        self.steps.data = self.steps.data or entry.default_steps
        self.guidance.data = entry.default_guidance if self.guidance.data is None else self.guidance.data
        self.num_images.data = self.num_images.data or 1
