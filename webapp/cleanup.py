"""Scheduled cleanup: expired images, orphan files, unused uploads and generations that never finished.

Safe to run while workers are busy: it never touches a queued or running generation's files,
nor any file younger than ``ORPHAN_GRACE`` (a worker may be saving it), and it only deletes
rows that are past their time. Files go first, then rows, so a run that stops half-way
leaves rows that the next run finishes; running it twice changes nothing the second time.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select

from . import lifecycle, services
from .extensions import db
from .storage import generation_prefix
from .tables import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    Generation,
    GenerationEdit,
    GenerationStatus,
    Image,
    Report,
    Upload,
    utcnow,
)

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(days=1)
ORPHAN_GRACE = timedelta(hours=1)
UPLOAD_UNUSED_AFTER = timedelta(days=1)
BATCH = 200
STALE_MESSAGE = "This generation did not finish within a day, so it was stopped. Please try again."
# Only files in a generation's folder are ever swept; anything else under users/ is left alone.
GENERATION_FILE_RE = re.compile(r"^users/\d+/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/[^/]+$")


@dataclass
class CleanupReport:
    """What a cleanup run deleted, or would delete in a dry run."""

    dry_run: bool
    expired_images: list[str] = field(default_factory=list)
    image_files: list[str] = field(default_factory=list)
    orphan_files: list[str] = field(default_factory=list)
    stale_generations: list[str] = field(default_factory=list)
    removed_generations: list[str] = field(default_factory=list)
    unused_uploads: list[str] = field(default_factory=list)
    _files: set[str] = field(default_factory=set, repr=False)

    def add_file(self, key: str) -> None:
        """Count an expired image's or generation's file once."""
        if key not in self._files:
            self._files.add(key)
            self.image_files.append(key)

    def has_file(self, key: str) -> bool:
        """True when ``key`` is already counted as an expired image's or generation's file."""
        return key in self._files

    def counts(self) -> dict[str, int | bool]:
        """The numbers, for logs and the chore's result."""
        return {"dry_run": self.dry_run, "expired_images": len(self.expired_images),
                "image_files": len(self.image_files), "orphan_files": len(self.orphan_files),
                "stale_generations": len(self.stale_generations),
                "removed_generations": len(self.removed_generations), "unused_uploads": len(self.unused_uploads)}

    def summary(self) -> str:
        """One line: what was (or would be) done."""
        verb = "Would delete" if self.dry_run else "Deleted"
        stop = "would stop" if self.dry_run else "stopped"
        return (f"{verb} {len(self.expired_images)} expired image(s) ({len(self.image_files)} file(s)), "
                f"{len(self.orphan_files)} orphan file(s), {len(self.unused_uploads)} unused upload(s) and "
                f"{len(self.removed_generations)} empty generation(s); "
                f"{stop} {len(self.stale_generations)} generation(s) unfinished after a day.")

    def lines(self) -> list[str]:
        """Every item, one per line, then the summary."""
        prefix = "would " if self.dry_run else ""
        return ([f"{prefix}stop generation {gid}" for gid in self.stale_generations]
                + [f"{prefix}delete image {iid}" for iid in self.expired_images]
                + [f"{prefix}delete file {key}" for key in self.image_files]
                + [f"{prefix}delete orphan file {key}" for key in self.orphan_files]
                + [f"{prefix}delete generation {gid}" for gid in self.removed_generations]
                + [f"{prefix}delete unused upload {uid}" for uid in self.unused_uploads]
                + [self.summary()])


def delete_expired_images(now: datetime | None = None, dry_run: bool = False) -> CleanupReport:
    """Delete images older than ``RETENTION_DAYS`` unless starred, orphan files, and stalled generations.

    Args:
        now: the time to judge ages by (naive UTC; tests move it forward). Default: now.
        dry_run: report what would be deleted, change nothing.

    Returns:
        What was deleted (or would be).
    """
    now = now or utcnow()
    report = CleanupReport(dry_run=dry_run)
    retention_days = current_app.config["RETENTION_DAYS"]
    stop_stale_generations(now - STALE_AFTER, now, report)
    if retention_days > 0:  # 0: the site keeps every image (and its generation) until its owner deletes it
        retention_cutoff = now - timedelta(days=retention_days)
        delete_old_images(retention_cutoff, report)
        remove_empty_generations(retention_cutoff, report)
    delete_unused_uploads(now - UPLOAD_UNUSED_AFTER, report)
    sweep_orphans((now - ORPHAN_GRACE).replace(tzinfo=UTC).timestamp(), report)
    log.info("cleanup: %s", report.summary())
    return report


def stop_stale_generations(cutoff: datetime, now: datetime, report: CleanupReport) -> None:
    """Mark generations still queued or running since before ``cutoff`` failed, and cancel their jobs."""
    ids = list(db.session.scalars(select(Generation.id).where(
        Generation.status.in_(list(ACTIVE_STATUSES)), Generation.created_at < cutoff)))
    for generation_id in ids:
        if report.dry_run:
            report.stale_generations.append(generation_id)
            continue
        if lifecycle.fail(generation_id, STALE_MESSAGE, drop_job=True, now=now):  # with its email, as any failure
            report.stale_generations.append(generation_id)


