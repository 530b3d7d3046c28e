"""The admin area: the gate, the dashboard, the moderation queue, bulk image actions, the audit log."""
from __future__ import annotations

from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue, SimpleWorker, Worker
from rq.job import Job
from werkzeug.routing import IntegerConverter

from tests.support import add_generation, add_report, audit_entries, csrf_token, free_port, point_redis_at, post, sign_in
from webapp.extensions import db
from webapp.queues import SERIALIZER
from webapp.storage import create_storage
from webapp.tables import AuditLog, BlockedTerm, Generation, GenerationStatus, Image, Report, User, utcnow

ADMIN = "root@example.com"


@pytest.fixture
def admin(app, make_user):
    """A signed-in admin's client."""
    make_user(ADMIN, is_admin=True)
    return sign_in(app, ADMIN)


def admin_urls(app, ids: dict[str, object]) -> list[tuple[str, str]]:
    """(method, url) for every admin rule, with real ids filled in where the rule takes one."""
    urls = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if not rule.rule.startswith("/admin"):
                continue
            values = {name: ids["int"] if isinstance(rule._converters[name], IntegerConverter) else ids.get(name, "x")
                      for name in rule.arguments}
            url = rule.build(values, append_unknown=False)[1]
            urls += [(method, url) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return urls


@pytest.mark.parametrize("who", ["anonymous", "user"])
def test_every_admin_route_is_404_for_non_admins(app, make_user, make_image, who):
    victim = make_user("victim@example.com")
    image_id = make_image(victim, is_public=True)
    add_report(app, image_id, victim)
    make_user("user@example.com")
    client = sign_in(app, "user@example.com") if who == "user" else app.test_client()
    token = csrf_token(client, "/auth/account" if who == "user" else "/auth/login")
    with app.app_context():
        db.session.add(BlockedTerm(term="gore"))
        db.session.commit()
        term_id = db.session.scalar(db.select(BlockedTerm.id))
    urls = admin_urls(app, {"int": victim, "image_id": image_id, "term_id": term_id})
    assert len(urls) >= 12 and ("POST", f"/admin/users/{victim}/ban") in urls
    data = {"csrf_token": token, "image_ids": image_id, "action": "delete", "resolution": "delete", "term": "x",
            "weight": "10"}
    answers = {(method, url): client.open(url, method=method, data=data if method == "POST" else None).status_code
               for method, url in urls}
    assert answers == {key: 404 for key in answers}
    with app.app_context():  # and nothing happened
        assert db.session.get(User, victim).is_banned is False
        assert db.session.get(User, victim).queue_weight == 1
        assert db.session.get(Image, image_id).is_hidden is False
        assert db.session.scalar(db.select(db.func.count()).select_from(AuditLog)) == 0


@pytest.mark.db
def test_huge_ids_are_404_not_500(app, admin):
    token = csrf_token(admin, "/admin/users")
    for big in (2**31, 2**63, 10**30):
        for path in (f"/admin/users/{big}/ban", f"/admin/users/{big}/unban", f"/admin/terms/{big}/delete"):
            assert admin.post(path, data={"csrf_token": token}).status_code == 404, path


def test_admin_posts_need_the_csrf_token(app, admin, make_user):
    victim = make_user("victim@example.com")
    assert admin.post(f"/admin/users/{victim}/ban", data={}).status_code == 400
    with app.app_context():
        assert db.session.get(User, victim).is_banned is False


def test_dashboard_queues_workers_and_failed_jobs(app, admin, make_user, redis_url):
    ada = make_user("ada@example.com")
    connection = Redis.from_url(redis_url)
    generate = Queue("generate", connection=connection, serializer=SERIALIZER)
    chores = Queue("default", connection=connection, serializer=SERIALIZER)
    failed_generation = add_generation(app, ada, GenerationStatus.FAILED)
    generate.enqueue("math.sqrt", -1, job_id=failed_generation, description=f"generation {failed_generation}")
    chore = chores.enqueue("math.sqrt", -2, description="a chore that fails")
    SimpleWorker([generate, chores], connection=connection, serializer=SERIALIZER).work(burst=True)
    waiting = add_generation(app, ada, GenerationStatus.QUEUED)
    job = generate.enqueue("math.sqrt", 4, job_id=waiting, description="generation waiting for user 1")
    busy = Worker(["generate"], connection=connection, name="gpu-host.1", serializer=SERIALIZER)
    busy.register_birth()
    busy.prepare_execution(job)
    add_generation(app, ada, GenerationStatus.RUNNING)
    try:
        html = admin.get("/admin/").get_data(as_text=True)
    finally:
        busy.register_death()
    assert '<td class="queued">1</td>' in html  # one job waiting on "generate"
    assert "gpu-host.1" in html and "generation waiting for user 1" in html
    assert 'id="count-running">1<' in html and 'id="count-queued">1<' in html
    assert "a chore that fails" in html and "ValueError: math domain error" in html

    response = post(admin, f"/admin/jobs/{failed_generation}/retry", "/admin/")
    assert response.status_code == 303
    assert failed_generation in generate.job_ids
    with app.app_context():
        generation = db.session.get(Generation, failed_generation)
        assert (generation.status, generation.error) == ("queued", None)

    assert post(admin, f"/admin/jobs/{chore.id}/discard", "/admin/").status_code == 303
    assert chore.id not in chores.failed_job_registry and not Job.exists(chore.id, connection=connection)
    again = post(admin, f"/admin/jobs/{chore.id}/retry", "/admin/")
    assert "no longer in the failed list" in admin.get(again.headers["Location"]).get_data(as_text=True)
    assert [e[:3] for e in audit_entries(app)] == [("job.retry", "job", failed_generation),
                                                     ("job.discard", "job", chore.id)]


def test_dashboard_without_redis(app, admin):
    point_redis_at(app, f"redis://127.0.0.1:{free_port()}/0")  # signing in made the clients: make them anew
    response = admin.get("/admin/")
    assert response.status_code == 200
    assert "Redis is not reachable" in response.get_data(as_text=True)


def test_moderation_queue_hide_delete_dismiss(app, admin, make_user, make_image):
    ada, bob = make_user("ada@example.com"), make_user("bob@example.com")
    to_hide, to_delete, to_keep = (make_image(ada, prompt=p, is_public=True, published_at=utcnow())
                                   for p in ("hide me", "delete me", "keep me"))
    add_report(app, to_hide, bob, "hate", "nasty words")
    add_report(app, to_hide, make_user(), "violence")
    add_report(app, to_delete, bob, "illegal")
    add_report(app, to_keep, bob, "spam")
    html = admin.get("/admin/reports").get_data(as_text=True)
    assert all(text in html for text in ("hide me", "Hateful or harassing", "nasty words", "Illegal content"))
    assert 'id="open-report-count">4<' in html
    with app.app_context():
        files = [db.session.get(Image, to_delete).storage_key, db.session.get(Image, to_delete).thumbnail_key]

    for image_id, resolution in ((to_hide, "hide"), (to_delete, "delete"), (to_keep, "dismiss")):
        assert post(admin, f"/admin/reports/{image_id}", "/admin/terms", resolution=resolution).status_code == 303

    assert "No open reports" in admin.get("/admin/reports").get_data(as_text=True)
    viewer = sign_in(app, "bob@example.com")
    with app.app_context():
        assert db.session.get(Image, to_hide).is_hidden is True
        assert db.session.get(Image, to_delete) is None
        assert not any(create_storage(app.config).exists(key) for key in files)
        assert db.session.get(Image, to_keep).is_hidden is False
        reports = db.session.scalars(db.select(Report).order_by(Report.id)).all()
        assert [(r.image_id, r.status, r.resolution) for r in reports] == [
            (to_hide, "resolved", "hide"), (to_hide, "resolved", "hide"), (to_keep, "resolved", "dismiss")]
    assert viewer.get(f"/images/{to_hide}").status_code == 404
    assert viewer.get(f"/images/{to_keep}").status_code == 200
    admin_id = audit_entries(app)[0][3]
    assert audit_entries(app) == [("report.hide", "image", to_hide, admin_id),
                                  ("report.delete", "image", to_delete, admin_id),
                                  ("report.dismiss", "image", to_keep, admin_id)]
    log = admin.get("/admin/audit").get_data(as_text=True)
    assert all(text in log for text in ("report.hide", "report.delete", "report.dismiss", ADMIN, "delete me"))
    filtered = admin.get("/admin/audit?action=report.dismiss").get_data(as_text=True)
    assert "<code>report.dismiss</code>" in filtered and "<code>report.hide</code>" not in filtered


def test_image_list_filters_and_bulk_actions(app, admin, make_user, make_image):
    ada, bob = make_user("ada@example.com", display_name="Ada"), make_user("bob@example.com")
    old = make_image(ada, prompt="an old public lake", is_public=True, published_at=utcnow(),
                     created_at=utcnow() - timedelta(days=10))
    mine = [make_image(ada, prompt=f"ada picture {i}") for i in range(2)]
    bobs = make_image(bob, prompt="bob's reported picture", is_public=True, published_at=utcnow())
    add_report(app, bobs, ada)

    def shown(query: str) -> set[str]:
        html = admin.get(f"/admin/images?{query}").get_data(as_text=True)
        return {i for i in (old, *mine, bobs) if i in html}

    assert shown("") == {old, *mine, bobs}
    assert shown("user=ada") == {old, *mine}
    assert shown("status=public") == {old, bobs}
    assert shown("status=reported") == {bobs}
    day = (utcnow() - timedelta(days=10)).date().isoformat()
    assert shown(f"since={day}&until={day}") == {old}

    response = admin.post("/admin/images/bulk", data={"csrf_token": csrf_token(admin, "/admin/images"),
                                                      "action": "hide", "image_ids": [old, bobs],
                                                      "next": "/admin/images?status=hidden"})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/images?status=hidden"
    assert shown("status=hidden") == {old, bobs}
    post(admin, "/admin/images/bulk", "/admin/images", action="unhide", image_ids=[bobs])
    assert shown("status=hidden") == {old}
    with app.app_context():
        keys = [k for i in mine for k in (db.session.get(Image, i).storage_key, db.session.get(Image, i).thumbnail_key)]
    post(admin, "/admin/images/bulk", "/admin/images", action="delete", image_ids=mine)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).where(Image.id.in_(mine))) == 0
        assert not any(create_storage(app.config).exists(k) for k in keys)
    empty = post(admin, "/admin/images/bulk", "/admin/images", action="delete")
    assert "Tick at least one image" in admin.get(empty.headers["Location"]).get_data(as_text=True)
    assert sorted(e[:3] for e in audit_entries(app)) == sorted(
        [("image.hide", "image", old), ("image.hide", "image", bobs), ("image.unhide", "image", bobs),
         *[("image.delete", "image", i) for i in mine]])


