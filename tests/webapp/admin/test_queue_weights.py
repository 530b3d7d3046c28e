"""Queue weights from the admin users page: one account's, or every account a search shows; audited, checked."""
from __future__ import annotations

import pytest
from sqlalchemy import event

from tests.support import audit_entries, csrf_token, free_port, point_redis_at, post, sign_in
from webapp import services
from webapp.extensions import db
from webapp.queue_weights import UPDATE_CHUNK, restore_queue_weights
from webapp.queues import FAIR_WEIGHTS
from webapp.tables import AuditLog, User

ADMIN = "root@example.com"
RANGE = "A queue weight is a number from 0.1 to 10 (1 is everyone&#39;s)."


@pytest.fixture
def admin(app, make_user):
    """A signed-in admin's client."""
    make_user(ADMIN, is_admin=True)
    return sign_in(app, ADMIN)


def weights(app) -> tuple[dict[str, float], dict[str, float]]:
    """(every weight other than 1 in the users table, the Redis copy), by email."""
    with app.app_context():
        rows = db.session.execute(db.select(User.id, User.email, User.queue_weight)).all()
        copy = {int(key): float(value) for key, value in services.redis().hgetall(FAIR_WEIGHTS).items()}
    emails = {row.id: row.email for row in rows}
    return ({row.email: row.queue_weight for row in rows if row.queue_weight != 1},
            {emails[user_id]: weight for user_id, weight in copy.items()})


def test_admin_sets_one_accounts_weight(app, admin, make_user):
    ada = make_user("ada@example.com")
    page = admin.get("/admin/users").get_data(as_text=True)
    assert f'id="weight-{ada}"' in page and f'for="weight-{ada}">Queue weight of ada@example.com' in page
    assert f'action="/admin/users/{ada}/queue-weight"' in page

    response = post(admin, f"/admin/users/{ada}/queue-weight", "/admin/users", weight="2.5", next="/admin/users?q=ada")
    assert (response.status_code, response.headers["Location"]) == (303, "/admin/users?q=ada")
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "ada@example.com has queue weight 2.5." in page and 'value="2.5"' in page
    assert weights(app) == ({"ada@example.com": 2.5}, {"ada@example.com": 2.5})
    with app.app_context():
        entry = db.session.scalar(db.select(AuditLog).where(AuditLog.action == "user.queue_weight"))
        assert (entry.target_type, entry.target_id, entry.details) == ("user", str(ada), "ada@example.com: 1 → 2.5")
        assert entry.admin_id == db.session.scalar(db.select(User.id).where(User.email == ADMIN))

    post(admin, f"/admin/users/{ada}/queue-weight", "/admin/users", weight="1")  # back to the default
    assert weights(app) == ({}, {})
    assert len(audit_entries(app, "user.queue_weight")) == 2


@pytest.mark.parametrize("bad", ["", "0", "0.05", "-2", "10.5", "1e400", "nan", "inf", "two", "2,5"])
def test_bad_weights_change_nothing(app, admin, make_user, bad):
    ada = make_user("ada@example.com")
    post(admin, f"/admin/users/{ada}/queue-weight", "/admin/users", weight="3")
    for path, data in ((f"/admin/users/{ada}/queue-weight", {}), ("/admin/users/queue-weight", {"q": "ada"})):
        response = post(admin, path, "/admin/users", weight=bad, **data)
        assert response.status_code == 303
        assert RANGE in admin.get(response.headers["Location"]).get_data(as_text=True)
    assert weights(app) == ({"ada@example.com": 3.0}, {"ada@example.com": 3.0})
    assert len(audit_entries(app, "user.queue_weight")) == 1


def test_unknown_accounts_and_missing_csrf_are_refused(app, admin, make_user):
    ada = make_user("ada@example.com")
    for missing in (99999, 2**63):
        assert post(admin, f"/admin/users/{missing}/queue-weight", "/admin/users", weight="2").status_code == 404
    assert admin.post(f"/admin/users/{ada}/queue-weight", data={"weight": "2"}).status_code == 400
    assert admin.post("/admin/users/queue-weight", data={"weight": "2", "q": "ada"}).status_code == 400
    assert admin.post("/admin/users/queue-weight", data={"weight": "2", "csrf_token": "forged"}).status_code == 400
    assert weights(app) == ({}, {})
    assert audit_entries(app) == []


