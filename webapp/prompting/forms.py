"""The wildcard list and saved style forms (the site's on the admin pages, a person's on their own)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ..inputs import AsciiFloatField, AsciiIntegerField
from .wildcards import MAX_VALUE_LENGTH, MAX_VALUES


class WildcardForm(FlaskForm):
    """A list's name (``__name__`` in prompts) and its entries, one a line."""

    name = StringField("Name", validators=[DataRequired("Name the list."), Length(max=64)])
    values = TextAreaField("Entries, one a line", validators=[
        DataRequired("Write at least one entry, one a line."),
        Length(max=MAX_VALUES * (MAX_VALUE_LENGTH + 1), message="That is more than a list may hold.")])


class DeleteForm(FlaskForm):
    """Only the CSRF token."""


class StyleForm(FlaskForm):
    """A saved style: its name (what ``style`` names), label, prompt template, negative prompt and suggestions."""

    name = StringField("Name", validators=[DataRequired("Name the style."), Length(max=32)])
    label = StringField("Label", validators=[Length(max=64)])
    template = TextAreaField("Prompt", validators=[DataRequired("Write the style's prompt."), Length(max=1000)])
    negative_prompt = TextAreaField("Negative prompt", validators=[Length(max=1000)])
    model = StringField("Suggested model", validators=[Length(max=64)])
    steps = AsciiIntegerField("Suggested steps", validators=[Optional(), NumberRange(1, 1000)])
    guidance = AsciiFloatField("Suggested guidance", validators=[Optional(), NumberRange(0, 50)])
    is_public = BooleanField("Publish to the site (everyone may apply it by name)")

    def fields(self) -> dict:
        """The values for ``webapp.prompting.styles.save_style``."""
        return {"name": self.name.data, "label": self.label.data, "template": self.template.data,
                "negative_prompt": self.negative_prompt.data, "model": (self.model.data or "").strip() or None,
                "steps": self.steps.data, "guidance": self.guidance.data, "is_public": self.is_public.data}
