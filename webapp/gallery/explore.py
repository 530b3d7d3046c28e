"""Explore (everyone's published images) and reports on them, on the gallery blueprint."""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import Select, select
from wtforms import SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from ..access import viewable_image_or_404
from ..extensions import db
from ..moderation.reports import DETAILS_MAX, REPORT_REASONS, ReportRefused, file_report
from ..paging import PER_PAGE, page_number
from ..tables import Image, User
from .routes import bp, image_detail


class ReportForm(FlaskForm):
    """Why an image does not belong: a reason from the list, and optional words."""

    reason = SelectField("Reason", choices=[SelectChoice(name, label) for name, label in REPORT_REASONS.items()])
    details = TextAreaField("Details (optional)", validators=[
        Optional(), Length(max=DETAILS_MAX, message=f"Keep it under {DETAILS_MAX} characters.")])


def explore_query() -> Select:
    """Published, not hidden images of accounts in good standing, newest published first."""
    return (select(Image).join(User, Image.user_id == User.id)
            .where(Image.is_public.is_(True), Image.is_hidden.is_(False), Image.is_held.is_(False),
                   User.is_banned.is_(False))
            .order_by(Image.published_at.desc().nulls_last(), Image.created_at.desc(), Image.id))


@bp.get("/explore")
@login_required
def explore():
    """Everyone's published images, with the prompt and the author's name."""
    page = db.paginate(explore_query(), page=page_number(), per_page=PER_PAGE, error_out=False)
    return render_template("gallery/explore.html", page=page, title="Explore", endpoint="gallery.explore",
                           show_author=True)


@bp.context_processor
def report_form() -> dict:
    """The report form for the image page (with its errors after a refused POST)."""
    return {"report_form": g.get("report_form") or ReportForm(formdata=None)}


@bp.post("/images/<image_id>/report")
@login_required
def report(image_id: str):
    """File a report on a public image (one open report per person per image)."""
    image = viewable_image_or_404(image_id)
    if not image.is_public or image.is_hidden:
        abort(404)
    form = ReportForm()
    if not form.validate_on_submit():
        g.report_form = form
        return image_detail(image_id), 400
    try:
        file_report(current_user, image, form.reason.data, form.details.data or "")
    except ReportRefused as exc:
        flash(str(exc), "info")
    else:
        flash("Thank you: the report is sent to the admins.", "success")
    return redirect(url_for("gallery.image_detail", image_id=image.id), 303)
