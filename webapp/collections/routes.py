"""Collection pages: mine and the boards shared with me (a role on it, else 404), and the public page a signed
link opens."""
from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from ..access import own_images
from ..auth.session import safe_next
from ..extensions import db
from ..image_files import serve_file
from ..links.routes import bad_link, private_link
from ..links.tokens import BadLink, public_url
from ..paging import PER_PAGE, page_number
from ..tables import Collection, CollectionImage, Image
from . import boards, store
from .boards import Role

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


def _board_or_404(collection_id: str, at_least: Role = Role.VIEWER) -> tuple[Collection, Role]:
    """The board and my role on it, when I have at least ``at_least``; else 404 (as for a stranger)."""
    found = boards.board_for(collection_id, current_user)
    if found is None or found[1] < at_least:
        abort(404)
    return found


class ShareBoardForm(FlaskForm):
    """Share a board with a person (email) or a group (name)."""

    email = StringField("Person's email", validators=[Length(max=254)])
    group = StringField("or a group", validators=[Length(max=64)])
    role = SelectField("Role", choices=[SelectChoice("viewer", "Viewer: looks"),
                                        SelectChoice("editor", "Editor: adds, removes pictures, renames")])


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
    shared = boards.boards_shared_with(current_user)
    status = 400 if form.errors else 200
    return render_template("collections/index.html", collections=collections, form=form, shared=shared,
                           counts=store.image_counts(collections + [c for c, _ in shared])), status


@bp.get("/collections/<collection_id>")
@login_required
def detail(collection_id: str):
    """One of my collections or a board shared with me; the owner gets the share controls."""
    collection, role = _board_or_404(collection_id)
    return _detail(collection, role)


def _detail(collection: Collection, role: Role, share_form: ShareBoardForm | None = None, status: int = 200,
            error: str | None = None):
    # everyone but the owner sees the board without the pictures an admin or a manager hid (their own excepted)
    query = store.collection_images(collection).where(Image.is_held.is_(False) | (Image.user_id == current_user.id))
    if role != Role.OWNER:
        query = query.where(Image.is_hidden.is_(False) | (Image.user_id == current_user.id))
    page = db.paginate(query, page=page_number(), per_page=PER_PAGE, error_out=False)
    is_owner = role == Role.OWNER
    link = (public_url("collections.shared", token=store.share_token(collection))
            if collection.is_shared and is_owner else None)
    return render_template("collections/detail.html", collection=collection, page=page, form=FlaskForm(), link=link,
                           role=role, Role=Role, members=boards.members(collection) if is_owner else [],
                           share_form=share_form or ShareBoardForm(formdata=None), error=error,
                           rename_form=CollectionForm(formdata=None, data={"name": collection.name})), status


@bp.post("/collections/<collection_id>/members")
@login_required
def share_board(collection_id: str):
    """The owner shares the board with a person or a group, as an editor or a viewer."""
    collection = _mine_or_404(collection_id)
    form = ShareBoardForm()
    if not form.validate_on_submit():
        problems = [error for errors in form.errors.values() for error in errors if isinstance(error, str)]
        return _detail(collection, Role.OWNER, form, 400, error=" ".join(problems) or "Start again from this page.")
    try:
        access = boards.grant(collection, form.role.data, email=form.email.data or "", group_name=form.group.data or "")
    except boards.BoardRefused as exc:
        return _detail(collection, Role.OWNER, form, 400, error=str(exc))
    who = access.user.email if access.user_id else f"the group {access.group.name}"
    flash(f"Shared with {who} as {access.role}.", "success")
    return redirect(url_for("collections.detail", collection_id=collection.id), 303)


@bp.post("/collections/<collection_id>/members/<id:access_id>/remove")
@login_required
def unshare_board(collection_id: str, access_id: int):
    """The owner stops sharing the board with one person or group."""
    collection = _mine_or_404(collection_id)
    _checked_form()
    if not boards.remove_access(collection, access_id):
        abort(404)
    flash("They no longer see this board.", "success")
    return redirect(url_for("collections.detail", collection_id=collection.id), 303)


@bp.post("/collections/<collection_id>/rename")
@login_required
def rename(collection_id: str):
    """The owner or an editor renames the board."""
    collection, role = _board_or_404(collection_id, Role.EDITOR)
    form = CollectionForm()
    if not form.validate_on_submit():
        return _detail(collection, role, status=400, error=" ".join(form.name.errors) or "Give the board a name.")
    boards.rename(collection, form.name.data, store.NAME_MAX)
    flash(f"Renamed to “{collection.name}”.", "success")
    return redirect(url_for("collections.detail", collection_id=collection.id), 303)


@bp.get("/collections/<collection_id>/images/<image_id>/thumbnail")
@login_required
def board_thumbnail(collection_id: str, image_id: str):
    """A picture's thumbnail, seen through a board I have a role on."""
    collection, _ = _board_or_404(collection_id)
    image = boards.board_image(collection, image_id, current_user)
    if image is None:
        abort(404)
    return serve_file(image.thumbnail_key, "image/webp")


@bp.get("/collections/<collection_id>/images/<image_id>/file")
@login_required
def board_file(collection_id: str, image_id: str):
    """A picture's PNG, seen through a board I have a role on."""
    collection, _ = _board_or_404(collection_id)
    image = boards.board_image(collection, image_id, current_user)
    if image is None:
        abort(404)
    return serve_file(image.storage_key, "image/png")


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
    if request.form.get("action") == "remove":  # the owner or an editor takes any of the board's pictures out
        collection, _ = _board_or_404(request.form.get("collection_id", ""), Role.EDITOR)
        ids = [raw for raw in request.form.getlist("image_ids")[:1000] if isinstance(raw, str)]
        removed = store.remove_images(collection, ids)
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
        collection, _ = _board_or_404(request.form.get("collection_id", ""), Role.EDITOR)
    added, already = store.add_images(collection, images, by_user_id=current_user.id)
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
    if not held or image.is_hidden or image.is_held:
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
