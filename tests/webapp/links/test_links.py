"""Signed result and unsubscribe links: they open exactly one thing, and bad ones change nothing."""
from __future__ import annotations

import pytest

from tests.support import csrf_token, post, result_token, sign_in, token_for
from webapp.extensions import db
from webapp.links import tokens as links
from webapp.tables import Image, User


@pytest.fixture
def owner(make_user) -> int:
    return make_user("ada@example.com")


def assert_dead(client, url: str, text: str) -> None:
    response = client.get(url)
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert text in page and 'id="image"' not in page
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.db
def test_result_link_opens_the_image_without_signing_in(app, client, owner, make_image):
    image_id = make_image(owner, prompt="a lighthouse at dusk")
    token = result_token(app, image_id)
    page = client.get(f"/s/{token}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "a lighthouse at dusk" in html and f"/s/{token}/file" in html
    assert page.headers["Referrer-Policy"] == "no-referrer" and "no-store" in page.headers["Cache-Control"]
    picture = client.get(f"/s/{token}/file")
    assert picture.status_code == 200 and picture.headers["Content-Type"] == "image/png"
    assert picture.data.startswith(b"\x89PNG")
    picture.close()
    download = client.get(f"/s/{token}/file?download=1")
    assert "attachment" in download.headers["Content-Disposition"]
    download.close()
    thumb = client.get(f"/s/{token}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/webp"
    thumb.close()
    # The link opens that image only: the signed-in routes still say no.
    assert client.get(f"/images/{image_id}/file").status_code == 302


def test_a_link_made_by_the_app_for_the_email_works(app, client, owner, make_image):
    image_id = make_image(owner)
    with app.app_context():
        token = links.result_token(db.session.get(Image, image_id))
        assert links.public_url("links.result", token=token) == f"http://127.0.0.1:5000/s/{token}"
    assert client.get(f"/s/{token}").status_code == 200


def test_expired_link_says_so(app, client, owner, make_image):
    image_id = make_image(owner)
    days = app.config["RESULT_LINK_DAYS"]
    assert days == 7
    assert client.get(f"/s/{result_token(app, image_id, age_seconds=days * 86400 - 60)}").status_code == 200
    old = result_token(app, image_id, age_seconds=days * 86400 + 60)
    assert_dead(client, f"/s/{old}", "This link has expired")
    assert client.get(f"/s/{old}/file").status_code == 404


def test_tampered_and_wrong_purpose_tokens_open_nothing(app, client, owner, make_image):
    image_id = make_image(owner)
    other_image = make_image(owner)
    good = result_token(app, image_id)
    forged = result_token(app, other_image).split(".")[0] + "." + good.split(".", 1)[1]
    with app.app_context():
        user = db.session.get(User, owner)
        wrong_purpose = [links.unsubscribe_token(user), links.password_reset_token(user),
                         token_for(app, links.UNSUBSCRIBE, {"image": image_id})]
    for bad in [good[:-2] + ("AA" if not good.endswith("AA") else "BB"), forged, "not-a-token", "x" * 600,
                *wrong_purpose]:
        assert_dead(client, f"/s/{bad}", "This picture is not available")
        assert client.get(f"/s/{bad}/file").status_code == 404
        assert client.get(f"/s/{bad}/thumbnail").status_code == 404


@pytest.mark.db
def test_deleting_or_hiding_the_image_kills_the_link(app, client, auth, owner, make_image):
    hidden_id, deleted_id = make_image(owner), make_image(owner)
    hidden, deleted = result_token(app, hidden_id), result_token(app, deleted_id)
    with app.app_context():
        db.session.get(Image, hidden_id).is_hidden = True
        db.session.commit()
    assert_dead(client, f"/s/{hidden}", "This picture is not available")
    assert client.get(f"/s/{hidden}/file").status_code == 404

    auth.login()
    response = client.post(f"/images/{deleted_id}/delete", data={"csrf_token": csrf_token(client, "/auth/account")})
    assert response.status_code == 303
    auth.logout()
    assert_dead(client, f"/s/{deleted}", "This picture is not available")


@pytest.mark.db
def test_unsubscribe_link_asks_on_get_and_turns_emails_off_on_post(app, client, owner):
    with app.app_context():
        user = db.session.get(User, owner)
        token, email = links.unsubscribe_token(user), user.email
    for _ in range(2):  # a mail scanner fetching the link (twice) changes nothing
        response = client.get(f"/email/unsubscribe/{token}")
        html = response.get_data(as_text=True)
        assert response.status_code == 200 and 'id="confirm-unsubscribe"' in html
        assert email not in html  # whoever holds the link learns no address
    with app.app_context():
        assert db.session.get(User, owner).notify_by_email is True
    response = client.post(f"/email/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})  # the button
    assert response.status_code == 200 and "Emails turned off" in response.get_data(as_text=True)
    assert email not in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, owner).notify_by_email is False
        db.session.get(User, owner).notify_by_email = True
        db.session.commit()
    # RFC 8058 one-click: the mail client POSTs with no form and no CSRF token.
    assert client.post(f"/email/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    with app.app_context():
        assert db.session.get(User, owner).notify_by_email is False


def test_bad_unsubscribe_links_change_nothing(app, client, owner, make_image):
    image_id = make_image(owner)
    for bad in ["garbage", result_token(app, image_id), token_for(app, links.UNSUBSCRIBE, {"user": 999}),
                token_for(app, links.UNSUBSCRIBE, {"user": "1"})]:
        response = client.get(f"/email/unsubscribe/{bad}")
        assert response.status_code == 404 and "This link does not work" in response.get_data(as_text=True)
        assert client.post(f"/email/unsubscribe/{bad}").status_code == 404
    with app.app_context():
        assert db.session.get(User, owner).notify_by_email is True


@pytest.mark.db
def test_hidden_links_stay_dead_after_unhide_and_new_links_work(app, client, owner, make_user, make_image):
    image_id = make_image(owner, is_public=True)
    before = result_token(app, image_id)
    make_user("root@example.com", is_admin=True)
    admin = sign_in(app, "root@example.com")
    for action in ("hide", "unhide"):
        assert post(admin, "/admin/images/bulk", "/admin/images", image_ids=image_id, action=action).status_code == 303
    with app.app_context():
        assert db.session.get(Image, image_id).is_hidden is False
    assert_dead(client, f"/s/{before}", "This picture is not available")  # unhiding did not bring it back
    assert client.get(f"/s/{result_token(app, image_id)}").status_code == 200  # a link made now works


@pytest.mark.db
def test_banning_the_owner_kills_the_links(app, client, owner, make_user, make_image):
    image_id = make_image(owner)
    token = result_token(app, image_id)
    make_user("root@example.com", is_admin=True)
    admin = sign_in(app, "root@example.com")
    assert post(admin, f"/admin/users/{owner}/ban", "/admin/users", reason="spam").status_code == 303
    assert_dead(client, f"/s/{token}", "This picture is not available")
    assert client.get(f"/s/{token}/file").status_code == 404


@pytest.mark.db
def test_the_owner_revokes_every_link_of_an_image(app, client, owner, make_user, make_image):
    image_id, other_id = make_image(owner), make_image(owner)
    first, second, other = result_token(app, image_id), result_token(app, image_id), result_token(app, other_id)
    make_user("bob@example.com")
    bob = sign_in(app, "bob@example.com")
    assert post(bob, f"/images/{image_id}/revoke-links").status_code == 404  # only the owner
    assert client.get(f"/s/{first}").status_code == 200
    ada = sign_in(app, "ada@example.com")
    page = ada.get(f"/images/{image_id}").get_data(as_text=True)
    assert f'action="/images/{image_id}/revoke-links"' in page and 'id="revoke-links"' in page
    assert post(ada, f"/images/{image_id}/revoke-links").status_code == 303
    for token in (first, second):
        assert_dead(client, f"/s/{token}", "This picture is not available")
        assert client.get(f"/s/{token}/thumbnail").status_code == 404
    assert client.get(f"/s/{other}").status_code == 200  # other images' links are untouched
    assert client.get(f"/s/{result_token(app, image_id)}").status_code == 200
