"""Admin → Wildcards: the site's lists for ``__name__`` in prompts (audited)."""
from __future__ import annotations

from flask import abort, flash, redirect, url_for

from ..extensions import db
from ..prompting.forms import DeleteForm, WildcardForm
from ..prompting.lists import remove_list, save_list
from ..prompting.routes import render_lists
from ..prompting.wildcards import PromptProblem
from ..tables import Wildcard
from .base import acting_admin, bp


def _site(form: WildcardForm | None = None, status: int = 200):
    return render_lists(form or WildcardForm(formdata=None), None, status, save_endpoint="admin.save_wildcard",
                        delete_endpoint="admin.delete_wildcard", own=False)


@bp.get("/wildcards")
def wildcards():
    """The site's lists and the form to add or replace one."""
    return _site()


@bp.post("/wildcards")
def save_wildcard():
    """Create or replace a site list (audited)."""
    form = WildcardForm()
    if form.validate_on_submit():
        try:
            row = save_list(None, form.name.data, form.values.data, admin=acting_admin())
        except PromptProblem as exc:
            getattr(form, exc.field).errors.append(str(exc))
        else:
            flash(f"Saved the site's __{row.name}__ ({len(row.values)} entries).", "success")
            return redirect(url_for("admin.wildcards"), 303)
    return _site(form, 400)


@bp.post("/wildcards/<id:list_id>/delete")
def delete_wildcard(list_id: int):
    """Delete a site list (audited)."""
    row = db.session.get(Wildcard, list_id)
    if row is None or row.user_id is not None:
        abort(404)
    if not DeleteForm().validate_on_submit():
        abort(400)
    remove_list(row, admin=acting_admin())
    flash(f"Deleted the site's __{row.name}__.", "success")
    return redirect(url_for("admin.wildcards"), 303)
