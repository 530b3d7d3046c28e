"""Admin moderation queue: open reports with their image (hide, delete or dismiss), and the pictures the safety
check holds (release or delete)."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from ..extensions import db
from ..moderation.held import describe_findings, held_queue, release
from ..moderation.reports import REPORT_REASONS, moderation_queue
from ..moderation.review import Resolution, delete_images, resolve_reports
from ..tables import Image
from .base import acting_admin, bp
from .forms import ResolveForm

DONE = {Resolution.HIDE: "hidden", Resolution.DELETE: "deleted", Resolution.DISMISS: "left as it is"}


@bp.get("/reports")
def reports():
    """Images with open reports, longest waiting first."""
    return render_template("admin/reports.html", queue=moderation_queue(), reasons=REPORT_REASONS, form=ResolveForm(),
                           held=held_queue(), findings=describe_findings)


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


@bp.post("/held/<image_id>")
def review_held(image_id: str):
    """Release a picture the safety check holds (``decision=release``) or delete it (``decision=delete``); audited."""
    image = db.session.get(Image, image_id) if len(image_id) == 36 else None
    if image is None or not image.is_held:
        abort(404)
    decision = request.form.get("decision")
    if decision == "release":
        release(acting_admin(), image, "as admin")
        flash("Released: its owner may publish and share it.", "success")
    elif decision == "delete":
        delete_images(acting_admin(), [image])
        flash("The held picture is deleted.", "success")
    else:
        abort(400)
    return redirect(url_for("admin.reports"), 303)
