"""Reports: a signed-in person flags a public image; admins see the open ones."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..tables import Image, Report, User

# What a report can say, in the order the form lists it.
REPORT_REASONS: dict[str, str] = {
    "sexual": "Sexual or explicit content",
    "violence": "Violence or gore",
    "hate": "Hateful or harassing",
    "illegal": "Illegal content",
    "personal": "Shows a real person without consent",
    "copyright": "Copies someone else's work",
    "spam": "Spam or off-topic",
    "other": "Something else",
}
DETAILS_MAX = 500
ALREADY_REPORTED = "You have already reported this image. An admin will look at it."


class ReportStatus:
    """A report is open until an admin resolves it."""

    OPEN = "open"
    RESOLVED = "resolved"


class ReportRefused(Exception):
    """The report cannot be filed (own image, or already reported)."""


def open_report_by(user: User, image: Image) -> Report | None:
    """This person's open report on this image, if any."""
    return db.session.scalar(select(Report).where(
        Report.image_id == image.id, Report.reporter_id == user.id, Report.status == ReportStatus.OPEN))


def file_report(user: User, image: Image, reason: str, details: str = "") -> Report:
    """Record a report; one open report per person per image.

    Raises:
        ReportRefused: the image is the reporter's own, or they already have an open report on it.
    """
    if image.user_id == user.id:
        raise ReportRefused("This is your own image: unpublish or delete it instead.")
    if open_report_by(user, image) is not None:
        raise ReportRefused(ALREADY_REPORTED)
    report = Report(image_id=image.id, reporter_id=user.id, reason=reason, details=details.strip()[:DETAILS_MAX])
    db.session.add(report)
    try:
        db.session.commit()
    except IntegrityError as exc:  # a second request filed the same report in the meantime
        db.session.rollback()
        raise ReportRefused(ALREADY_REPORTED) from exc
    return report


@dataclass
class ReportedImage:
    """One image in the moderation queue with its open reports, oldest first."""

    image: Image
    reports: list[Report] = field(default_factory=list)


def moderation_queue(limit: int = 100) -> list[ReportedImage]:
    """Images with open reports, the longest-waiting first."""
    reports = db.session.scalars(select(Report).where(Report.status == ReportStatus.OPEN)
                                 .order_by(Report.created_at, Report.id)).all()
    queue: dict[str, ReportedImage] = {}
    for report in reports:
        queue.setdefault(report.image_id, ReportedImage(report.image)).reports.append(report)
    return list(queue.values())[:limit]


def open_report_count() -> int:
    """How many reports wait for an admin."""
    return db.session.scalar(select(func.count()).select_from(Report).where(Report.status == ReportStatus.OPEN)) or 0
