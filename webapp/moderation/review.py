"""Admin actions on images: hide, unhide, delete, resolve reports. Each is audited in its own commit."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum

from sqlalchemy import Select, or_, select

from ..extensions import db
from ..image_files import delete_image
from ..tables import Image, Report, User, utcnow
from .audit import record
from .reports import REPORT_REASONS, ReportStatus


class Resolution(StrEnum):
    """How an admin settles an image's open reports."""

    HIDE = "hide"
    DELETE = "delete"
    DISMISS = "dismiss"


class ImageStatus(StrEnum):
    """The admin image list's status filter."""

    ALL = ""
    PUBLIC = "public"
    HIDDEN = "hidden"
    REPORTED = "reported"


def _describe(image: Image) -> str:
    prompt = image.generation.prompt if image.generation else ""
    return f"owner {image.user.email if image.user else image.user_id}; prompt: {prompt[:120]}"


def revoke_links(image: Image) -> None:
    """End every emailed result link of ``image`` made so far (the caller commits)."""
    image.link_version = (image.link_version or 0) + 1


def set_hidden(admin: User, images: list[Image], hidden: bool) -> int:
    """Hide images from everyone but their owners and admins (or show them again); returns how many changed."""
    changed = 0
    for image in images:
        if image.is_hidden != hidden:
            image.is_hidden = hidden
            if hidden:
                revoke_links(image)  # and unhiding does not bring the old links back
            record(admin, "image.hide" if hidden else "image.unhide", "image", image.id, _describe(image))
            changed += 1
    db.session.commit()
    return changed


def delete_images(admin: User, images: list[Image]) -> int:
    """Delete images for good (files first, then rows); each deletion is audited in its own commit."""
    for image in images:
        record(admin, "image.delete", "image", image.id, _describe(image))
        delete_image(image)
    return len(images)


def open_reports(image: Image) -> list[Report]:
    """The image's open reports, oldest first."""
    return list(db.session.scalars(select(Report).where(Report.image_id == image.id, Report.status == ReportStatus.OPEN)
                                   .order_by(Report.created_at, Report.id)))


def resolve_reports(admin: User, image: Image, resolution: Resolution) -> int:
    """Settle every open report on ``image`` by hiding it, deleting it, or dismissing the reports.

    Returns:
        How many reports were resolved.
    """
    reports = open_reports(image)
    summary = ", ".join(f"#{r.id} {REPORT_REASONS.get(r.reason, r.reason)} by user {r.reporter_id}" for r in reports)
    now = utcnow()
    for report in reports:
        report.status = ReportStatus.RESOLVED
        report.resolution = resolution.value
        report.resolved_by_id = admin.id
        report.resolved_at = now
    record(admin, f"report.{resolution.value}", "image", image.id, f"{summary or 'no open reports'}; {_describe(image)}")
    if resolution == Resolution.DELETE:
        delete_image(image)  # commits; the image's reports go with it, the audit entry keeps what they said
    else:
        if resolution == Resolution.HIDE:
            image.is_hidden = True
            revoke_links(image)
        db.session.commit()
    return len(reports)


def images_query(user: str = "", since: date | None = None, until: date | None = None,
                 status: ImageStatus = ImageStatus.ALL) -> Select:
    """Every image, newest first, narrowed by owner (email or display name), day range and status."""
    query = select(Image).order_by(Image.created_at.desc(), Image.id)
    if user:
        needle = user.strip().lower()
        owners = select(User.id).where(or_(User.email.contains(needle, autoescape=True),
                                           User.display_name.icontains(needle, autoescape=True)))
        query = query.where(Image.user_id.in_(owners))
    if since:
        query = query.where(Image.created_at >= datetime.combine(since, time.min))
    if until:
        query = query.where(Image.created_at < datetime.combine(until, time.min) + timedelta(days=1))
    if status == ImageStatus.PUBLIC:
        query = query.where(Image.is_public.is_(True), Image.is_hidden.is_(False))
    elif status == ImageStatus.HIDDEN:
        query = query.where(Image.is_hidden.is_(True))
    elif status == ImageStatus.REPORTED:
        query = query.where(Image.id.in_(select(Report.image_id).where(Report.status == ReportStatus.OPEN)))
    return query


def images_by_ids(ids: list[str]) -> list[Image]:
    """The images among ``ids`` that exist (unknown ids are skipped)."""
    ids = [i for i in dict.fromkeys(ids) if isinstance(i, str) and len(i) == 36][:500]
    if not ids:
        return []
    return list(db.session.scalars(select(Image).where(Image.id.in_(ids))))
