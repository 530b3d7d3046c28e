"""Account → API tokens: create (the secret shown once), list, revoke with one click."""
from __future__ import annotations

from datetime import datetime, time

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from ..access import owned_token_or_404
from ..api_tokens import TooManyTokens, issue_token, revoke_token, token_status, tokens_of
from .forms import ApiTokenForm
from .routes import bp


def _page(form: ApiTokenForm, new_secret: str | None = None, status: int = 200):
    user = current_user._get_current_object()
    return render_template("auth/tokens.html", form=form, tokens=tokens_of(user), token_status=token_status,
                           new_secret=new_secret, revoke_form=FlaskForm()), status


@bp.get("/tokens")
@login_required
def tokens():
    """The token list and the form for a new one."""
    return _page(ApiTokenForm(formdata=None))


@bp.post("/tokens")
@login_required
def create_token():
    """Issue a token and show its secret once, in ``<code id="new-token">``."""
    form = ApiTokenForm()
    if not form.validate_on_submit():
        return _page(form, status=400)
    expires_at = datetime.combine(form.expires_on.data, time.min) if form.expires_on.data else None
    try:
        issued = issue_token(current_user._get_current_object(), form.name.data, expires_at)
    except TooManyTokens as exc:
        form.name.errors = [*form.name.errors, str(exc)]
        return _page(form, status=400)
    return _page(ApiTokenForm(formdata=None), new_secret=issued.secret)


@bp.post("/tokens/<id:token_id>/revoke")
@login_required
def revoke(token_id: int):
    """Revoke one of my tokens; it stops working at once."""
    token = owned_token_or_404(token_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    if revoke_token(token):
        flash(f"The token “{token.name}” is revoked.", "success")
    return redirect(url_for("auth.tokens"), 303)



