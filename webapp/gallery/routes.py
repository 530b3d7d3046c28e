"""Gallery routes: list, detail, files, star, publish, delete."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select

from ..access import can_view_image, owned_image_or_404, viewable_image_or_404
from ..derived_images import VARIATION_STRENGTH, upscaler_menu
from ..extensions import db
from ..image_files import delete_image, download_name, expires_at, serve_file
from ..lineage import SOURCE_LABELS, children_of, parent_of
from ..styles import STYLES
from ..tables import Image
from .changes import PublishRefused, set_public, set_starred

bp = Blueprint("gallery", __name__)

PER_PAGE = 24


def _page_number() -> int:
    try:
        return max(1, min(10_000, int(request.args.get("page", 1))))
    except ValueError:
        return 1


@bp.get("/gallery")
@login_required
def mine():
    """The signed-in person's images, newest first."""
    query = select(Image).where(Image.user_id == current_user.id).order_by(Image.created_at.desc(), Image.index)
    page = db.paginate(query, page=_page_number(), per_page=PER_PAGE, error_out=False)
    return render_template("gallery/index.html", page=page, title="My gallery", endpoint="gallery.mine",
                           expires_at=expires_at)


@bp.get("/images/<image_id>")
@login_required
def image_detail(image_id: str):
    """The image with all its parameters, and the owner's actions."""
    image = viewable_image_or_404(image_id)
    generation = image.generation
    parent = parent_of(image)
    return render_template("gallery/image.html", image=image, generation=generation, style=STYLES.get(generation.style),
                           expires_at=expires_at(image), is_owner=image.user_id == current_user.id,
                           form=FlaskForm(), parent=parent if parent and can_view_image(parent) else None,
                           children=children_of(image, current_user), source_label=SOURCE_LABELS.get(generation.source),
                           upscalers=upscaler_menu(), variation_strength=VARIATION_STRENGTH)


@bp.get("/images/<image_id>/file")
@login_required
def image_file(image_id: str):
    """The PNG, after the access check (``?download=1`` for an attachment)."""
    image = viewable_image_or_404(image_id)
    name = download_name(image, image.generation) if request.args.get("download") else None
    return serve_file(image.storage_key, "image/png", name)


@bp.get("/images/<image_id>/thumbnail")
@login_required
def image_thumbnail(image_id: str):
    """The WebP thumbnail, after the access check."""
    image = viewable_image_or_404(image_id)
    return serve_file(image.thumbnail_key, "image/webp")


@bp.get("/images/<image_id>/timelapse")
@login_required
def image_timelapse(image_id: str):
    """The animated WebP of the picture forming, after the same access check as the image."""
    image = viewable_image_or_404(image_id)
    if not image.timelapse_key:
        abort(404)
    return serve_file(image.timelapse_key, "image/webp")


def _owner_action(image_id: str) -> Image:
    image = owned_image_or_404(image_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    return image


@bp.post("/images/<image_id>/star")
@login_required
def star(image_id: str):
    """Star or unstar: starred images are kept from cleanup."""
    image = _owner_action(image_id)
    set_starred(image, not image.is_starred)
    flash("Starred: this image is kept." if image.is_starred else "Unstarred.", "success")
    return redirect(url_for("gallery.image_detail", image_id=image.id), 303)


@bp.post("/images/<image_id>/publish")
@login_required
def publish(image_id: str):
    """Publish to Explore, or take back."""
    image = _owner_action(image_id)
    try:
        set_public(image, not image.is_public)
    except PublishRefused as exc:
        flash(str(exc), "danger")
    else:
        flash("Published to Explore." if image.is_public else "No longer public.", "success")
    return redirect(url_for("gallery.image_detail", image_id=image.id), 303)


@bp.post("/images/<image_id>/delete")
@login_required
def delete(image_id: str):
    """Delete the image's files and row."""
    image = _owner_action(image_id)
    delete_image(image)
    flash("The image is deleted.", "success")
    return redirect(url_for("gallery.mine"), 303)
