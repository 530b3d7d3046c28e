"""Admin → Styles: the site's saved styles (audited); the page and the saving are ``webapp.prompting``'s."""
from __future__ import annotations

from flask import abort, redirect, url_for

from ..extensions import db
from ..prompting.forms import DeleteForm, StyleForm
from ..prompting.style_pages import save_from_form, styles_page
from ..prompting.styles import remove_style
from ..tables import SavedStyle
from .base import acting_admin, bp


@bp.get("/styles")
def site_styles():
    """The site's styles."""
    return styles_page(StyleForm(formdata=None), None)


@bp.post("/styles")
def save_site_style():
    """Create or replace a site style (audited)."""
    return save_from_form(None, admin=acting_admin()) or redirect(url_for("admin.site_styles"), 303)


@bp.post("/styles/<id:style_id>/delete")
def delete_site_style(style_id: int):
    """Delete a site style (audited)."""
    row = db.session.get(SavedStyle, style_id)
    if row is None or row.user_id is not None:
        abort(404)
    if not DeleteForm().validate_on_submit():
        abort(400)
    remove_style(row, admin=acting_admin())
    return redirect(url_for("admin.site_styles"), 303)
