"""Many of my images at once: star, publish, delete, or download as one ZIP.

Ids that are not the signed-in person's own are ignored, as if they were not sent: nobody acts on,
or learns about, another person's images here (admins moderate from /admin).
"""
from __future__ import annotations

from flask import Response, abort, flash, redirect, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.fields.choices import SelectChoice

from .. import services
from ..access import own_images
from ..auth.session import safe_next
from ..extensions import db
from ..image_files import delete_image
from ..tables import Image, utcnow
from .routes import bp
from .zip_export import stream_zip, zip_entries

ACTIONS = {"star": "Starred", "unstar": "Unstarred", "publish": "Published", "unpublish": "Unpublished",
           "delete": "Deleted"}


class BulkForm(FlaskForm):
    """One action for the ticked images (their ids come as repeated ``image_ids`` fields)."""

    action = SelectField("Action", choices=[SelectChoice(name, name) for name in ACTIONS])


def apply_action(images: list[Image], action: str) -> int:
    """Do ``action`` to each image; returns how many changed (hidden images are never published)."""
    if action == "delete":
        for image in images:
            delete_image(image)
        return len(images)
    changed = 0
    for image in images:
        if action in ("star", "unstar") and image.is_starred != (action == "star"):
            image.is_starred = action == "star"
            changed += 1
        elif action == "publish" and not image.is_public and not image.is_hidden and not image.is_held:
            image.is_public, image.published_at = True, utcnow()
            changed += 1
        elif action == "unpublish" and image.is_public:
            image.is_public, image.published_at = False, None
            changed += 1
    db.session.commit()
    return changed


def back_to_gallery() -> Response:
    """303 to the gallery page the form came from (its filters and page kept)."""
    return redirect(safe_next(request.form.get("next")) or url_for("gallery.mine"), 303)


@bp.post("/gallery/bulk")
@login_required
def bulk():
    """Star, unstar, publish, unpublish or delete the ticked images."""
    form = BulkForm()
    if not form.validate_on_submit():
        abort(400)
    images = own_images(request.form.getlist("image_ids"))
    if not images:
        flash("Tick at least one of your images first.", "warning")
        return back_to_gallery()
    changed = apply_action(images, form.action.data)
    flash(f"{ACTIONS[form.action.data]} {changed} image{'s' if changed != 1 else ''}.", "success")
    if form.action.data == "publish" and changed < len(images):
        flash("Images an admin has hidden cannot be published.", "info")
    return back_to_gallery()


@bp.post("/gallery/download")
@login_required
def download():
    """The ticked images as one ZIP (PNGs + manifest.json), streamed; 404 when none of them is mine."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    images = own_images(request.form.getlist("image_ids"))
    if not images:
        abort(404)
    name = f"easel-{utcnow():%Y%m%d-%H%M%S}-{len(images)}-images.zip"
    response = Response(stream_zip(services.storage(), zip_entries(images)), mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response
