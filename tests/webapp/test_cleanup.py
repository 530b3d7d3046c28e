"""Scheduled cleanup: expired images go (files, then rows), starred stay, orphans are swept, work in progress is safe."""
from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta

import pytest
from redis import Redis
from rq.cron import CronScheduler
from rq.job import Job, JobStatus

from jobs import chores
from tests.support import add_generation, add_report, queued_jobs
from webapp.cleanup import STALE_MESSAGE, delete_expired_images
from webapp.config import ConfigError, cleanup_cron
from webapp.extensions import db
from webapp.generations import create_generation
from webapp.queues import chore_queue
from webapp.storage import create_storage, generation_prefix
from webapp.tables import Generation, GenerationStatus, Image, Report, User, utcnow


def stored_keys(app) -> set[str]:
    return {key for key, _ in create_storage(app.config).list("users/")}


def save(app, key: str, age: timedelta = timedelta()) -> None:
    """Store a small file whose modification time is ``age`` ago."""
    storage = create_storage(app.config)
    storage.save(key, b"data", "application/octet-stream")
    stamp = time.time() - age.total_seconds()
    os.utime(storage.local_path(key), (stamp, stamp))


def snapshot(app) -> tuple:
    """Every row that cleanup may touch, and every stored file."""
    with app.app_context():
        images = sorted(db.session.scalars(db.select(Image.id)))
        generations = sorted((g.id, g.status) for g in db.session.scalars(db.select(Generation)))
        reports = sorted(db.session.scalars(db.select(Report.id)))
    return images, generations, reports, stored_keys(app)


@pytest.mark.db
def test_cleanup_with_time_moved_forward(app, make_user, make_image, redis_url):
    ada = make_user("ada@example.com")
    expired = make_image(ada, prompt="will expire", is_public=True, published_at=utcnow())
    starred = make_image(ada, prompt="kept by its star", is_starred=True)
    add_report(app, expired, make_user())
    failed_long_ago = add_generation(app, ada, GenerationStatus.FAILED)
    with app.app_context():
        stuck = create_generation(db.session.get(User, ada), {
            "prompt": "never ran", "negative_prompt": "", "model": "easel-tiny", "width": 64, "height": 64,
            "steps": 4, "guidance": 5.0, "seed": 1, "num_images": 1, "style": "none"}, job_timeout=60).id
        expired_row = db.session.get(Image, expired)
        expired_files = {expired_row.storage_key, expired_row.thumbnail_key}
        preview = generation_prefix(ada, expired_row.generation_id) + "preview.webp"
        expired_generation = expired_row.generation_id
    orphan = f"users/{ada}/{uuid.uuid4()}/0.png"
    unrelated = f"users/{ada}/uploads/notes.txt"  # not a generation's file: never swept
    for key in (preview, orphan, unrelated):
        save(app, key)
    later = utcnow() + timedelta(days=31)
    before = snapshot(app)

    with app.app_context():
        dry = delete_expired_images(now=later, dry_run=True)
    assert snapshot(app) == before  # a dry run changes nothing
    assert queued_jobs(redis_url) == 1
    assert dry.expired_images == [expired] and set(dry.image_files) == expired_files | {preview}
    assert dry.orphan_files == [orphan] and dry.stale_generations == [stuck]
    assert "Would delete 1 expired image(s)" in dry.summary()

    with app.app_context():
        report = delete_expired_images(now=later)
        assert db.session.get(Image, expired) is None and db.session.get(Image, starred) is not None
        assert db.session.get(Generation, expired_generation) is None
        assert db.session.get(Generation, failed_long_ago) is None  # finished without images, past retention
        assert db.session.scalar(db.select(db.func.count()).select_from(Report)) == 0
        assert db.session.get(Generation, stuck) is None  # stopped as stale, then past retention too
        starred_row = db.session.get(Image, starred)
        starred_files = {starred_row.storage_key, starred_row.thumbnail_key}
    assert stored_keys(app) == starred_files | {unrelated}
    assert report.counts() == {"dry_run": False, "expired_images": 1, "image_files": 3, "orphan_files": 1,
                               "stale_generations": 1, "removed_generations": 3, "unused_uploads": 0}
    assert Job.fetch(stuck, connection=Redis.from_url(redis_url)).get_status() == JobStatus.CANCELED
    assert queued_jobs(redis_url) == 0

    after = snapshot(app)
    with app.app_context():
        again = delete_expired_images(now=later)  # idempotent
    assert snapshot(app) == after
    assert again.counts()["expired_images"] == again.counts()["orphan_files"] == 0


def test_retention_days_0_keeps_every_image(app, make_user, make_image):
    ada = make_user("ada@example.com")
    old = make_image(ada, prompt="from long ago", created_at=utcnow() - timedelta(days=400))
    app.config["RETENTION_DAYS"] = 0
    with app.app_context():
        report = delete_expired_images(now=utcnow() + timedelta(days=400))
        assert db.session.get(Image, old) is not None
    assert report.counts()["expired_images"] == report.counts()["removed_generations"] == 0


