"""Admin image list: filter by owner, date and status; hide, unhide or delete in bulk."""
from __future__ import annotations

from flask import abort, flash, render_template, request

from ..extensions import db
from ..moderation.review import (
    ImageStatus,
    delete_images,
    images_by_ids,
    images_query,
    set_hidden,
)
from .base import PER_PAGE, acting_admin, back, bp, page_number
from .forms import BulkImagesForm, ImageFilterForm


@bp.get("/images")
def images():
    """Every image, newest first, with the filters applied."""
    filters = ImageFilterForm(request.args)
    valid = filters.validate()
    query = images_query(
        user=(filters.user.data or "") if valid else "",
        since=filters.since.data if valid else None,
        until=filters.until.data if valid else None,
        status=ImageStatus(filters.status.data) if valid else ImageStatus.ALL,
    )
    page = db.paginate(query, page=page_number(), per_page=PER_PAGE, error_out=False)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template("admin/images.html", page=page, filters=filters, args=args, form=BulkImagesForm())


@bp.post("/images/bulk")
def images_bulk():
    """Apply one action to the ticked images."""
    form = BulkImagesForm()
    if not form.validate_on_submit():
        abort(400)
    chosen = images_by_ids(request.form.getlist("image_ids"))
    if not chosen:
        flash("Tick at least one image first.", "warning")
        return back("admin.images")
    admin = acting_admin()
    if form.action.data == "delete":
        count = delete_images(admin, chosen)
        flash(f"Deleted {count} image(s).", "success")
    else:
        hidden = form.action.data == "hide"
        count = set_hidden(admin, chosen, hidden)
        flash(f"{'Hid' if hidden else 'Unhid'} {count} image(s).", "success")
    return back("admin.images")