def _expired(cutoff: datetime):
    return (Image.created_at < cutoff) & Image.is_starred.is_(False)


def delete_old_images(cutoff: datetime, report: CleanupReport) -> None:
    """Delete unstarred images made before ``cutoff``: files first, then rows, in batches."""
    storage = services.storage()
    last_id = ""
    while True:
        batch = list(db.session.scalars(select(Image).where(_expired(cutoff), Image.id > last_id)
                                        .order_by(Image.id).limit(BATCH)))
        if not batch:
            return
        last_id = batch[-1].id
        ids = [image.id for image in batch]
        generation_ids = {image.generation_id for image in batch}
        for image in batch:
            report.expired_images.append(image.id)
            for key in image.file_keys:
                report.add_file(key)
                if not report.dry_run:
                    storage.delete(key)
        if not report.dry_run:
            db.session.execute(delete(Report).where(Report.image_id.in_(ids)))
            db.session.execute(delete(Image).where(Image.id.in_(ids), Image.is_starred.is_(False)))
            db.session.commit()
        for generation_id in generation_ids:
            kept = db.session.scalar(select(func.count()).select_from(Image).where(
                Image.generation_id == generation_id, ~_expired(cutoff)))
            if not kept:
                _remove_generation(generation_id, report)


def remove_empty_generations(cutoff: datetime, report: CleanupReport) -> None:
    """Remove finished generations older than ``cutoff`` that have no images (failed, canceled)."""
    ids = list(db.session.scalars(select(Generation.id).where(
        Generation.status.in_(list(FINAL_STATUSES)), Generation.created_at < cutoff,
        ~Generation.images.any())))
    already = set(report.removed_generations)
    for generation_id in ids:
        if generation_id not in already:
            _remove_generation(generation_id, report)


def _remove_generation(generation_id: str, report: CleanupReport) -> None:
    """The generation's remaining files (preview, init image), then its row."""
    generation = db.session.get(Generation, generation_id)
    if generation is None or not GenerationStatus(generation.status).is_final:
        return
    storage = services.storage()
    for key, _ in list(storage.list(generation_prefix(generation.user_id, generation.id))):
        report.add_file(key)
        if not report.dry_run:
            storage.delete(key)
    report.removed_generations.append(generation_id)
    if not report.dry_run:
        db.session.execute(delete(Generation).where(Generation.id == generation_id, ~Generation.images.any()))
        db.session.commit()


def delete_unused_uploads(cutoff: datetime, report: CleanupReport) -> None:
    """Delete uploads made before ``cutoff`` that no generation uses: the file first, then the row."""
    storage = services.storage()
    unused = list(db.session.scalars(select(Upload).where(
        Upload.created_at < cutoff, ~select(Generation.id).where(Generation.upload_id == Upload.id).exists())
        .limit(BATCH * 10)))
    for upload in unused:
        report.unused_uploads.append(upload.id)
        report.add_file(upload.storage_key)
        if not report.dry_run:
            storage.delete(upload.storage_key)
    if unused and not report.dry_run:
        db.session.execute(delete(Upload).where(Upload.id.in_([u.id for u in unused]),
                                                ~select(Generation.id).where(Generation.upload_id == Upload.id).exists()))
        db.session.commit()


def sweep_orphans(before: float, report: CleanupReport) -> None:
    """Delete generation files that no row refers to, last modified before ``before`` (unix time)."""
    pending: list[str] = []
    for key, modified in services.storage().list("users/"):
        if modified < before and GENERATION_FILE_RE.match(key) and not report.has_file(key):
            pending.append(key)
            if len(pending) >= BATCH:
                _sweep(pending, report)
                pending = []
    if pending:
        _sweep(pending, report)


def _sweep(keys: list[str], report: CleanupReport) -> None:
    """Delete the keys of this batch that no image or generation refers to (active generations excepted)."""
    generation_ids = {GENERATION_FILE_RE.match(key).group(1) for key in keys}
    active = set(db.session.scalars(select(Generation.id).where(
        Generation.id.in_(generation_ids), Generation.status.in_(list(ACTIVE_STATUSES)))))
    referenced = set(db.session.scalars(select(Image.storage_key).where(Image.storage_key.in_(keys))))
    referenced |= set(db.session.scalars(select(Image.thumbnail_key).where(Image.thumbnail_key.in_(keys))))
    referenced |= set(db.session.scalars(select(Image.timelapse_key).where(Image.timelapse_key.in_(keys))))
    referenced |= set(db.session.scalars(select(Generation.init_image_key).where(Generation.init_image_key.in_(keys))))
    referenced |= set(db.session.scalars(select(GenerationEdit.mask_key).where(GenerationEdit.mask_key.in_(keys))))
    storage = services.storage()
    for key in keys:
        if key in referenced or GENERATION_FILE_RE.match(key).group(1) in active:
            continue
        report.orphan_files.append(key)
        if not report.dry_run:
            storage.delete(key)
