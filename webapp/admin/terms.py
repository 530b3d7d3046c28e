"""Admin blocked prompt terms: list, add, remove."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for

from ..extensions import db
from ..moderation.blocked_terms import TermRefused, add_term, list_terms, remove_term
from ..tables import BlockedTerm
from .base import acting_admin, bp
from .forms import ActionForm, TermForm


def _render(form: TermForm, status: int = 200):
    return render_template("admin/terms.html", terms=list_terms(), term_form=form, form=ActionForm()), status


@bp.get("/terms")
def terms():
    """The blocked terms and the form to add one."""
    return _render(TermForm(formdata=None))


@bp.post("/terms")
def add():
    """Block a new term; errors show next to the field."""
    form = TermForm()
    if form.validate_on_submit():
        try:
            entry = add_term(acting_admin(), form.term.data)
        except TermRefused as exc:
            form.term.errors.append(str(exc))
        else:
            flash(f"Prompts with “{entry.term}” are now refused.", "success")
            return redirect(url_for("admin.terms"), 303)
    return _render(form, 400)


@bp.post("/terms/<id:term_id>/delete")
def remove(term_id: int):
    """Unblock a term."""
    entry = db.session.get(BlockedTerm, term_id)
    if entry is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    term = entry.term
    remove_term(acting_admin(), entry)
    flash(f"“{term}” is no longer blocked.", "success")
    return redirect(url_for("admin.terms"), 303)
