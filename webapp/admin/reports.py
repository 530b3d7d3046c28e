"""Admin moderation queue: open reports with their image; resolve by hiding, deleting or dismissing."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for

from ..extensions import db
from ..moderation.reports import REPORT_REASONS, moderation_queue
from ..moderation.review import Resolution, resolve_reports
from ..tables import Image
from .base import acting_admin, bp
from .forms import ResolveForm

DONE = {Resolution.HIDE: "hidden", Resolution.DELETE: "deleted", Resolution.DISMISS: "left as it is"}


@bp.get("/reports")
def reports():
    """Images with open reports, longest waiting first."""
    return render_template("admin/reports.html", queue=moderation_queue(), reasons=REPORT_REASONS, form=ResolveForm())


@bp.post("/reports/<image_id>")
def resolve(image_id: str):
    """Resolve every open report on one image."""
    image = db.session.get(Image, image_id) if len(image_id) == 36 else None
    if image is None:
        abort(404)
    form = ResolveForm()
    if not form.validate_on_submit():
        abort(400)
    resolution = Resolution(form.resolution.data)
    count = resolve_reports(acting_admin(), image, resolution)
    flash(f"Resolved {count} report(s): the image is {DONE[resolution]}.", "success")
    return redirect(url_for("admin.reports"), 303)
