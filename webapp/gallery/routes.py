"""Gallery routes: list, detail, files, star, publish, revoke emailed links, delete."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import update
from wtforms.fields.choices import SelectChoice

from ..access import can_view_image, owned_image_or_404, viewable_image_or_404
from ..collections.boards import fillable
from ..collections.store import collections_with
from ..derived_images import VARIATION_STRENGTH, upscaler_menu
from ..editing import DEFAULT_HR_STRENGTH, hires_scales
from ..extensions import db
from ..image_files import delete_image, download_name, expiry_notice, serve_file
from ..lineage import SOURCE_LABELS, children_of, parent_of
from ..paging import PER_PAGE, page_number
from ..services import catalog
from ..styles import STYLES
from ..tables import Image, Source
from .changes import PublishRefused, set_public, set_starred
from .search import GalleryFilterForm, gallery_query, models_used

bp = Blueprint("gallery", __name__)

@bp.get("/gallery")
@login_required
def mine():
    """The signed-in person's images: searched, filtered and sorted by the query string, a page at a time."""
    filters = GalleryFilterForm(request.args)
    filters.model.choices = [SelectChoice("", "Any")] + [SelectChoice(m, m) for m in models_used(current_user.id)]
    query = gallery_query(current_user.id, filters.filters())
    page = db.paginate(query, page=page_number(), per_page=PER_PAGE, error_out=False)
    args = {key: value for key, value in request.args.items() if key != "page" and value}
    return render_template("gallery/mine.html", page=page, filters=filters, args=args, expiry_notice=expiry_notice,
                           collections=fillable(current_user), form=FlaskForm())


@bp.get("/images/<image_id>")
@login_required
def image_detail(image_id: str):
    """The image with all its parameters, and the owner's actions."""
    image = viewable_image_or_404(image_id)
    generation = image.generation
    is_owner = image.user_id == current_user.id
    parent = parent_of(image)
    entry = catalog().get(generation.model) if generation.source not in (Source.UPSCALE, Source.GRID) else None
    return render_template("gallery/image.html", image=image, generation=generation, style=STYLES.get(generation.style),
                           expires_at=expiry_notice(image), is_owner=is_owner, form=FlaskForm(),
                           collections=fillable(current_user) if is_owner else [],
                           in_collections=collections_with(image.id, current_user.id) if is_owner else [],
                           parent=parent if parent and can_view_image(parent) else None,
                           children=children_of(image, current_user), source_label=SOURCE_LABELS.get(generation.source),
                           upscalers=upscaler_menu(), variation_strength=VARIATION_STRENGTH,
                           hires_scales=hires_scales(entry.sizes, image.width, image.height) if entry else [],
                           hires_strength=DEFAULT_HR_STRENGTH)


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


def _wanted(field: str) -> bool:
    """The state the button asks for (``1``/``0``): repeating a request, or sending it twice at once, is harmless."""
    value = request.form.get(field)
    if value not in {"0", "1"}:
        abort(400)
    return value == "1"


@bp.post("/images/<image_id>/star")
@login_required
def star(image_id: str):
    """Star (``starred=1``) or unstar (``starred=0``): starred images are kept from cleanup."""
    image = _owner_action(image_id)
    starred = _wanted("starred")
    set_starred(image, starred)
    flash("Starred: this image is kept." if starred else "Unstarred.", "success")
    return redirect(url_for("gallery.image_detail", image_id=image.id), 303)


@bp.post("/images/<image_id>/publish")
@login_required
def publish(image_id: str):
    """Publish to Explore (``public=1``), or take back (``public=0``); never an image an admin has hidden."""
    image = _owner_action(image_id)
    public = _wanted("public")
    try:
        set_public(image, public)
    except PublishRefused as exc:
        flash(str(exc), "danger")
    else:
        flash("Published to Explore." if public else "No longer public.", "success")
    return redirect(url_for("gallery.image_detail", image_id=image.id), 303)


@bp.post("/images/<image_id>/revoke-links")
@login_required
def revoke_links(image_id: str):
    """End every emailed link to this image: whoever was sent one (or was forwarded one) can no longer open it."""
    image = _owner_action(image_id)
    db.session.execute(update(Image).where(Image.id == image.id).values(link_version=Image.link_version + 1))
    db.session.commit()
    flash("Every emailed link to this image has stopped working.", "success")
    return redirect(url_for("gallery.image_detail", image_id=image.id), 303)


@bp.post("/images/<image_id>/delete")
@login_required
def delete(image_id: str):
    """Delete the image's files and row."""
    image = _owner_action(image_id)
    delete_image(image)
    flash("The image is deleted.", "success")
    return redirect(url_for("gallery.mine"), 303)
