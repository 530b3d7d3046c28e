"""Forms of the group pages: a group's settings, adding a person."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, FloatField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, Optional

from ..tables import Group
from .storage import human_size
from .store import CHOICE_KINDS, NUMBERS

CLASSIFIER_CHOICES = [SelectChoice("", "The site's setting"), SelectChoice("on", "On"), SelectChoice("off", "Off")]


class GroupSettingsForm(FlaskForm):
    """A group's settings; an empty field is the site's (or, for the lists, every one the site offers)."""

    daily_images = IntegerField("Images a day", validators=[Optional()])
    max_active = IntegerField("Generations at once", validators=[Optional()])
    max_queued = IntegerField("Generations waiting", validators=[Optional()])
    queue_weight = FloatField("Queue weight", validators=[Optional()])
    models = StringField("Models", validators=[Optional(), Length(max=2000)])
    loras = StringField("LoRAs", validators=[Optional(), Length(max=2000)])
    upscalers = StringField("Upscalers", validators=[Optional(), Length(max=2000)])
    storage_quota = StringField("Storage quota (500MB, 2GB)", validators=[Optional(), Length(max=32)])
    prompt_classifier = SelectField("Prompt classifier", choices=CLASSIFIER_CHOICES, default="")

    def settings(self) -> dict:
        """The fields as ``webapp.groups.store`` settings."""
        found: dict = {name: getattr(self, name).data for name in (*NUMBERS, "queue_weight")}
        for kind in CHOICE_KINDS:
            raw = (getattr(self, kind).data or "").strip()
            found[kind] = [name for name in raw.split(",") if name.strip()] if raw else None
        found["storage_quota"] = (self.storage_quota.data or "").strip() or None
        found["prompt_classifier"] = {"on": True, "off": False}.get(self.prompt_classifier.data)
        return found

    def fill(self, group: Group) -> None:
        """Show the group's settings."""
        for name in (*NUMBERS, "queue_weight"):
            getattr(self, name).data = getattr(group, name)
        for kind in CHOICE_KINDS:
            names = getattr(group, kind)
            getattr(self, kind).data = ",".join(names) if names is not None else ""
        quota = group.storage_quota
        self.storage_quota.data = human_size(quota).replace(" ", "") if quota is not None else ""
        self.prompt_classifier.data = {True: "on", False: "off"}.get(group.prompt_classifier, "")


class NewGroupForm(GroupSettingsForm):
    """A new group: its name and settings."""

    name = StringField("Name", validators=[DataRequired("Give the group a name."), Length(max=64)])


class MemberForm(FlaskForm):
    """Add a person by email, as a member or a manager."""

    email = StringField("Email", validators=[DataRequired("Type the person's email."),
                                             Email("Type an email address.", check_deliverability=False), Length(max=254)])
    manager = BooleanField("Manager (sees the group's members, usage and pictures)")
