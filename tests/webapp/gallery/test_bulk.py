"""Many of my images at once: star, publish, delete, and the streamed ZIP; other people's ids are ignored."""
from __future__ import annotations

import io
import json
import zipfile

import pytest

from tests.support import csrf_token, sign_in
from webapp.extensions import db
from webapp.storage import create_storage
from webapp.tables import Generation, Image


def bulk(client, path: str, image_ids: list[str], **data):
    return client.post(path, data={"csrf_token": csrf_token(client, "/gallery"), "image_ids": image_ids, **data})


def test_bulk_star_publish_delete_only_touch_my_images(app, two_people):
    ids = two_people["ids"]
    client = sign_in(app, "ada@example.com")
    mine_and_bobs = [ids["fox"], ids["owl"], ids["bob"]]
    response = bulk(client, "/gallery/bulk", mine_and_bobs, action="publish", next="/gallery?q=red")
    assert response.status_code == 303 and response.headers["Location"] == "/gallery?q=red"
    bulk(client, "/gallery/bulk", mine_and_bobs, action="star")
    with app.app_context():
        rows = {name: db.session.get(Image, image_id) for name, image_id in ids.items()}
        assert rows["fox"].is_public and rows["owl"].is_public and rows["fox"].published_at is not None
        assert rows["fox"].is_starred and rows["owl"].is_starred
        assert not rows["bob"].is_public and not rows["bob"].is_starred  # Bob's id was ignored
    bulk(client, "/gallery/bulk", [ids["fox"], ids["bob"]], action="delete")
    with app.app_context():
        assert db.session.get(Image, ids["fox"]) is None
        assert db.session.get(Image, ids["bob"]) is not None
    # Nothing of mine ticked: nothing happens, the person is told.
    response = bulk(client, "/gallery/bulk", [ids["bob"], "not-an-id"], action="delete")
    assert response.status_code == 303
    assert "Tick at least one" in client.get("/gallery").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Image, ids["bob"]) is not None
    # Unknown action, or no CSRF token: refused.
    assert bulk(client, "/gallery/bulk", [ids["owl"]], action="explode").status_code == 400
    assert client.post("/gallery/bulk", data={"image_ids": [ids["owl"]], "action": "delete"}).status_code == 400


def test_hidden_images_are_not_published_in_bulk(app, make_user, make_image):
    ada = make_user("ada@example.com")
    hidden = make_image(ada, prompt="hidden", is_hidden=True)
    client = sign_in(app, "ada@example.com")
    bulk(client, "/gallery/bulk", [hidden], action="publish")
    with app.app_context():
        assert not db.session.get(Image, hidden).is_public


def read_zip(response) -> tuple[zipfile.ZipFile, dict]:
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    assert archive.testzip() is None
    return archive, json.loads(archive.read("manifest.json"))


@pytest.mark.db
def test_zip_has_my_pngs_as_stored_and_a_manifest(app, two_people):
    ids = two_people["ids"]
    client = sign_in(app, "ada@example.com")
    response = bulk(client, "/gallery/download", [ids["sea"], ids["bob"], ids["fox"]])
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="easel-')
    archive, manifest = read_zip(response)
    records = manifest["images"]
    assert [r["id"] for r in records] == [ids["sea"], ids["fox"]]  # Bob's left out, the order kept
    assert sorted(archive.namelist()) == sorted([r["file"] for r in records] + ["manifest.json"])
    storage = create_storage(app.config)
    with app.app_context():
        for record in records:
            image = db.session.get(Image, record["id"])
            generation = db.session.get(Generation, image.generation_id)
            assert archive.read(record["file"]) == storage.open(image.storage_key)  # the PNG bytes as stored
            assert record["prompt"] == generation.prompt and record["seed"] == generation.seed + image.index
            assert record["model"] == "easel-tiny" and record["steps"] == 4 and record["guidance"] == 5.0
            assert record["width"] == 64 and record["created_at"] == image.created_at.isoformat()


def test_zip_of_only_someone_elses_images_is_404(app, two_people):
    client = sign_in(app, "ada@example.com")
    assert bulk(client, "/gallery/download", [two_people["ids"]["bob"]]).status_code == 404
    assert bulk(client, "/gallery/download", []).status_code == 404
    assert client.post("/gallery/download", data={"image_ids": [two_people["ids"]["fox"]]}).status_code == 400
    signed_out = app.test_client()
    response = signed_out.post("/gallery/download", data={"image_ids": [two_people["ids"]["fox"]]})
    assert response.status_code in (302, 400)


def test_zip_streams_one_image_at_a_time(app, make_user, make_image, monkeypatch):
    ada = make_user("ada@example.com")
    ids = [make_image(ada, prompt=f"picture {n}") for n in range(3)]
    client = sign_in(app, "ada@example.com")
    from webapp.storage.local import LocalStorage

    reads = []
    original = LocalStorage.open
    monkeypatch.setattr(LocalStorage, "open", lambda self, key: reads.append(key) or original(self, key))
    response = bulk(client, "/gallery/download", ids)
    chunks = iter(response.response)
    first = next(chunks)
    assert first.startswith(b"PK\x03\x04") and len(reads) == 1  # sent before the next PNG is read
    rest = b"".join(chunks)
    assert len(reads) == 3
    archive = zipfile.ZipFile(io.BytesIO(first + rest))
    assert len(archive.namelist()) == 4


def test_a_missing_file_is_marked_in_the_manifest(app, make_user, make_image):
    ada = make_user("ada@example.com")
    kept, lost = make_image(ada, prompt="kept"), make_image(ada, prompt="lost")
    with app.app_context():
        create_storage(app.config).delete(db.session.get(Image, lost).storage_key)
    client = sign_in(app, "ada@example.com")
    archive, manifest = read_zip(bulk(client, "/gallery/download", [kept, lost]))
    assert [(r["prompt"], r.get("missing", False)) for r in manifest["images"]] == [("kept", False), ("lost", True)]
    assert len(archive.namelist()) == 2


def test_zip_names_never_clash(app, make_user, make_image):
    ada = make_user("ada@example.com")
    alike = [make_image(ada, prompt=f"twin {n}", id=f"0badcafe-0000-4000-8000-00000000000{n}") for n in range(2)]
    client = sign_in(app, "ada@example.com")
    archive, manifest = read_zip(bulk(client, "/gallery/download", alike))  # same seed, ids that start alike
    names = [record["file"] for record in manifest["images"]]
    assert len(set(names)) == 2 and sorted(archive.namelist()) == sorted([*names, "manifest.json"])
