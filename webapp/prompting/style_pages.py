"""Saved styles pages: a person's own at ``/styles`` ("Save as style" in the studio fills the form); the site's
(``webapp.admin.styles``) share the page and the saving."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from ..extensions import db
from ..tables import SavedStyle
from .forms import DeleteForm, StyleForm
from .routes import bp
from .styles import StyleProblem, remove_style, save_style


def _rows(owner_id: int | None) -> list[SavedStyle]:
    where = SavedStyle.user_id.is_(None) if owner_id is None else SavedStyle.user_id == owner_id
    return list(db.session.scalars(select(SavedStyle).where(where).order_by(SavedStyle.name)))


def styles_page(form: StyleForm, owner_id: int | None, status: int = 200):
    own = owner_id is not None
    return render_template("prompting/styles.html", form=form, delete_form=DeleteForm(), rows=_rows(owner_id), own=own,
                           save_endpoint="prompting.save_style" if own else "admin.save_site_style",
                           delete_endpoint="prompting.delete_style" if own else "admin.delete_site_style"), status


def save_from_form(owner_id: int | None, admin=None):
    form = StyleForm()
    if form.validate_on_submit():
        try:
            row = save_style(owner_id, form.fields(), admin=admin)
        except StyleProblem as exc:
            getattr(form, exc.field).errors.append(str(exc))
        else:
            flash(f"Saved the style “{row.label}”: choose it as {row.name} in the studio or the APIs.", "success")
            return None
    return styles_page(form, owner_id, 400)


@bp.get("/styles")
@login_required
def styles():
    """My styles; the studio's "Save as style" opens this with its prompt and settings filled in."""
    form = StyleForm(formdata=None, data={"template": request.args.get("prompt", "")[:1000],
                                          "negative_prompt": request.args.get("negative_prompt", "")[:1000],
                                          "model": request.args.get("model", "")[:64]})
    return styles_page(form, current_user.id)


@bp.post("/styles", endpoint="save_style")
@login_required
def save_own_style():
    """Create or replace one of my styles (published or not)."""
    return save_from_form(current_user.id) or redirect(url_for("prompting.styles"), 303)


@bp.post("/styles/<id:style_id>/delete")
@login_required
def delete_style(style_id: int):
    """Delete one of my styles (another's: 404)."""
    row = db.session.get(SavedStyle, style_id)
    if row is None or row.user_id != current_user.id:
        abort(404)
    if not DeleteForm().validate_on_submit():
        abort(400)
    remove_style(row)
    return redirect(url_for("prompting.styles"), 303)


