"""Admin forms: the action buttons and the small inputs behind them."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from ..inputs import AsciiFloatField
from ..moderation.blocked_terms import TERM_MAX
from ..moderation.review import ImageStatus, Resolution
from ..queue_weights import WEIGHT_MAX, WEIGHT_MIN


class ActionForm(FlaskForm):
    """A button that only needs the CSRF token."""


class ResolveForm(FlaskForm):
    """Settle an image's open reports."""

    resolution = SelectField("Resolution", choices=[SelectChoice(r.value, r.value) for r in Resolution])


class BulkImagesForm(FlaskForm):
    """Hide, unhide or delete the ticked images (their ids come as repeated ``image_ids`` fields)."""

    action = SelectField("Action", choices=[SelectChoice("hide", "Hide"), SelectChoice("unhide", "Unhide"),
                                            SelectChoice("delete", "Delete")])


class BanForm(FlaskForm):
    """Ban with an optional reason for the audit log."""

    reason = StringField("Reason", validators=[Optional(), Length(max=200, message="Keep the reason short.")])


class TermForm(FlaskForm):
    """A word or phrase to refuse in prompts."""

    term = StringField("Word or phrase", validators=[
        DataRequired("Type a word or phrase."), Length(max=TERM_MAX, message=f"Keep it under {TERM_MAX} characters.")])


class ImageFilterForm(FlaskForm):
    """The filters of the admin image list (a GET form)."""

    class Meta:
        csrf = False

    user = StringField("Owner", validators=[Optional(), Length(max=254)])
    since = DateField("From", validators=[Optional()])
    until = DateField("To", validators=[Optional()])
    status = SelectField("Status", default="", choices=[
        SelectChoice(ImageStatus.ALL.value, "Any"), SelectChoice(ImageStatus.PUBLIC.value, "Public"),
        SelectChoice(ImageStatus.HIDDEN.value, "Hidden"), SelectChoice(ImageStatus.REPORTED.value, "Reported")])


WEIGHT_MESSAGE = f"A queue weight is a number from {WEIGHT_MIN:g} to {WEIGHT_MAX:g} (1 is everyone's)."


class QueueWeightForm(FlaskForm):
    """One account's share of the generation queue."""

    weight = AsciiFloatField("Queue weight", invalid_value_message=WEIGHT_MESSAGE, validators=[
        InputRequired(WEIGHT_MESSAGE), NumberRange(WEIGHT_MIN, WEIGHT_MAX, WEIGHT_MESSAGE)])

    def problem(self) -> str:
        """The first error, in words (a missing CSRF token is refused by the admin gate before this)."""
        return next((errors[0] for errors in self.errors.values() if errors), "")


class GroupQueueWeightForm(QueueWeightForm):
    """One weight for every account that the users page's search and filter show (echoed as hidden fields)."""

    q = StringField("Search", validators=[Optional(), Length(max=254, message="Keep the search short.")])
    show = SelectField("Show", default="", choices=[SelectChoice("", "Everyone"), SelectChoice("active", "Not banned"),
                                                    SelectChoice("banned", "Banned")])
