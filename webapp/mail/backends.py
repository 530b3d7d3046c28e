"""Sending email: one ``Mailer`` interface, three backends chosen by ``MAIL_BACKEND``.

``console`` logs each message, ``file`` writes each one as an ``.eml`` file (development and tests),
``mailgun`` posts it to Mailgun's HTTP API. Messages are sent from the chore queue (``jobs.mail``),
never from a web request, so a slow mail service never slows a page.
"""
from __future__ import annotations

import logging
import os
import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import formatdate, make_msgid
from pathlib import Path

import requests

log = logging.getLogger(__name__)

# Headers are folded at RFC 5322's hard limit, not its 78-character advice: a long unbreakable value (a
# List-Unsubscribe link) would otherwise be RFC 2047-encoded, and mail clients no longer see a link in it.
POLICY = default_policy.clone(max_line_length=998)
# (connect, read) seconds: Mailgun answers in well under a second when it is healthy.
MAILGUN_TIMEOUT = (5, 15)
LINK_RE = re.compile(r"https?://[^\s<>\"']+")


class MailError(RuntimeError):
    """A message could not be handed to the mail service (the chore queue retries it)."""


@dataclass(frozen=True)
class Message:
    """One email, rendered and ready to send."""

    to: str
    subject: str
    text: str
    html: str
    headers: dict[str, str] = field(default_factory=dict)


class Mailer(ABC):
    """Hands messages to something that delivers them."""

    def __init__(self, sender: str):
        self.sender = sender

    @abstractmethod
    def send(self, message: Message) -> None:
        """Deliver ``message``; raises ``MailError`` when it could not be handed over."""

    def as_email(self, message: Message) -> EmailMessage:
        """The message in RFC 5322 form, with a text and an HTML part."""
        email = EmailMessage(policy=POLICY)
        email["From"] = self.sender
        email["To"] = message.to
        email["Subject"] = message.subject
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = make_msgid(domain="easel.local")
        for name, value in message.headers.items():
            email[name] = value
        email.set_content(message.text)
        email.add_alternative(message.html, subtype="html")
        return email


class ConsoleMailer(Mailer):
    """Log each message as one line (to, subject, the link it carries): the default, so a fresh install never
    sends mail by surprise, and its console stays readable."""

    def send(self, message: Message) -> None:
        link = LINK_RE.search(message.text)
        log.info("email to %s (not sent: no mail server set): %s%s", message.to, message.subject,
                 f" | {link.group(0)}" if link else "")


class FileMailer(Mailer):
    """Write each message to ``MAIL_FILE_DIR`` as ``<time>-<id>.eml``."""

    def __init__(self, sender: str, directory: str | os.PathLike):
        super().__init__(sender)
        self.directory = Path(directory)

    def send(self, message: Message) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
            tmp = self.directory / f".{name}.tmp"
            tmp.write_bytes(self.as_email(message).as_bytes())
            os.replace(tmp, self.directory / name)  # readers never see half a message
        except OSError as exc:
            raise MailError(f"could not write the email to {self.directory}: {exc.strerror}") from exc


class MailgunMailer(Mailer):
    """Mailgun's HTTP API: ``POST {base_url}/v3/{domain}/messages`` with basic auth ``api:{key}``."""

    def __init__(self, sender: str, api_key: str, domain: str, base_url: str):
        super().__init__(sender)
        if not api_key or not domain:
            raise MailError("MAIL_BACKEND=mailgun needs MAILGUN_API_KEY and MAILGUN_DOMAIN")
        self.api_key = api_key
        self.url = f"{base_url.rstrip('/')}/v3/{domain}/messages"

    def send(self, message: Message) -> None:
        data = {"from": self.sender, "to": message.to, "subject": message.subject,
                "text": message.text, "html": message.html}
        data.update({f"h:{name}": value for name, value in message.headers.items()})
        try:
            response = requests.post(self.url, auth=("api", self.api_key), data=data, timeout=MAILGUN_TIMEOUT)
        except requests.RequestException as exc:
            raise MailError(f"Mailgun could not be reached: {type(exc).__name__}") from exc
        if not 200 <= response.status_code < 300:
            raise MailError(f"Mailgun answered {response.status_code}: {response.text[:200]}")


def create_mailer(config: Mapping) -> Mailer:
    """The backend named by ``MAIL_BACKEND`` (``console``, ``file`` or ``mailgun``)."""
    kind = (config.get("MAIL_BACKEND") or "console").lower()
    sender = config.get("MAIL_FROM") or "Easel <easel@localhost>"
    if kind == "console":
        return ConsoleMailer(sender)
    if kind == "file":
        return FileMailer(sender, config["MAIL_FILE_DIR"])
    if kind == "mailgun":
        return MailgunMailer(sender, config.get("MAILGUN_API_KEY", ""), config.get("MAILGUN_DOMAIN", ""),
                             config.get("MAILGUN_BASE_URL") or "https://api.mailgun.net")
    raise MailError(f"MAIL_BACKEND must be console, file or mailgun, got {kind!r}")

