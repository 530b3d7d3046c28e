"""The prompt form; limits come from the chosen model's catalog entry."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import FloatField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from models.catalog import ModelEntry

from .. import generation_rules as rules
from ..styles import STYLES


def model_choices(catalog: dict[str, ModelEntry]) -> list[SelectChoice]:
    """The model menu; unavailable models are listed, greyed out, with the reason."""
    return [SelectChoice(name, entry.label if not entry.unavailable_reason() else f"{entry.label} (unavailable)",
                         render_kw={"disabled": True} if entry.unavailable_reason() else {})
            for name, entry in catalog.items()]


class GenerationForm(FlaskForm):
    """Fields of ``POST /generations``; the limits are ``generation_rules``' (the APIs use the same)."""

    prompt = TextAreaField("Prompt", validators=[DataRequired("Describe the picture you want.")])
    negative_prompt = TextAreaField("Negative prompt", validators=[Optional()])
    model = SelectField("Model", validate_choice=False)
    width = IntegerField("Width", validators=[InputRequired("Choose a size.")])
    height = IntegerField("Height", validators=[InputRequired("Choose a size.")])
    steps = IntegerField("Steps", validators=[InputRequired("Choose the number of steps.")])
    guidance = FloatField("Guidance", validators=[InputRequired("Choose the guidance scale.")])
    seed = StringField("Seed", validators=[Optional(), Length(max=12, message="Use a whole number.")])
    num_images = IntegerField("Images", validators=[InputRequired("Choose how many images.")])
    style = SelectField("Style", choices=[SelectChoice(s.name, s.label) for s in STYLES.values()],
                        validate_choice=False, default="none")

    def __init__(self, catalog: dict[str, ModelEntry], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.catalog = catalog
        self.model.choices = model_choices(catalog)

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

    def validate_model(self, field: SelectField) -> None:
        self._raise(rules.model_problem(self.catalog, field.data))

    def validate_width(self, field: IntegerField) -> None:
        if self.entry and field.data is not None and self.height.data is not None:
            self._raise(rules.size_problem(self.entry, field.data, self.height.data))

    def validate_steps(self, field: IntegerField) -> None:
        if self.entry and field.data is not None:
            self._raise(rules.steps_problem(self.entry, field.data))

    def validate_guidance(self, field: FloatField) -> None:
        if self.entry and field.data is not None:
            self._raise(rules.guidance_problem(self.entry, field.data))

    def validate_num_images(self, field: IntegerField) -> None:
        if field.data is not None:
            self._raise(rules.num_images_problem(self.entry, field.data))

    def validate_style(self, field: SelectField) -> None:
        self._raise(rules.style_problem(field.data))

    def validate_seed(self, field: StringField) -> None:
        raw = (field.data or "").strip()
        if raw and not raw.isdigit():
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
        }

    def fill_defaults(self, entry: ModelEntry) -> None:
        """Pre-fill the fields a person did not set with the model's defaults."""
        self.model.data = entry.name
        self.width.data = self.width.data or entry.default_width
        self.height.data = self.height.data or entry.default_height
        self.steps.data = self.steps.data or entry.default_steps
        self.guidance.data = entry.default_guidance if self.guidance.data is None else self.guidance.data
        self.num_images.data = self.num_images.data or 1
