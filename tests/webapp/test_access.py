"""Per-user access: another user gets 404 on everything of mine; admins may look."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.support import Auth, add_generation, audit_entries, csrf_token
from webapp.extensions import db
from webapp.tables import Generation, Image, utcnow

pytestmark = pytest.mark.db


@pytest.fixture
def ada_and_bob(app, make_user, make_image):
    ada = make_user("ada@example.com")
    make_user("bob@example.com")
    image_id = make_image(ada)
    with app.app_context():
        generation_id = db.session.get(Image, image_id).generation_id
    return image_id, generation_id


def routes(image_id: str, generation_id: str) -> list[tuple[str, str]]:
    return [
        ("GET", f"/generations/{generation_id}"),
        ("GET", f"/api/generations/{generation_id}"),
        ("GET", f"/generations/{generation_id}/preview.webp"),
        ("POST", f"/generations/{generation_id}/cancel"),
        ("GET", f"/images/{image_id}"),
        ("GET", f"/images/{image_id}/file"),
        ("GET", f"/images/{image_id}/thumbnail"),
        ("POST", f"/images/{image_id}/delete"),
        ("POST", f"/images/{image_id}/star"),
        ("POST", f"/images/{image_id}/publish"),
    ]


def test_other_user_gets_404_everywhere(app, client, ada_and_bob):
    image_id, generation_id = ada_and_bob
    Auth(client).login("bob@example.com")
    token = csrf_token(client, "/")
    for method, path in routes(image_id, generation_id):
        response = client.open(path, method=method, data={"csrf_token": token} if method == "POST" else None)
        assert response.status_code == 404, (method, path)
    with app.app_context():
        assert db.session.get(Image, image_id) is not None
        assert db.session.get(Generation, generation_id).status == "succeeded"
    assert image_id not in client.get("/gallery").get_data(as_text=True)


def test_anonymous_gets_404_or_sign_in(client, ada_and_bob):
    image_id, generation_id = ada_and_bob
    assert client.get(f"/api/generations/{generation_id}").status_code == 404
    for path in (f"/images/{image_id}/file", f"/generations/{generation_id}"):
        response = client.get(path)
        assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_owner_and_admin_can_see(client, make_user, ada_and_bob):
    image_id, generation_id = ada_and_bob
    make_user("root@example.com", is_admin=True)
    for email in ("ada@example.com", "root@example.com"):
        auth = Auth(client)
        auth.login(email)
        assert client.get(f"/api/generations/{generation_id}").get_json()["status"] == "succeeded"
        response = client.get(f"/images/{image_id}/file")
        assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
        response.close()
        auth.logout()


def test_admin_gets_404_on_owners_actions_and_nothing_changes(app, client, make_user, make_image, ada_and_bob):
    image_id, _ = ada_and_bob
    queued = add_generation(app, db_user_id(app, "ada@example.com"))
    make_user("root@example.com", is_admin=True)
    Auth(client).login("root@example.com")
    token = csrf_token(client, "/")
    for path, extra in [(f"/images/{image_id}/publish", {"public": "1"}), (f"/images/{image_id}/star", {"starred": "1"}),
                        (f"/images/{image_id}/delete", {}), (f"/generations/{queued}/cancel", {})]:
        assert client.post(path, data={"csrf_token": token, **extra}).status_code == 404, path
    with app.app_context():
        image = db.session.get(Image, image_id)
        assert not image.is_public and not image.is_starred
        assert db.session.get(Generation, queued).status == "queued"
    assert audit_entries(app) == []
    page = client.get(f"/images/{image_id}").get_data(as_text=True)
    assert 'id="admin-hide"' in page and 'id="publish"' not in page and 'id="star"' not in page
    assert 'id="delete"' not in page  # the admin's delete is the audited one (id="admin-delete")


def test_admin_cancels_through_the_audited_action(app, client, make_user, redis_url):
    ada = make_user("ada@example.com")
    root = make_user("root@example.com", is_admin=True)
    queued = add_generation(app, ada)
    Auth(client).login("root@example.com")
    page = client.get(f"/generations/{queued}").get_data(as_text=True)
    assert f'action="/admin/generations/{queued}/cancel"' in page
    response = client.post(f"/admin/generations/{queued}/cancel", data={"csrf_token": csrf_token(client, "/")})
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(Generation, queued).status == "canceled"
    assert audit_entries(app) == [("generation.cancel", "generation", queued, root)]
    Auth(client).logout()
    Auth(client).login("ada@example.com")
    assert client.post(f"/admin/generations/{queued}/cancel",
                       data={"csrf_token": csrf_token(client, "/")}).status_code == 404


def db_user_id(app, email: str) -> int:
    from webapp.tables import User

    with app.app_context():
        return db.session.scalar(select(User.id).where(User.email == email))


def test_malformed_ids_are_404(client, make_user):
    make_user("ada@example.com")
    Auth(client).login()
    for path in ("/images/../../etc/passwd/file", "/images/not-a-uuid", "/api/generations/1%20OR%201=1"):
        assert client.get(path).status_code == 404


def test_public_image_visible_to_others_hidden_is_not(app, client, make_user, make_image):
    ada = make_user("ada@example.com")
    make_user("bob@example.com")
    public = make_image(ada, is_public=True)
    hidden = make_image(ada, is_public=True, is_hidden=True)
    Auth(client).login("bob@example.com")
    assert client.get(f"/images/{public}").status_code == 200
    assert client.get(f"/images/{hidden}").status_code == 404
    token = csrf_token(client, "/")
    assert client.post(f"/images/{public}/delete", data={"csrf_token": token}).status_code == 404


def test_delete_star_publish(app, client, make_user, make_image):
    ada = make_user("ada@example.com")
    # in its last week of retention, the owner is told when it goes and what keeps it
    image_id = make_image(ada, created_at=utcnow() - timedelta(days=app.config["RETENTION_DAYS"] - 3))
    Auth(client).login()
    token = csrf_token(client, f"/images/{image_id}")
    detail = client.get(f"/images/{image_id}").get_data(as_text=True)
    assert "Kept until" in detail and "Star keeps it for good" in detail
    assert client.post(f"/images/{image_id}/star", data={"csrf_token": token}).status_code == 400  # says which state
    assert client.post(f"/images/{image_id}/star", data={"csrf_token": token, "starred": "1"}).status_code == 303
    assert "Kept until" not in client.get(f"/images/{image_id}").get_data(as_text=True)  # starred: kept for good
    assert client.post(f"/images/{image_id}/publish", data={"csrf_token": token, "public": "1"}).status_code == 303
    assert client.post(f"/images/{image_id}/delete").status_code == 400  # no CSRF token
    with app.app_context():
        image = db.session.get(Image, image_id)
        assert image.is_starred and image.is_public and image.published_at is not None
        paths = [app.config["MEDIA_DIR"] + "/" + key for key in (image.storage_key, image.thumbnail_key)]
    import os

    assert all(os.path.exists(p) for p in paths)
    assert client.post(f"/images/{image_id}/delete", data={"csrf_token": token}).status_code == 303
    with app.app_context():
        assert db.session.get(Image, image_id) is None
        assert db.session.scalar(select(Generation)) is None
    assert not any(os.path.exists(p) for p in paths)


def test_gallery_newest_first_and_paginated(app, client, make_user, make_image):
    from datetime import timedelta

    from webapp.tables import utcnow

    ada = make_user("ada@example.com")
    ids = [make_image(ada, prompt=f"picture {n}", created_at=utcnow() - timedelta(minutes=n)) for n in range(26)]
    Auth(client).login()
    first = client.get("/gallery").get_data(as_text=True)
    second = client.get("/gallery?page=2").get_data(as_text=True)
    assert first.index(ids[0]) < first.index(ids[1])
    assert ids[25] not in first and ids[25] in second
    assert "Page 1 of 2" in first
    assert client.get("/gallery?page=abc").status_code == 200
