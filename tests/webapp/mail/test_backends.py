"""Mail backends, and retries through a real chore worker against the Mailgun check server."""
from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
from redis import Redis
from rq.job import Job
from rq.registry import FailedJobRegistry

from tests.support import body, sent_mail, wait_for
from webapp.mail.backends import ConsoleMailer, FileMailer, MailError, MailgunMailer, Message, create_mailer
from webapp.mail.outbox import enqueue_email
from webapp.queues import chore_queue

# As long as a real one (a signed token in the path): long enough that a folding mailer would encode it.
UNSUBSCRIBE = "<https://art.example.org/email/unsubscribe/eyJ1c2VyIjo0Mn0.aBcDeF.0123456789abcdefghijklmnopqrstuvwxyzAB>"
MESSAGE = Message(to="ada@example.com", subject="Hello ✓", text="Plain words", html="<p>Rich words</p>",
                  headers={"List-Unsubscribe": UNSUBSCRIBE, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})


def test_file_backend_writes_one_message_per_file(app_env):
    mailer = create_mailer({"MAIL_BACKEND": "file", "MAIL_FILE_DIR": app_env["MAIL_FILE_DIR"],
                            "MAIL_FROM": "E <e@x.test>"})
    assert isinstance(mailer, FileMailer)
    mailer.send(MESSAGE)
    mailer.send(MESSAGE)
    messages = sent_mail(app_env)
    assert len(messages) == 2
    first = messages[0]
    assert (first["To"], first["From"], first["Subject"]) == ("ada@example.com", "E <e@x.test>", "Hello ✓")
    assert first["List-Unsubscribe"] == UNSUBSCRIBE
    # What mail clients read: the header as written, a plain <https://…> link (not =?utf-8?q?=3Chttps…).
    raw = next(Path(app_env["MAIL_FILE_DIR"]).glob("*.eml")).read_bytes()
    assert f"\nList-Unsubscribe: {UNSUBSCRIBE}\n".encode() in raw
    assert b"\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\n" in raw
    assert body(first).strip() == "Plain words" and body(first, "html").strip() == "<p>Rich words</p>"


def test_console_backend_logs_one_line_and_sends_nothing(caplog):
    message = Message(to="ada@example.com", subject="Finish creating your account", html="<p>Rich words</p>",
                      text="Open this link:\n\nhttp://127.0.0.1:5107/auth/welcome/abc123\n\nThen http://x.test/other\n")
    with caplog.at_level(logging.INFO, logger="webapp.mail"):
        create_mailer({"MAIL_BACKEND": "console"}).send(message)
    [record] = caplog.records
    assert record.getMessage() == ("email to ada@example.com (not sent: no mail server set): "
                                   "Finish creating your account | http://127.0.0.1:5107/auth/welcome/abc123")
    assert isinstance(create_mailer({}), ConsoleMailer)


def test_mailgun_request_is_exactly_what_mailgun_expects(mailgun):
    mailer = MailgunMailer("Easel <art@mg.example.test>", mailgun.api_key, mailgun.domain, mailgun.url + "/")
    mailer.send(MESSAGE)
    [sent] = mailgun.messages
    assert sent == {"from": "Easel <art@mg.example.test>", "to": "ada@example.com", "subject": "Hello ✓",
                    "text": "Plain words", "html": "<p>Rich words</p>",
                    "h:List-Unsubscribe": UNSUBSCRIBE, "h:List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def test_mailgun_errors_raise_so_the_queue_retries(mailgun):
    mailgun.fail(1)
    with pytest.raises(MailError, match="500"):
        MailgunMailer("e@x.test", mailgun.api_key, mailgun.domain, mailgun.url).send(MESSAGE)
    wrong_key = MailgunMailer("e@x.test", "not-the-key", mailgun.domain, mailgun.url)
    with pytest.raises(MailError, match="401"):
        wrong_key.send(MESSAGE)
    assert mailgun.messages == []
    mailgun.problems.clear()  # the 401 was the point


def test_mailgun_gives_up_on_a_silent_server(monkeypatch):
    monkeypatch.setattr("webapp.mail.backends.MAILGUN_TIMEOUT", (0.5, 0.5))
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        mailer = MailgunMailer("e@x.test", "key", "mg.test", f"http://127.0.0.1:{silent.getsockname()[1]}")
        with pytest.raises(MailError, match="could not be reached"):
            mailer.send(MESSAGE)


def test_mailgun_settings_are_required():
    with pytest.raises(MailError, match="MAILGUN_API_KEY"):
        create_mailer({"MAIL_BACKEND": "mailgun", "MAILGUN_DOMAIN": "mg.test"})
    with pytest.raises(MailError, match="MAIL_BACKEND must be"):
        create_mailer({"MAIL_BACKEND": "pigeon"})


def test_chore_worker_retries_then_logs_a_failure(app, mailgun, workers, make_user):
    user_id = make_user("ada@example.com")
    with app.app_context():
        mailgun.fail(2)
        flaky = enqueue_email("jobs.mail.send_password_changed", user_id, description="test email")
    worker = workers.start(queues="default")
    [delivered] = mailgun.wait_for_messages(1, timeout=60)
    assert delivered["to"] == "ada@example.com" and mailgun.requests == 3  # two 500s, then accepted
    connection = Redis.from_url(app.config["REDIS_URL"])
    assert wait_for(lambda: Job.fetch(flaky.id, connection=connection).get_status() == "finished", timeout=10)

    with app.app_context():
        mailgun.fail(100)
        doomed = enqueue_email("jobs.mail.send_password_changed", user_id, description="test email")
    with app.app_context():
        registry = FailedJobRegistry(queue=chore_queue())
    wait_for(lambda: doomed.id in registry.get_job_ids(), timeout=60, message="the email job to fail for good")
    assert mailgun.requests == 6 and len(mailgun.messages) == 1  # 1 try + 2 retries, nothing delivered
    log = worker.log_path.read_text()
    assert f"[{doomed.id}] email (password changed for user {user_id}) failed for good: Mailgun answered 500" in log
