"""The wildcard list form (the site's on the admin page, a person's on their own)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from .wildcards import MAX_VALUE_LENGTH, MAX_VALUES


class WildcardForm(FlaskForm):
    """A list's name (``__name__`` in prompts) and its entries, one a line."""

    name = StringField("Name", validators=[DataRequired("Name the list."), Length(max=64)])
    values = TextAreaField("Entries, one a line", validators=[
        DataRequired("Write at least one entry, one a line."),
        Length(max=MAX_VALUES * (MAX_VALUE_LENGTH + 1), message="That is more than a list may hold.")])


class DeleteForm(FlaskForm):
    """Only the CSRF token."""
