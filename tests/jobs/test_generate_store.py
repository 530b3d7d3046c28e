"""An upload that fails half-way leaves no rows and no files behind (``jobs.generate._store`` on S3)."""
from __future__ import annotations

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from tests.support import bucket_keys
from webapp import services
from webapp.extensions import db
from webapp.storage import StorageError
from webapp.tables import Generation, GenerationStatus, Image


class ThumbnailsFail:
    """Wraps the real S3 storage; every WebP upload fails, as if the server went away mid-way."""

    def __init__(self, inner):
        self.inner = inner

    def save(self, key: str, data: bytes, content_type: str) -> None:
        if key.endswith(".webp"):
            raise StorageError("connection reset while uploading")
        self.inner.save(key, data, content_type)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_half_stored_generation_is_rolled_back(app, make_user, s3_bucket):
    from jobs.generate import _store

    user_id = make_user()
    with app.app_context():
        services._services().storage = ThumbnailsFail(services.storage())
        generation = Generation(user_id=user_id, status=GenerationStatus.RUNNING, prompt="x", model="easel-tiny",
                                width=64, height=64, steps=2, guidance=5.0, seed=1, num_images=2)
        db.session.add(generation)
        db.session.commit()
        pictures = [PILImage.new("RGB", (64, 64), "red"), PILImage.new("RGB", (64, 64), "blue")]
        with pytest.raises(StorageError):
            _store(generation, pictures)
        assert db.session.scalar(select(func.count()).select_from(Image)) == 0
        assert db.session.get(Generation, generation.id).status == GenerationStatus.RUNNING  # run() marks it failed
    assert bucket_keys(s3_bucket) == []  # the PNG that did upload was removed again
