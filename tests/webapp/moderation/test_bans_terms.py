"""Bans (sessions end, sign-in and submission refused, work canceled, images unpublished) and blocked terms."""
from __future__ import annotations

import pytest
from redis import Redis
from rq.job import Job, JobStatus

from tests.support import FIELDS, Auth, add_generation, audit_entries, post, queued_jobs, sign_in
from webapp import progress
from webapp.extensions import db
from webapp.generations import GenerationRefused, create_generation
from webapp.moderation.blocked_terms import find_blocked_term, term_pattern
from webapp.tables import BlockedTerm, Generation, GenerationStatus, Image, User, utcnow

PARAMS = {"prompt": "a lighthouse", "negative_prompt": "", "model": "easel-tiny", "width": 64, "height": 64,
          "steps": 4, "guidance": 5.0, "seed": 1, "num_images": 1, "style": "none"}


@pytest.fixture
def admin(app, make_user):
    make_user("root@example.com", is_admin=True)
    return sign_in(app, "root@example.com")


@pytest.fixture
def usable_model(app, tmp_path):
    """A catalog whose model counts as installed, so the studio form validates (no model runs here)."""
    folder = tmp_path / "fake-model"
    folder.mkdir()
    (folder / "model_index.json").write_text("{}")
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(f'[models.easel-tiny]\nlabel = "Tiny"\nkind = "sd"\npath = "{folder}"\n'
                       "default_width = 64\ndefault_height = 64\ndefault_steps = 8\ndefault_guidance = 5.0\n"
                       "sizes = [[64, 64]]\nmax_steps = 50\nmax_guidance = 15.0\nmax_images = 4\njob_timeout = 60\n")
    app.config["EASEL_CATALOG"] = str(catalog)


@pytest.mark.db
def test_ban_cancels_work_ends_sessions_and_blocks_sign_in(app, admin, make_user, make_image, redis_url):
    ada = make_user("ada@example.com")
    published = make_image(ada, is_public=True, published_at=utcnow())
    session = sign_in(app, "ada@example.com")
    with app.app_context():
        user = db.session.get(User, ada)
        queued = [create_generation(user, dict(PARAMS), job_timeout=60).id for _ in range(2)]
    running = add_generation(app, ada, GenerationStatus.RUNNING)
    assert queued_jobs(redis_url) == 2

    response = post(admin, f"/admin/users/{ada}/ban", "/admin/users", reason="spam bot")
    assert "ada@example.com is banned: 3 generation(s) canceled, 1 image(s) unpublished" in admin.get(
        response.headers["Location"]).get_data(as_text=True)

    connection = Redis.from_url(redis_url)
    assert queued_jobs(redis_url) == 0
    assert all(Job.fetch(job_id, connection=connection).get_status() == JobStatus.CANCELED for job_id in queued)
    assert connection.exists(progress.cancel_key(running))  # the worker running it stops at its next step
    with app.app_context():
        statuses = {g.id: g.status for g in db.session.scalars(db.select(Generation))}
        assert [statuses[g] for g in queued] == ["canceled", "canceled"]
        assert db.session.get(Image, published).is_public is False
        user = db.session.get(User, ada)
        with pytest.raises(GenerationRefused, match="suspended"):
            create_generation(user, dict(PARAMS), job_timeout=60)
    assert session.get("/gallery").status_code == 302  # the session ended
    refused = Auth(app.test_client()).login("ada@example.com")
    assert refused.status_code == 400 and "suspended" in refused.get_data(as_text=True)
    ((action, target_type, target_id, _),) = audit_entries(app, "user.ban")
    assert (action, target_type, target_id) == ("user.ban", "user", str(ada))

    assert post(admin, f"/admin/users/{ada}/unban", "/admin/users").status_code == 303
    assert Auth(app.test_client()).login("ada@example.com").status_code == 302
    assert [e[:3] for e in audit_entries(app, "user.unban")] == [("user.unban", "user", str(ada))]
    with app.app_context():
        assert db.session.get(Image, published).is_public is False  # the owner publishes again if they like


