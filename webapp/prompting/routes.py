"""A person's own wildcard lists (``/wildcards``, linked from the account page; theirs win over the site's)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from ..extensions import db
from ..tables import Wildcard
from .forms import DeleteForm, WildcardForm
from .lists import lists_of, remove_list, save_list
from .wildcards import PromptProblem

bp = Blueprint("prompting", __name__)


def render_lists(form: WildcardForm, owner_id: int | None, status: int = 200, **endpoints):
    """The lists page, for a person or (``owner_id`` None) the site."""
    return render_template("prompting/wildcards.html", form=form, delete_form=DeleteForm(), lists=lists_of(owner_id),
                           site_lists=lists_of(None) if owner_id is not None else [], **endpoints), status


def _mine(**kw):
    return render_lists(kw.pop("form", None) or WildcardForm(formdata=None), current_user.id, kw.pop("status", 200),
                        save_endpoint="prompting.save", delete_endpoint="prompting.delete", own=True)


@bp.get("/wildcards")
@login_required
def wildcards():
    """My lists, and the site's (mine win for me)."""
    return _mine()


@bp.post("/wildcards")
@login_required
def save():
    """Create or replace one of my lists."""
    form = WildcardForm()
    if form.validate_on_submit():
        try:
            row = save_list(current_user.id, form.name.data, form.values.data)
        except PromptProblem as exc:
            getattr(form, exc.field).errors.append(str(exc))
        else:
            flash(f"Saved __{row.name}__ ({len(row.values)} entries).", "success")
            return redirect(url_for("prompting.wildcards"), 303)
    return _mine(form=form, status=400)


@bp.post("/wildcards/<id:list_id>/delete")
@login_required
def delete(list_id: int):
    """Delete one of my lists (another's: 404)."""
    row = db.session.get(Wildcard, list_id)
    if row is None or row.user_id != current_user.id:
        abort(404)
    if not DeleteForm().validate_on_submit():
        abort(400)
    remove_list(row)
    flash(f"Deleted __{row.name}__.", "success")
    return redirect(url_for("prompting.wildcards"), 303)

