"""The Storage interface behaves the same on local disk and on S3 (moto's real HTTP API)."""
from __future__ import annotations

import pytest
import requests

from tests.support import bucket_keys
from webapp.storage import LocalStorage, StorageError, create_storage
from webapp.storage.s3 import S3Storage


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "media")
    bucket = request.getfixturevalue("s3_bucket")
    return S3Storage(bucket=bucket.name, prefix="site/", endpoint_url=bucket.endpoint)


def test_save_open_exists_list_delete(storage):
    storage.save("users/1/g1/0.png", b"png-bytes", "image/png")
    storage.save("users/1/g1/0.thumb.webp", b"webp", "image/webp")
    storage.save("users/2/g2/0.png", b"other", "image/png")
    assert storage.open("users/1/g1/0.png") == b"png-bytes"
    assert storage.exists("users/1/g1/0.png") and not storage.exists("users/1/g1/9.png")
    assert sorted(key for key, _ in storage.list("users/1/")) == ["users/1/g1/0.png", "users/1/g1/0.thumb.webp"]
    assert all(modified > 0 for _, modified in storage.list())
    storage.save("users/1/g1/0.png", b"replaced", "image/png")
    assert storage.open("users/1/g1/0.png") == b"replaced"
    storage.delete("users/1/g1/0.thumb.webp")
    storage.delete("users/1/g1/never-there.png")  # a missing file is not an error
    assert storage.delete_prefix("users/1/") == 1
    assert [key for key, _ in storage.list()] == ["users/2/g2/0.png"]
    with pytest.raises(FileNotFoundError):
        storage.open("users/1/g1/0.png")


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs/path.png", "users/../x.png", "users//x.png", "a b.png", ""])
def test_keys_that_could_escape_are_refused(storage, key):
    with pytest.raises(StorageError):
        storage.save(key, b"x", "image/png")


def test_s3_keeps_content_types_uses_the_prefix_and_presigns(s3_bucket):
    storage = S3Storage(bucket=s3_bucket.name, prefix="/site/", endpoint_url=s3_bucket.endpoint)
    storage.save("users/1/g/0.png", b"\x89PNG fake", "image/png")
    storage.save("users/1/g/0.thumb.webp", b"RIFF fake", "image/webp")
    assert sorted(bucket_keys(s3_bucket)) == ["site/users/1/g/0.png", "site/users/1/g/0.thumb.webp"]
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key="site/users/1/g/0.thumb.webp")
    assert head["ContentType"] == "image/webp"

    inline = storage.download_url("users/1/g/0.png", "image/png")
    assert inline.startswith(s3_bucket.endpoint + f"/{s3_bucket.name}/site/users/1/g/0.png?")
    assert "X-Amz-Expires=300" in inline and "X-Amz-Signature=" in inline
    response = requests.get(inline, timeout=10)
    assert response.status_code == 200 and response.content == b"\x89PNG fake"
    assert response.headers["Content-Type"] == "image/png"
    assert "attachment" not in response.headers.get("Content-Disposition", "")

    download = requests.get(storage.download_url("users/1/g/0.png", "image/png", "easel-42-abc.png"), timeout=10)
    assert download.headers["Content-Disposition"] == 'attachment; filename="easel-42-abc.png"'


def test_s3_errors_become_storage_errors(s3_bucket):
    missing = S3Storage(bucket="no-such-bucket-here", endpoint_url=s3_bucket.endpoint)
    with pytest.raises(StorageError, match="could not upload"):
        missing.save("users/1/g/0.png", b"x", "image/png")
    with pytest.raises(StorageError):
        list(missing.list())
    with pytest.raises(StorageError):
        S3Storage(bucket="")


def test_local_storage_streams_instead_of_presigning(tmp_path):
    storage = LocalStorage(tmp_path)
    assert storage.download_url("users/1/g/0.png", "image/png") is None


def test_create_storage_picks_the_backend(tmp_path, s3_bucket):
    assert isinstance(create_storage({"STORAGE": "local", "MEDIA_DIR": str(tmp_path)}), LocalStorage)
    s3 = create_storage({"STORAGE": "s3", "S3_BUCKET": s3_bucket.name, "S3_ENDPOINT_URL": s3_bucket.endpoint,
                         "S3_PREFIX": "p"})
    assert isinstance(s3, S3Storage) and s3.prefix == "p/"
    with pytest.raises(StorageError, match="STORAGE must be"):
        create_storage({"STORAGE": "ftp"})
