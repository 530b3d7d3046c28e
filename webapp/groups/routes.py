"""A manager's pages: their group's members, each one's usage today, and their pictures (hide one, audited).

Only the group's managers and admins see a group; everyone else gets 404, so group names do not leak.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import func, select

from ..extensions import db
from ..image_files import serve_file
from ..moderation.held import release
from ..tables import ACTIVE_STATUSES, Generation, Group, GroupMember, Image, User
from .limits import start_of_day
from .storage import human_size, kept_by_groups, kept_by_members
from .store import find_group, hide_member_image, managed_groups, role

bp = Blueprint("groups", __name__)
PER_PAGE = 24


class HideForm(FlaskForm):
    """The hide button: the CSRF token only."""


def managed_group_or_404(name: str) -> Group:
    """The group ``name`` if the signed-in person manages it (or is an admin), else 404."""
    group = find_group(name)
    if group is None or not (current_user.is_admin or db.session.scalar(select(GroupMember.is_manager).where(
            GroupMember.group_id == group.id, GroupMember.user_id == current_user.id))):
        abort(404)
    return group


def member_image_or_404(group: Group, image_id: str) -> Image:
    """An image of one of the group's people, else 404."""
    image = db.session.get(Image, image_id) if len(image_id) == 36 else None
    if image is None or db.session.get(GroupMember, (group.id, image.user_id)) is None:
        abort(404)
    return image


def usage_today(group: Group) -> list[dict]:
    """Each person of the group with their role, images asked for today (from 00:00 UTC), generations under way
    and the bytes their pictures and uploads keep."""
    counted = Generation.status.notin_(["failed", "canceled"])
    today = (select(Generation.user_id, func.coalesce(func.sum(Generation.num_images), 0))
             .where(Generation.created_at >= start_of_day(), counted).group_by(Generation.user_id))
    active = (select(Generation.user_id, func.count()).where(Generation.status.in_(list(ACTIVE_STATUSES)))
              .group_by(Generation.user_id))
    ids = select(GroupMember.user_id).where(GroupMember.group_id == group.id)
    images = dict(db.session.execute(today.where(Generation.user_id.in_(ids))).all())
    running = dict(db.session.execute(active.where(Generation.user_id.in_(ids))).all())
    rows = db.session.execute(select(User, GroupMember.is_manager).join(GroupMember)
                              .where(GroupMember.group_id == group.id).order_by(User.email)).all()
    kept = kept_by_members(group)
    return [{"user": user, "role": role(manager), "images_today": images.get(user.id, 0),
             "active": running.get(user.id, 0), "kept": human_size(kept.get(user.id, 0))} for user, manager in rows]


def storage_use(group: Group) -> dict | None:
    """The group's storage kept against its quota, in words (None: no quota)."""
    if group.storage_quota is None:
        return None
    kept = kept_by_groups([group.id])[group.id]
    return {"kept": human_size(kept), "quota": human_size(group.storage_quota), "full": kept >= group.storage_quota}


@bp.get("/")
@login_required
def index():
    """The groups the signed-in person manages (404 for someone who manages none)."""
    groups = managed_groups(current_user)
    if not groups:
        abort(404)
    if len(groups) == 1:
        return redirect(url_for("groups.group_page", name=groups[0].name))
    return render_template("groups/index.html", groups=groups)


@bp.get("/<name>")
@login_required
def group_page(name: str):
    """A group's people with their usage today, and their pictures, newest first."""
    group = managed_group_or_404(name)
    query = (select(Image).join(GroupMember, GroupMember.user_id == Image.user_id)
             .where(GroupMember.group_id == group.id).order_by(Image.created_at.desc(), Image.id))
    try:
        page_number = max(1, min(10_000, int(request.args.get("page", 1))))
    except ValueError:
        page_number = 1
    page = db.paginate(query, page=page_number, per_page=PER_PAGE, error_out=False)
    return render_template("groups/group.html", group=group, members=usage_today(group), page=page,
                           form=HideForm(), storage=storage_use(group))


@bp.get("/<name>/images/<image_id>/thumbnail")
@login_required
def member_thumbnail(name: str, image_id: str):
    """A member's picture's thumbnail, for the group's managers."""
    image = member_image_or_404(managed_group_or_404(name), image_id)
    return serve_file(image.thumbnail_key, "image/webp")


@bp.post("/<name>/images/<image_id>/hide")
@login_required
def hide(name: str, image_id: str):
    """Hide a member's picture from Explore and its links (audited; its owner still sees it)."""
    group = managed_group_or_404(name)
    image = member_image_or_404(group, image_id)
    if not HideForm().validate_on_submit():
        abort(400)
    if hide_member_image(current_user._get_current_object(), group, image):
        flash("The picture is hidden: only its owner and the admins see it now.", "success")
    else:
        flash("That picture was already hidden.", "info")
    return redirect(url_for("groups.group_page", name=group.name, page=request.args.get("page", 1)), 303)


@bp.post("/<name>/images/<image_id>/release")
@login_required
def release_held(name: str, image_id: str):
    """Release a member's picture the safety check holds (audited), so its owner may publish and share it."""
    group = managed_group_or_404(name)
    image = member_image_or_404(group, image_id)
    if not HideForm().validate_on_submit():
        abort(400)
    if release(current_user._get_current_object(), image, f"as manager of group {group.name}"):
        flash("Released: its owner may publish and share it.", "success")
    else:
        flash("That picture was not held.", "info")
    return redirect(url_for("groups.group_page", name=group.name, page=request.args.get("page", 1)), 303)


@bp.app_context_processor
def group_navigation() -> dict:
    """``manages_a_group()`` for the menu's "My groups" link (asked only on pages of signed-in non-admins)."""

    def manages_a_group() -> bool:
        return current_user.is_authenticated and db.session.scalar(select(GroupMember.user_id).where(
            GroupMember.user_id == current_user.id, GroupMember.is_manager.is_(True)).limit(1)) is not None

    return {"manages_a_group": manages_a_group}
