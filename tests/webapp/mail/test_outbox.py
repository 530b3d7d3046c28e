"""Which generation emails go out, and what they say (rendered and sent by the chore queue, in process)."""
from __future__ import annotations

import re

import pytest

from tests.support import body, links_in, run_chores, sent_mail
from webapp.extensions import db
from webapp.mail.outbox import notify_generation_finished
from webapp.queues import chore_queue
from webapp.tables import Generation, GenerationStatus, Image, User


def finished(app, generation_id: str) -> None:
    with app.app_context():
        notify_generation_finished(generation_id)
    run_chores(app)


def add_image(app, image_id: str) -> str:
    """A second image in the same generation (rows only: the email needs no file)."""
    with app.app_context():
        first = db.session.get(Image, image_id)
        second = Image(generation_id=first.generation_id, user_id=first.user_id, index=1, width=64, height=64,
                       storage_key=first.storage_key.replace("0.png", "1.png"),
                       thumbnail_key=first.thumbnail_key.replace("0.thumb", "1.thumb"))
        db.session.add(second)
        db.session.commit()
        return first.generation_id


@pytest.mark.db
def test_result_email_has_a_link_per_image_and_a_way_out(app, app_env, client, make_user, make_image):
    user_id = make_user("ada@example.com")
    generation_id = add_image(app, make_image(user_id, prompt="two <b>cats</b> & a dog " + "very " * 20))
    finished(app, generation_id)
    [message] = sent_mail(app_env)
    assert message["Subject"].startswith("Your art is ready: two <b>cats</b> & a dog very")
    assert len(message["Subject"]) < 90
    text, html = body(message), body(message, "html")
    assert len(links_in(text, "/s/")) == 2 and "image 2" in text
    assert "two &lt;b&gt;cats&lt;/b&gt; &amp; a dog" in html  # the prompt is escaped in HTML
    assert "until" in text and "/gallery" in text
    [unsubscribe] = links_in(text, "/email/unsubscribe/")
    assert unsubscribe in html and message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    for link in links_in(text, "/s/"):
        assert client.get(link.removeprefix("http://127.0.0.1:5000")).status_code == 200
    assert client.get(unsubscribe.removeprefix("http://127.0.0.1:5000")).status_code == 200  # asks
    assert client.post(unsubscribe.removeprefix("http://127.0.0.1:5000"),
                       data={"List-Unsubscribe": "One-Click"}).status_code == 200  # RFC 8058 one-click
    with app.app_context():
        assert db.session.get(User, user_id).notify_by_email is False


def test_failure_email_gives_the_reason(app, app_env, make_user):
    user_id = make_user("ada@example.com")
    with app.app_context():
        generation = Generation(user_id=user_id, status=GenerationStatus.FAILED, prompt="a storm", model="easel-tiny",
                                width=64, height=64, steps=2, guidance=5.0, seed=1,
                                error="The GPU ran out of memory. Try a smaller size or fewer images.")
        db.session.add(generation)
        db.session.commit()
        generation_id = generation.id
    finished(app, generation_id)
    [message] = sent_mail(app_env)
    assert message["Subject"] == "Your generation failed: a storm"
    assert "The GPU ran out of memory." in body(message) and "The GPU ran out of memory." in body(message, "html")
    assert links_in(body(message), "/email/unsubscribe/")


@pytest.mark.db
def test_no_email_when_turned_off_or_canceled(app, app_env, make_user, make_image):
    quiet = make_user("quiet@example.com", notify_by_email=False)
    generation_id = db_generation_of(app, make_image(quiet))
    with app.app_context():
        notify_generation_finished(generation_id)
        assert chore_queue().count == 0  # not even queued

    loud = make_user("loud@example.com")
    image_id = make_image(loud)
    generation_id = db_generation_of(app, image_id)
    with app.app_context():
        notify_generation_finished(generation_id)
        db.session.get(User, loud).notify_by_email = False  # turned off before the chore ran
        canceled = Generation(user_id=loud, status=GenerationStatus.CANCELED, prompt="x", model="easel-tiny",
                              width=64, height=64, steps=2, guidance=5.0, seed=1)
        db.session.add(canceled)
        db.session.commit()
        notify_generation_finished(canceled.id)
    run_chores(app)
    assert sent_mail(app_env) == []


def test_the_account_page_has_the_setting_on_by_default(client, auth, make_user):
    make_user("ada@example.com")
    auth.login()
    html = client.get("/auth/account").get_data(as_text=True)
    [checkbox] = re.findall(r'<input[^>]*id="notify_by_email"[^>]*>', html)
    assert "checked" in checkbox


def test_queue_trouble_never_escapes(app, monkeypatch, make_user, make_image, caplog):
    generation_id = db_generation_of(app, make_image(make_user()))

    def broken(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr("webapp.mail.outbox.enqueue_email", broken)
    with app.app_context():
        notify_generation_finished(generation_id)  # logs, does not raise
    assert "could not queue its email" in caplog.text


def db_generation_of(app, image_id: str) -> str:
    with app.app_context():
        return db.session.get(Image, image_id).generation_id