def test_non_admins_cannot_set_weights(app, make_user):
    ada = make_user("ada@example.com")
    client = sign_in(app, "ada@example.com")
    token = csrf_token(client, "/auth/account")
    for path in (f"/admin/users/{ada}/queue-weight", "/admin/users/queue-weight"):
        assert client.post(path, data={"csrf_token": token, "weight": "10"}).status_code == 404
        assert app.test_client().post(path, data={"weight": "10"}).status_code == 404
    assert weights(app) == ({}, {})


@pytest.mark.db
def test_admin_sets_a_weight_for_everyone_a_search_shows(app, admin, make_user):
    for email in ("a@school.example", "b@school.example", "head@other.example"):
        make_user(email)
    make_user("c@school.example", is_banned=True)
    page = admin.get("/admin/users?q=@school.example&show=active").get_data(as_text=True)
    assert "Queue weight for these 2 account(s)" in page and "Set for all 2" in page
    assert 'name="q" value="@school.example"' in page and 'name="show" value="active"' in page

    response = post(admin, "/admin/users/queue-weight", "/admin/users", weight="2", q="@school.example",
                    show="active", next="/admin/users?q=@school.example&show=active")
    assert response.headers["Location"] == "/admin/users?q=@school.example&show=active"
    assert "2 account(s) changed to queue weight 2 (0 already had it)." in admin.get(
        response.headers["Location"]).get_data(as_text=True)
    school = {"a@school.example": 2.0, "b@school.example": 2.0}
    assert weights(app) == (school, school)  # not the banned one, nor the other school
    ((_, target_type, target_id, _),) = audit_entries(app, "user.queue_weight")
    assert (target_type, target_id) == ("users", "")
    with app.app_context():
        assert db.session.scalar(db.select(AuditLog.details)) == (
            "2 of 2 account(s) matching search '@school.example', not banned: weight 2")

    response = post(admin, "/admin/users/queue-weight", "/admin/users", weight="2", q="school", show="")
    assert "1 account(s) changed to queue weight 2 (2 already had it)." in admin.get(
        response.headers["Location"]).get_data(as_text=True)
    response = post(admin, "/admin/users/queue-weight", "/admin/users", weight="1", q="nobody-here")
    assert "No accounts match that search: nothing changed." in admin.get(
        response.headers["Location"]).get_data(as_text=True)
    response = post(admin, "/admin/users/queue-weight", "/admin/users", weight="2", show="everyone")
    assert "Not a valid choice" in admin.get(response.headers["Location"]).get_data(as_text=True)
    assert weights(app)[1] == school | {"c@school.example": 2.0}
    assert len(audit_entries(app, "user.queue_weight")) == 2


@pytest.mark.db
def test_a_large_group_takes_a_few_statements_not_one_per_account(app, admin):
    count = 2 * UPDATE_CHUNK + 37
    with app.app_context():
        db.session.execute(db.insert(User), [{"email": f"pupil{n}@school.example", "password_hash": "x"}
                                             for n in range(count)])
        db.session.commit()
    token = csrf_token(admin, "/admin/users")
    statements = []

    def note(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        response = admin.post("/admin/users/queue-weight", data={"csrf_token": token, "weight": "1.5", "q": "@school."})
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert response.status_code == 303
    writes = [s for s in statements if s.lstrip().upper().startswith(("UPDATE USERS", "INSERT INTO AUDIT"))]
    assert len(writes) == 3 + 1  # the chunked UPDATEs and one audit entry
    assert len(statements) < 12  # plus the session's own few reads
    table, copy = weights(app)
    assert len(table) == len(copy) == count and set(copy.values()) == {1.5}


def test_weights_wait_for_redis_and_the_restore_copies_them(app, admin, make_user, redis_url):
    ada = make_user("ada@example.com")
    token = csrf_token(admin, "/admin/users")
    point_redis_at(app, f"redis://127.0.0.1:{free_port()}/0")
    response = admin.post(f"/admin/users/{ada}/queue-weight", data={"csrf_token": token, "weight": "4"})
    assert "Redis did not answer" in admin.get(response.headers["Location"]).get_data(as_text=True)
    point_redis_at(app, redis_url)
    assert weights(app) == ({"ada@example.com": 4.0}, {})  # the row is saved, the copy is missing
    with app.app_context():
        assert restore_queue_weights() == 1
    assert weights(app) == ({"ada@example.com": 4.0}, {"ada@example.com": 4.0})
