"""Collections: mine only (others get 404), add and remove images, the signed public link and its revocation."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.support import csrf_token, fire, http_session, sign_in, token_for
from webapp.extensions import db
from webapp.tables import Collection, CollectionImage, Image, User


def post(client, path: str, **data):
    return client.post(path, data={"csrf_token": csrf_token(client, "/collections"), **data})


def new_collection(client, name: str) -> str:
    response = post(client, "/collections", name=name)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return response.headers["Location"].rsplit("/", 1)[1]


def add(client, collection_id: str, image_ids: list[str], **extra):
    return post(client, "/collections/images", collection_id=collection_id, image_ids=image_ids, action="add", **extra)


def share_link(client, collection_id: str) -> str:
    post(client, f"/collections/{collection_id}/share")
    html = client.get(f"/collections/{collection_id}").get_data(as_text=True)
    link = re.search(r'value="(http[^"]+/c/[^"]+)" id="share-link"', html).group(1)
    return link.split("/c/", 1)[1]


def fetch(client, path: str) -> tuple[int, str]:
    """Status and type of a GET, the response closed (file responses hold the file open)."""
    response = client.get(path)
    response.close()
    return response.status_code, response.mimetype


def members(app, collection_id: str) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(select(CollectionImage.image_id)
                                      .where(CollectionImage.collection_id == collection_id)))


@pytest.fixture
def people(app, make_user, make_image) -> dict:
    ada, bob = make_user("ada@example.com"), make_user("bob@example.com")
    return {"ada": ada, "bob": bob,
            "fox": make_image(ada, prompt="a red fox"), "owl": make_image(ada, prompt="an owl"),
            "cat": make_image(ada, prompt="a hidden cat", is_hidden=True),
            "bobs": make_image(bob, prompt="bob's dog")}


@pytest.mark.db
def test_make_fill_and_empty_a_collection(app, people):
    ada = sign_in(app, "ada@example.com")
    birds = new_collection(ada, "Birds")
    animals = new_collection(ada, "Animals")
    assert add(ada, birds, [people["owl"]]).status_code == 303
    add(ada, animals, [people["owl"], people["fox"], people["bobs"]])  # an image may be in several; Bob's ignored
    assert members(app, birds) == {people["owl"]}
    assert members(app, animals) == {people["owl"], people["fox"]}
    add(ada, animals, [people["fox"]])  # already there: no duplicate
    assert members(app, animals) == {people["owl"], people["fox"]}
    html = ada.get("/collections").get_data(as_text=True)
    assert "Animals" in html and "Birds" in html and ">2</span>" in html
    # A new collection straight from the gallery's bulk bar or the image page.
    response = post(ada, "/collections/images", image_ids=[people["fox"]], new_collection="Foxes", action="add",
                    next="/gallery?q=fox")
    assert response.headers["Location"] == "/gallery?q=fox"
    with app.app_context():
        foxes = db.session.scalar(select(Collection.id).where(Collection.name == "Foxes"))
    assert members(app, foxes) == {people["fox"]}
    page = ada.get(f"/images/{people['owl']}").get_data(as_text=True)
    assert "Birds" in page and "Animals" in page and 'id="add-to-collection"' in page
    # Remove, and delete: the images stay in the gallery.
    post(ada, "/collections/images", image_ids=[people["owl"]], collection_id=animals, action="remove")
    assert members(app, animals) == {people["fox"]}
    assert post(ada, f"/collections/{animals}/delete").status_code == 303
    with app.app_context():
        assert db.session.get(Collection, animals) is None
        assert db.session.get(Image, people["fox"]) is not None
        assert db.session.scalar(select(func.count()).select_from(CollectionImage)
                                 .where(CollectionImage.collection_id == animals)) == 0


@pytest.mark.db
def test_simultaneous_adds_of_one_image_keep_one_and_answer_already_there(app, live_server, people):
    ada = sign_in(app, "ada@example.com")
    birds = new_collection(ada, "Birds")
    session, token = http_session(live_server, "ada@example.com", 20)
    responses = fire(20, lambda: session.post(f"{live_server}/collections/images", allow_redirects=False, data={
        "csrf_token": token, "collection_id": birds, "image_ids": [people["owl"]], "action": "add"}))
    assert [r.status_code for r in responses] == [303] * 20
    assert members(app, birds) == {people["owl"]}
    # A late duplicate (a double click, a retried request) is told so and changes nothing.
    assert add(ada, birds, [people["owl"]], next="/collections").status_code == 303
    assert "That image is already in “Birds”." in ada.get("/collections").get_data(as_text=True)
    assert members(app, birds) == {people["owl"]}


def test_a_collection_needs_a_name(app, people):
    ada = sign_in(app, "ada@example.com")
    response = post(ada, "/collections", name="  ")
    assert response.status_code == 400 and "Give the collection a name." in response.get_data(as_text=True)


def test_another_persons_collection_is_404(app, people):
    ada, bob = sign_in(app, "ada@example.com"), sign_in(app, "bob@example.com")
    secret = new_collection(ada, "Secret")
    add(ada, secret, [people["fox"]])
    assert bob.get(f"/collections/{secret}").status_code == 404
    for action in ("share", "revoke", "delete"):
        assert post(bob, f"/collections/{secret}/{action}").status_code == 404
    assert add(bob, secret, [people["bobs"]]).status_code == 404
    assert post(bob, "/collections/images", collection_id=secret, image_ids=[people["fox"]],
                action="remove").status_code == 404
    assert members(app, secret) == {people["fox"]}
    assert "Secret" not in bob.get("/collections").get_data(as_text=True)
    assert bob.get("/collections/not-a-uuid").status_code == 404
    assert app.test_client().get(f"/collections/{secret}").status_code == 302  # signed out: sign in first
    # Ada cannot put Bob's image into her collection.
    add(ada, secret, [people["bobs"]])
    assert members(app, secret) == {people["fox"]}


@pytest.mark.db
def test_shared_link_works_signed_out_and_shows_no_hidden_image(app, people):
    ada = sign_in(app, "ada@example.com")
    shown = new_collection(ada, "Shown")
    add(ada, shown, [people["fox"], people["cat"]])
    assert "Private: only you" in ada.get(f"/collections/{shown}").get_data(as_text=True)
    token = share_link(ada, shown)
    stranger = app.test_client()
    response = stranger.get(f"/c/{token}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Shown" in html
    assert "a red fox" in html and "a hidden cat" not in html
    assert response.headers["Referrer-Policy"] == "no-referrer" and "noindex" in response.headers["X-Robots-Tag"]
    assert fetch(stranger, f"/c/{token}/images/{people['fox']}/thumbnail") == (200, "image/webp")
    assert fetch(stranger, f"/c/{token}/images/{people['fox']}/file") == (200, "image/png")
    assert fetch(stranger, f"/c/{token}/images/{people['cat']}/file")[0] == 404  # hidden by an admin
    assert fetch(stranger, f"/c/{token}/images/{people['owl']}/file")[0] == 404  # not in the collection
    assert fetch(stranger, f"/c/{token}/images/{people['bobs']}/thumbnail")[0] == 404
    assert fetch(stranger, f"/c/{token}/images/x/file")[0] == 404


def test_revoked_link_no_longer_works_even_when_shared_again(app, people):
    ada = sign_in(app, "ada@example.com")
    shown = new_collection(ada, "Shown")
    add(ada, shown, [people["fox"]])
    old = share_link(ada, shown)
    assert post(ada, f"/collections/{shown}/revoke").status_code == 303
    stranger = app.test_client()
    for path in (f"/c/{old}", f"/c/{old}/images/{people['fox']}/file"):
        assert fetch(stranger, path)[0] == 404
    assert "This link no longer works" in stranger.get(f"/c/{old}").get_data(as_text=True)
    new = share_link(ada, shown)
    assert new != old
    assert stranger.get(f"/c/{new}").status_code == 200
    assert stranger.get(f"/c/{old}").status_code == 404


def test_bad_tokens_and_banned_owners_get_the_bad_link_page(app, people):
    ada = sign_in(app, "ada@example.com")
    shown = new_collection(ada, "Shown")
    token = share_link(ada, shown)
    stranger = app.test_client()
    for bad in (token[:-2] + "xx", token_for(app, "result-link", {"c": shown, "v": 0}),
                token_for(app, "collection-link", {"c": "nope", "v": 0}),
                token_for(app, "collection-link", {"c": shown, "v": "0"}), "x" * 600):
        response = stranger.get(f"/c/{bad}")
        assert response.status_code == 404 and 'id="bad-link"' in response.get_data(as_text=True)
    with app.app_context():
        db.session.get(User, people["ada"]).is_banned = True
        db.session.commit()
    assert stranger.get(f"/c/{token}").status_code == 404


def test_deleting_an_image_takes_it_out_of_its_collections(app, people):
    ada = sign_in(app, "ada@example.com")
    shown = new_collection(ada, "Shown")
    add(ada, shown, [people["fox"], people["owl"]])
    post(ada, f"/images/{people['fox']}/delete")
    assert members(app, shown) == {people["owl"]}


def test_names_over_80_characters_are_refused_not_cut(app, people):
    ada = sign_in(app, "ada@example.com")
    refused = post(ada, "/collections", name="n" * 81)
    assert refused.status_code == 400 and "80 characters" in refused.get_data(as_text=True)
    from_gallery = add(ada, "", [people["fox"]], new_collection="g" * 81)
    assert from_gallery.status_code == 303
    assert "80 characters" in ada.get(from_gallery.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Collection)) == 0
        assert db.session.scalar(select(func.count()).select_from(CollectionImage)) == 0
    new_collection(ada, "  " + "n" * 80 + "  ")  # 80 once trimmed: taken whole
    with app.app_context():
        assert db.session.scalar(select(Collection.name)) == "n" * 80