def test_user_search_and_no_self_ban(app, admin, make_user):
    make_user("ada@example.com", display_name="Countess")
    make_user("bob@example.com", is_banned=True)
    assert "ada@example.com" in admin.get("/admin/users?q=count").get_data(as_text=True)
    assert "bob@example.com" not in admin.get("/admin/users?q=count").get_data(as_text=True)
    banned = admin.get("/admin/users?show=banned").get_data(as_text=True)
    assert "bob@example.com" in banned and "ada@example.com" not in banned
    with app.app_context():
        root = db.session.scalar(db.select(User.id).where(User.email == "root@example.com"))
    response = post(admin, f"/admin/users/{root}/ban", "/admin/users")
    assert "cannot ban your own account" in admin.get(response.headers["Location"]).get_data(as_text=True)
    assert post(admin, "/admin/users/99999/ban", "/admin/users").status_code == 404
    assert audit_entries(app) == []


@pytest.mark.parametrize(("term", "text", "blocked"), [
    ("gore", "so much GORE!", True),
    ("gore", "a gorey tale", False),
    ("gore", "al gore", True),
    ("blood bath", "a Blood \n bath at dawn", True),
    ("blood bath", "bloodbath", False),
    ("c++", "code in c++ please", True),
    ("c++", "c++x", False),
])
def test_term_pattern_matches_whole_words(term, text, blocked):
    assert bool(term_pattern(term).search(text)) is blocked


def test_blocked_terms_refuse_prompts(app, admin, make_user, usable_model, redis_url):
    make_user("ada@example.com")
    artist = sign_in(app, "ada@example.com")
    response = post(admin, "/admin/terms", "/admin/terms", term="  Blood   Bath ")
    assert response.status_code == 303
    assert "blood bath" in admin.get("/admin/terms").get_data(as_text=True)
    duplicate = post(admin, "/admin/terms", "/admin/terms", term="BLOOD BATH")
    assert duplicate.status_code == 400 and "already blocked" in duplicate.get_data(as_text=True)
    assert post(admin, "/admin/terms", "/admin/terms", term="!!!").status_code == 400

    refused = post(artist, "/generations", "/", **{**FIELDS, "prompt": "A blood  BATH at dawn"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "contains “blood bath”, which this site does not allow" in html and "invalid-feedback" in html
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Generation)) == 0
    assert queued_jobs(redis_url) == 0
    # Whole words only, and the negative prompt says what to avoid, so it is not checked.
    ok = post(artist, "/generations", "/", **{**FIELDS, "prompt": "a bloodbath", "negative_prompt": "blood bath"})
    assert ok.status_code == 303, ok.get_data(as_text=True)[:1000]

    with app.app_context():
        term_id = db.session.scalar(db.select(BlockedTerm.id))
    assert post(admin, f"/admin/terms/{term_id}/delete", "/admin/terms").status_code == 303
    with app.app_context():
        assert find_blocked_term("a blood bath") is None
    assert [e[:3] for e in audit_entries(app)] == [("term.add", "term", str(term_id)),
                                                   ("term.remove", "term", str(term_id))]


def test_unbanning_revives_no_token_result_link_or_share_link(app, admin, make_user, make_image):
    """A ban ends tokens and links for good: the unbanned person signs in again, and makes new ones."""
    from tests.support import api_token, bearer, result_token
    from webapp.collections import store

    ada = make_user("ada@example.com")
    image_id = make_image(ada)
    secret = api_token(app, ada)
    link = result_token(app, image_id)
    with app.app_context():
        collection = store.create_collection(ada, "Lighthouses")
        share = store.share(collection)
    client = app.test_client()
    assert client.get("/api/v1/models", headers=bearer(secret)).status_code == 200
    assert client.get(f"/s/{link}").status_code == 200 and client.get(f"/c/{share}").status_code == 200

    assert post(admin, f"/admin/users/{ada}/ban", "/admin/users", reason="spam").status_code == 303
    assert post(admin, f"/admin/users/{ada}/unban", "/admin/users").status_code == 303
    assert client.get("/api/v1/models", headers=bearer(secret)).status_code == 401
    assert client.get(f"/s/{link}").status_code == 404
    assert client.get(f"/c/{share}").status_code == 404
    with app.app_context():
        assert db.session.get(User, ada).is_banned is False
    assert sign_in(app, "ada@example.com").get("/auth/tokens").status_code == 200  # back in; new tokens work
    assert client.get("/api/v1/models", headers=bearer(api_token(app, ada, "new"))).status_code == 200
    assert client.get(f"/s/{result_token(app, image_id)}").status_code == 200