def test_admin_acts_from_the_image_page(app, admin, make_user, make_image):
    owner = make_user("owner@example.com")
    image_id = make_image(owner, is_public=True)
    page = admin.get(f"/images/{image_id}").get_data(as_text=True)
    assert 'id="admin-hide"' in page and 'id="admin-delete"' in page
    response = post(admin, "/admin/images/bulk", token_page=f"/images/{image_id}", image_ids=image_id, action="hide",
                    next=f"/images/{image_id}")
    assert response.status_code == 303 and response.headers["Location"] == f"/images/{image_id}"
    with app.app_context():
        assert db.session.get(Image, image_id).is_hidden
    assert audit_entries(app)[-1][2] == image_id
    assert ">Unhide<" in admin.get(f"/images/{image_id}").get_data(as_text=True)


def test_an_admin_retry_takes_a_fair_place_not_the_back_of_the_queue(app, admin, make_user, redis_url):
    """Bob's failed generation, retried while Ada has five queued, runs after Ada's first, not after all five."""
    from tests.support import submit_ok
    from webapp.queues import model_queue_name

    app.config["MAX_ACTIVE_PER_USER"] = 10
    bob = make_user("bob@example.com")
    make_user("ada@example.com")
    connection = Redis.from_url(redis_url)
    queue = Queue(model_queue_name("easel-tiny"), connection=connection, serializer=SERIALIZER)
    failed = add_generation(app, bob, GenerationStatus.FAILED)
    queue.enqueue("math.sqrt", -1, job_id=failed, description=f"generation {failed}")
    SimpleWorker([queue], connection=connection, serializer=SERIALIZER).work(burst=True)
    ada = sign_in(app, "ada@example.com")
    waiting = [submit_ok(ada, seed=n) for n in range(5)]
    assert queue.job_ids == waiting

    assert post(admin, f"/admin/jobs/{failed}/retry", "/admin/").status_code == 303
    assert queue.job_ids.index(failed) == 1, queue.job_ids  # Bob's turn comes after Ada's first, as when he asked
