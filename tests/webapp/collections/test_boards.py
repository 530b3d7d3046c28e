"""Team boards: a collection shared with people or a group as editors or viewers; outsiders get 404; no file copies."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.support import sign_in
from tests.webapp.collections.test_routes import add, fetch, members, new_collection, post
from webapp.extensions import db
from webapp.tables import Image

pytestmark = pytest.mark.db


@pytest.fixture
def team(app, runner, make_user, make_image) -> dict:
    """Ada owns a board; the class-a group (cy, di) and eve (directly) get roles on it; zed has none."""
    ids = {name: make_user(f"{name}@example.com") for name in ("ada", "cy", "di", "eve", "zed")}
    runner.invoke(args=["groups", "create", "class-a"])
    for name in ("cy", "di"):
        runner.invoke(args=["groups", "add", "class-a", f"{name}@example.com"])
    ids["fox"] = make_image(ids["ada"], prompt="a red fox")
    ids["cys"] = make_image(ids["cy"], prompt="cy's kite")
    ids["hidden"] = make_image(ids["ada"], prompt="a hidden cat", is_hidden=True)
    ids["zeds"] = make_image(ids["zed"], prompt="zed's boat")
    ada = sign_in(app, "ada@example.com")
    ids["board"] = new_collection(ada, "Class board")
    add(ada, ids["board"], [ids["fox"], ids["hidden"]])
    ids["ada_client"] = ada
    return ids


def share(client, board: str, role: str, email: str = "", group: str = ""):
    return post(client, f"/collections/{board}/members", email=email, group=group, role=role)


def test_a_board_given_to_a_group_as_editors_and_a_viewer(app, team):
    ada, board = team["ada_client"], team["board"]
    assert share(ada, board, "editor", group="class-a").status_code == 303
    assert share(ada, board, "viewer", email="eve@example.com").status_code == 303
    files_before = _files(app)
    cy = sign_in(app, "cy@example.com")
    assert "Class board" in cy.get("/collections").get_data(as_text=True)
    assert add(cy, board, [team["cys"], team["zeds"]]).status_code == 303  # only cy's own picture goes in
    assert members(app, board) == {team["fox"], team["hidden"], team["cys"]}
    assert _files(app) == files_before  # rows that point at images, no copies
    page = cy.get(f"/collections/{board}").get_data(as_text=True)
    assert "a red fox" in page and "cy&#39;s kite" in page and "a hidden cat" not in page
    assert fetch(cy, f"/collections/{board}/images/{team['fox']}/file") == (200, "image/png")
    assert fetch(cy, f"/collections/{board}/images/{team['hidden']}/thumbnail")[0] == 404
    assert post(cy, f"/collections/{board}/rename", name="Our board").status_code == 303
    assert post(cy, "/collections/images", collection_id=board, image_ids=[team["fox"]], action="remove").status_code == 303
    assert members(app, board) == {team["hidden"], team["cys"]}
    # an editor does not share, delete, or make a public link
    for path in ("members", "share", "delete"):
        assert post(cy, f"/collections/{board}/{path}", email="zed@example.com", role="editor").status_code == 404
    eve = sign_in(app, "eve@example.com")
    page = eve.get(f"/collections/{board}").get_data(as_text=True)
    assert "Our board" in page and 'id="board-role">viewer' in page and 'id="rename-board"' not in page
    assert fetch(eve, f"/collections/{board}/images/{team['cys']}/thumbnail") == (200, "image/webp")
    assert post(eve, f"/collections/{board}/rename", name="Mine now").status_code == 404
    assert post(eve, "/collections/images", collection_id=board, image_ids=[team["cys"]],
                action="remove").status_code == 404
    assert members(app, board) == {team["hidden"], team["cys"]}


def test_outsiders_get_404_for_the_board_and_its_pictures(app, team):
    board = team["board"]
    share(team["ada_client"], board, "viewer", group="class-a")
    zed = sign_in(app, "zed@example.com")
    assert "Class board" not in zed.get("/collections").get_data(as_text=True)
    assert zed.get(f"/collections/{board}").status_code == 404
    assert fetch(zed, f"/collections/{board}/images/{team['fox']}/thumbnail")[0] == 404
    assert add(zed, board, [team["zeds"]]).status_code == 404
    assert team["zeds"] not in members(app, board)
    # leaving the group ends the access; so does the owner removing the share
    di = sign_in(app, "di@example.com")
    assert di.get(f"/collections/{board}").status_code == 200
    runner = app.test_cli_runner()
    runner.invoke(args=["groups", "remove", "class-a", "di@example.com"])
    assert di.get(f"/collections/{board}").status_code == 404
    cy = sign_in(app, "cy@example.com")
    with app.app_context():
        from webapp.tables import BoardAccess

        access_id = db.session.scalar(select(BoardAccess.id))
    assert post(team["ada_client"], f"/collections/{board}/members/{access_id}/remove").status_code == 303
    assert cy.get(f"/collections/{board}").status_code == 404


@pytest.mark.parametrize(("fields", "message"), [
    ({"email": "nobody@example.com", "role": "viewer"}, "There is no account with that email."),
    ({"group": "no-such", "role": "viewer"}, "There is no group named no-such."),
    ({"email": "ada@example.com", "role": "editor"}, "That is the board&#39;s owner."),
    ({"email": "eve@example.com", "group": "class-a", "role": "editor"}, "Give either a person"),
    ({"email": "eve@example.com", "role": "owner"}, "Not a valid choice"),
])
def test_bad_shares_are_refused_with_nothing_changed(app, team, fields, message):
    response = post(team["ada_client"], f"/collections/{team['board']}/members", **fields)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    with app.app_context():
        from webapp.tables import BoardAccess

        assert db.session.scalar(select(func.count()).select_from(BoardAccess)) == 0


def _files(app) -> tuple[int, int]:
    """Image rows and stored files."""
    from pathlib import Path

    with app.app_context():
        rows = db.session.scalar(select(func.count()).select_from(Image))
    return rows, sum(1 for path in Path(app.config["MEDIA_DIR"]).rglob("*") if path.is_file())
