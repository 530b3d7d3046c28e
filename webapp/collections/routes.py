"""Collection pages: mine (owner only, else 404) and the public page a signed link opens."""
from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from ..access import own_images
from ..auth.session import safe_next
from ..extensions import db
from ..image_files import serve_file
from ..links.routes import bad_link, private_link
from ..links.tokens import BadLink, public_url
from ..paging import PER_PAGE, page_number
from ..tables import Collection, CollectionImage, Image
from . import store

bp = Blueprint("collections", __name__)


class CollectionForm(FlaskForm):
    """A new collection's name."""

    name = StringField("Name", filters=[lambda text: text.strip() if isinstance(text, str) else text],
                       validators=[DataRequired("Give the collection a name."),
                                   Length(max=store.NAME_MAX, message=store.NAME_TOO_LONG)])


def _mine_or_404(collection_id: str) -> Collection:
    collection = store.owned_collection(collection_id, current_user.id)
    if collection is None:
        abort(404)
    return collection


def _checked_form() -> None:
    if not FlaskForm().validate_on_submit():
        abort(400)


@bp.route("/collections", methods=["GET", "POST"])
@login_required
def index():
    """My collections, and a form for a new one."""
    form = CollectionForm()
    if form.validate_on_submit():
        collection = store.create_collection(current_user.id, form.name.data)
        flash(f"Collection “{collection.name}” made. Add images from your gallery.", "success")
        return redirect(url_for("collections.detail", collection_id=collection.id), 303)
    collections = store.collections_of(current_user.id)
    status = 400 if form.errors else 200
    return render_template("collections/index.html", collections=collections, form=form,
                           counts=store.image_counts(collections)), status


@bp.get("/collections/<collection_id>")
@login_required
def detail(collection_id: str):
    """One of my collections, with its share controls."""
    collection = _mine_or_404(collection_id)
    page = db.paginate(store.collection_images(collection), page=page_number(), per_page=PER_PAGE, error_out=False)
    link = public_url("collections.shared", token=store.share_token(collection)) if collection.is_shared else None
    return render_template("collections/detail.html", collection=collection, page=page, form=FlaskForm(), link=link)


@bp.post("/collections/<collection_id>/share")
@login_required
def share(collection_id: str):
    """Turn on the public link."""
    collection = _mine_or_404(collection_id)
    _checked_form()
    store.share(collection)
    flash("Anyone with the link can now see this collection.", "success")
    return redirect(url_for("collections.detail", collection_id=collection.id), 303)


@bp.post("/collections/<collection_id>/revoke")
@login_required
def revoke(collection_id: str):
    """Turn off the public link: every copy of it stops working."""
    collection = _mine_or_404(collection_id)
    _checked_form()
    store.revoke(collection)
    flash("The link no longer works. The collection is private again.", "success")
    return redirect(url_for("collections.detail", collection_id=collection.id), 303)


@bp.post("/collections/<collection_id>/delete")
@login_required
def delete(collection_id: str):
    """Delete the collection; its images stay in the gallery."""
    collection = _mine_or_404(collection_id)
    _checked_form()
    store.delete_collection(collection)
    flash("The collection is deleted. Its images are still in your gallery.", "success")
    return redirect(url_for("collections.index"), 303)


@bp.post("/collections/images")
@login_required
def change_images():
    """Add the ticked images to a collection (an existing one, or a new one by name), or remove them."""
    _checked_form()
    back = safe_next(request.form.get("next")) or url_for("gallery.mine")
    images = own_images(request.form.getlist("image_ids"))
    new_name = (request.form.get("new_collection") or "").strip()
    if request.form.get("action") == "remove":
        collection = _mine_or_404(request.form.get("collection_id", ""))
        removed = store.remove_images(collection, [image.id for image in images])
        flash(f"Removed {removed} image{'s' if removed != 1 else ''} from “{collection.name}”.", "success")
        return redirect(back, 303)
    if not images:
        flash("Tick at least one of your images first.", "warning")
        return redirect(back, 303)
    if len(new_name) > store.NAME_MAX:  # refused, never cut
        flash(store.NAME_TOO_LONG, "warning")
        return redirect(back, 303)
    if new_name:
        collection = store.create_collection(current_user.id, new_name)
    else:
        collection = _mine_or_404(request.form.get("collection_id", ""))
    added, already = store.add_images(collection, images)
    flash(_added_message(collection, added, already), "success")
    return redirect(back, 303)


def _added_message(collection: Collection, added: int, already: int) -> str:
    if not added:
        return f"{'That image is' if already == 1 else 'Those images are'} already in “{collection.name}”."
    message = f"Added {added} image{'s' if added != 1 else ''} to “{collection.name}”."
    if already:
        message += f" {already} {'was' if already == 1 else 'were'} already in it."
    return message


def _shared_or_bad_link(token: str) -> Collection:
    try:
        return store.collection_for_token(token)
    except BadLink:
        abort(bad_link("collection", expired=False))


def _shared_image(collection: Collection, image_id: str) -> Image:
    image = db.session.get(Image, image_id) if len(image_id) == 36 else None
    held = image is not None and db.session.get(CollectionImage, (collection.id, image.id)) is not None
    if not held or image.is_hidden:
        abort(404)
    return image


@bp.get("/c/<token>")
def shared(token: str):
    """The public page of a shared collection: no sign-in needed; hidden images left out."""
    collection = _shared_or_bad_link(token)
    page = db.paginate(store.collection_images(collection, public=True), page=page_number(), per_page=PER_PAGE,
                       error_out=False)
    return private_link(make_response(render_template("collections/shared.html", collection=collection,
                                                      page=page, token=token)))


@bp.get("/c/<token>/images/<image_id>/thumbnail")
def shared_thumbnail(token: str, image_id: str):
    """A thumbnail on a shared collection's page."""
    image = _shared_image(_shared_or_bad_link(token), image_id)
    return private_link(serve_file(image.thumbnail_key, "image/webp"))


@bp.get("/c/<token>/images/<image_id>/file")
def shared_file(token: str, image_id: str):
    """The full PNG of an image on a shared collection's page."""
    image = _shared_image(_shared_or_bad_link(token), image_id)
    return private_link(serve_file(image.storage_key, "image/png"))