def test_cleanup_spares_work_in_progress(app, make_user, make_image):
    ada = make_user("ada@example.com")
    fresh = make_image(ada, prompt="made today")
    running = add_generation(app, ada, GenerationStatus.RUNNING, age=timedelta(hours=3))
    stale = add_generation(app, ada, GenerationStatus.QUEUED, age=timedelta(days=2))
    in_progress = f"users/{ada}/{running}/0.png"  # a worker is saving this generation's files
    young_orphan = f"users/{ada}/{uuid.uuid4()}/0.png"  # maybe a worker mid-save: too young to sweep
    old_orphan = f"users/{ada}/{uuid.uuid4()}/0.thumb.webp"
    save(app, in_progress, timedelta(hours=2))
    save(app, young_orphan, timedelta(minutes=5))
    save(app, old_orphan, timedelta(hours=2))
    with app.app_context():
        report = delete_expired_images()
        assert db.session.get(Image, fresh) is not None
        assert db.session.get(Generation, running).status == GenerationStatus.RUNNING
        stale_row = db.session.get(Generation, stale)
        assert (stale_row.status, stale_row.error) == (GenerationStatus.FAILED, STALE_MESSAGE)
    assert report.orphan_files == [old_orphan] and report.expired_images == []
    assert report.stale_generations == [stale] and report.removed_generations == []
    assert {in_progress, young_orphan} <= stored_keys(app) and old_orphan not in stored_keys(app)
    with app.app_context():  # a failure like any other (``webapp.lifecycle.fail``): its owner is told
        mailed = [job.args[0] for job in chore_queue().get_jobs() if job.func_name == "jobs.mail.send_generation_email"]
    assert mailed == [stale]


def test_cleanup_command_and_chore(app, runner, make_user, make_image):
    ada = make_user("ada@example.com")
    old = make_image(ada, prompt="forty days old", created_at=utcnow() - timedelta(days=40))
    kept = make_image(ada, prompt="old but starred", is_starred=True, created_at=utcnow() - timedelta(days=40))
    dry = runner.invoke(args=["cleanup", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"would delete image {old}" in dry.output and "Would delete 1 expired image(s) (2 file(s))" in dry.output
    with app.app_context():
        assert db.session.get(Image, old) is not None
    done = runner.invoke(args=["cleanup"])
    assert done.exit_code == 0 and "Deleted 1 expired image(s)" in done.output
    with app.app_context():
        assert db.session.get(Image, old) is None and db.session.get(Image, kept) is not None
        assert chores.cleanup() == {"dry_run": False, "expired_images": 0, "image_files": 0, "orphan_files": 0,
                                    "stale_generations": 0, "removed_generations": 0, "unused_uploads": 0}


def test_cron_runs_cleanup_daily_at_the_configured_time(monkeypatch, redis_url):
    monkeypatch.setenv("CLEANUP_AT", "04:05")
    scheduler = CronScheduler(connection=Redis.from_url(redis_url))
    scheduler.load_config_from_file("jobs.cron")
    entries = {job.func_name: job for job in scheduler.get_jobs()}
    cleanup = entries["jobs.chores.cleanup"]
    assert (cleanup.cron, cleanup.queue_name, cleanup.job_options["job_timeout"]) == ("5 4 * * *", "default", 3600)
    assert "jobs.chores.reap_abandoned_generations" in entries
    assert cleanup_cron("23:59") == "59 23 * * *"
    for bad in ("24:00", "3:5", "noon", "03:60"):
        with pytest.raises(ConfigError, match="CLEANUP_AT"):
            cleanup_cron(bad)


@pytest.mark.db
def test_uploads_no_generation_uses_are_deleted_after_a_day(app, signed_in):
    """An upload whose generation is gone goes after a day; one still in use stays."""
    from pathlib import Path

    from PIL import Image as PILImage

    from tests.webapp.studio.test_start_image import post_start
    from tests.webapp.test_uploads import encoded
    from webapp.tables import Upload

    app.config["MAX_ACTIVE_PER_USER"] = 5
    picture = encoded(PILImage.new("RGB", (64, 64), "red"), "PNG")
    kept_generation, gone_generation = (
        post_start(signed_in, files={"init_image": (picture, "a.png")}).headers["Location"].rsplit("/", 1)[1]
        for _ in range(2))
    media = Path(app.config["MEDIA_DIR"])
    with app.app_context():
        kept = db.session.get(Generation, kept_generation).upload_id
        gone = db.session.get(Generation, gone_generation).upload_id
        gone_key = db.session.get(Upload, gone).storage_key
        db.session.delete(db.session.get(Generation, gone_generation))
        db.session.commit()
        assert delete_expired_images(now=utcnow() + timedelta(hours=12)).unused_uploads == []  # not a day yet
        report = delete_expired_images(now=utcnow() + timedelta(days=1, hours=1))
        assert report.unused_uploads == [gone]
        assert db.session.get(Upload, gone) is None and db.session.get(Upload, kept) is not None
    assert not (media / gone_key).exists()
    assert len(list((media / gone_key).parent.glob("*.png"))) == 1
