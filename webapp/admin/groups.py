"""Admin groups: create a group, change its settings, add and remove people, delete it (all audited)."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from sqlalchemy import func, select

from ..extensions import db
from ..groups.forms import GroupSettingsForm, MemberForm, NewGroupForm
from ..groups.store import (
    GroupRefused,
    add_member,
    create_group,
    delete_group,
    describe,
    remove_member,
    role,
    update_group,
)
from ..tables import Group, GroupMember, User
from .base import acting_admin, bp
from .forms import ActionForm

REDIS_MISSED = "Redis did not answer: the queue gets the new weights when the chores restore them."


def _group_or_404(group_id: int) -> Group:
    group = db.session.get(Group, group_id)
    if group is None:
        abort(404)
    return group


def _list(form: NewGroupForm, status: int = 200, error: str | None = None):
    counts = dict(db.session.execute(select(GroupMember.group_id, func.count()).group_by(GroupMember.group_id)).all())
    groups = db.session.scalars(select(Group).order_by(Group.name)).all()
    return render_template("admin/groups.html", groups=groups, counts=counts, describe=describe,
                           new_form=form, error=error), status


def _detail(group: Group, settings: GroupSettingsForm | None = None, member_form: MemberForm | None = None,
            status: int = 200, error: str | None = None):
    if settings is None:
        settings = GroupSettingsForm(formdata=None)
        settings.fill(group)
    members = db.session.execute(select(User, GroupMember.is_manager).join(GroupMember)
                                 .where(GroupMember.group_id == group.id).order_by(User.email)).all()
    return render_template("admin/group.html", group=group, settings=settings, members=members, role=role,
                           member_form=member_form or MemberForm(formdata=None), form=ActionForm(),
                           describe=describe, error=error), status


@bp.get("/groups")
def groups():
    """Every group with its settings and size, and the form to create one."""
    return _list(NewGroupForm(formdata=None))


@bp.post("/groups")
def group_create():
    """Create a group; errors show next to the form."""
    form = NewGroupForm()
    if form.validate_on_submit():
        try:
            group = create_group(form.name.data, form.settings(), acting_admin())
        except GroupRefused as exc:
            return _list(form, 400, error=str(exc))
        else:
            flash(f"Created the group {group.name}.", "success")
            return redirect(url_for("admin.group", group_id=group.id), 303)
    return _list(form, 400)


@bp.get("/groups/<id:group_id>")
def group(group_id: int):
    """One group: its settings and its people."""
    return _detail(_group_or_404(group_id))


@bp.post("/groups/<id:group_id>")
def group_update(group_id: int):
    """Change a group's settings."""
    group = _group_or_404(group_id)
    form = GroupSettingsForm()
    if form.validate_on_submit():
        try:
            copied = update_group(group, form.settings(), acting_admin())
        except GroupRefused as exc:
            db.session.rollback()
            return _detail(group, settings=form, status=400, error=str(exc))
        else:
            flash(f"Saved the settings of {group.name}." + ("" if copied else " " + REDIS_MISSED),
                  "success" if copied else "warning")
            return redirect(url_for("admin.group", group_id=group.id), 303)
    return _detail(group, settings=form, status=400)


@bp.post("/groups/<id:group_id>/members")
def group_add(group_id: int):
    """Add a person (or change their role)."""
    group = _group_or_404(group_id)
    form = MemberForm()
    if form.validate_on_submit():
        user = db.session.scalar(select(User).where(User.email == User.normalize_email(form.email.data)))
        if user is None:
            form.email.errors.append("There is no account with that email.")
        else:
            change = add_member(group, user, form.manager.data, acting_admin())
            flash(f"{user.email} is a {role(form.manager.data)} of {group.name}."
                  + ("" if change.copied else " " + REDIS_MISSED), "success" if change.copied else "warning")
            return redirect(url_for("admin.group", group_id=group.id), 303)
    return _detail(group, member_form=form, status=400)


@bp.post("/groups/<id:group_id>/members/<id:user_id>/remove")
def group_remove(group_id: int, user_id: int):
    """Take a person out of the group."""
    group = _group_or_404(group_id)
    user = db.session.get(User, user_id)
    if user is None or db.session.get(GroupMember, (group.id, user.id)) is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    remove_member(group, user, acting_admin())
    flash(f"{user.email} left {group.name}.", "success")
    return redirect(url_for("admin.group", group_id=group.id), 303)


@bp.post("/groups/<id:group_id>/delete")
def group_delete(group_id: int):
    """Delete a group (its people keep their accounts and pictures)."""
    group = _group_or_404(group_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    name = group.name
    delete_group(group, acting_admin())
    flash(f"Deleted the group {name}.", "success")
    return redirect(url_for("admin.groups"), 303)
