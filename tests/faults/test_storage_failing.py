"""Storage failing under a real job: the S3 server down, the disk full. Each ends with the generation
failed and saying so, no image row, and no file left behind."""
from __future__ import annotations

import errno
import os
from pathlib import Path

from rq import SimpleWorker
from sqlalchemy import func, select

from tests.support import body, bucket_keys, free_port, submit_ok, wait_for_mail, wait_status
from webapp.extensions import db
from webapp.queues import SERIALIZER, generation_queues
from webapp.tables import Image

SAVE_FAILED = "The finished images could not be saved. Please try again later."
FAST = {"steps": 2, "prompt": "a lighthouse at dusk", "num_images": 2}


def _image_rows(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Image))


def test_s3_server_down(app, app_env, signed_in, s3_bucket, workers):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: every upload is refused
    workers.start(queues="generate,default", extra_env={"S3_ENDPOINT_URL": dead})
    generation_id = submit_ok(signed_in, **FAST)
    final = wait_status(signed_in, generation_id, {"succeeded", "failed"}, timeout=120)
    assert (final["status"], final["error"], final["images"]) == ("failed", SAVE_FAILED, [])
    page = signed_in.get(f"/generations/{generation_id}").get_data(as_text=True)
    assert SAVE_FAILED in page
    assert _image_rows(app) == 0 and bucket_keys(s3_bucket) == []
    [message] = wait_for_mail(app_env)
    assert SAVE_FAILED in body(message)


class DiskFull:
    """The media disk has room for ``room`` more bytes: a write past that stops half-way with ENOSPC."""

    def __init__(self, media: Path, room: int):
        self.media, self.room = media.resolve(), room
        self.write_bytes = Path.write_bytes

    def __call__(self, path: Path, data: bytes) -> int:
        if self.media not in Path(path).resolve().parents:
            return self.write_bytes(path, data)
        if len(data) > self.room:
            self.write_bytes(path, data[:self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        self.room -= len(data)
        return self.write_bytes(path, data)


def test_disk_full(app, app_env, signed_in, monkeypatch):
    media = Path(app_env["MEDIA_DIR"])
    media.mkdir(parents=True, exist_ok=True)
    disk = DiskFull(media, room=4096)  # the first PNG fits; the rest do not
    monkeypatch.setattr(Path, "write_bytes", lambda path, data: disk(path, data))
    generation_id = submit_ok(signed_in, **FAST)
    with app.app_context():  # the job runs here, under RQ's own worker, so the fault reaches it
        queues = generation_queues()  # the job waits on its model's queue
        SimpleWorker(queues, connection=queues[0].connection, serializer=SERIALIZER).work(burst=True, with_scheduler=False)
    assert disk.room == 0, "the disk never filled up"
    monkeypatch.undo()
    final = wait_status(signed_in, generation_id, {"succeeded", "failed"}, timeout=10)
    assert (final["status"], final["error"], final["images"]) == ("failed", SAVE_FAILED, [])
    assert _image_rows(app) == 0
    assert [p for p in media.rglob("*") if p.is_file()] == []  # neither the PNG that fit nor the half-written one
