"""The emails people get, rendered from ``templates/mail/`` (a text and an HTML version of each)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import render_template

from ..links import tokens as links
from ..tables import Generation, User, utcnow
from .backends import Message

SUBJECT_PROMPT_CHARS = 60


def _short(prompt: str) -> str:
    prompt = " ".join(prompt.split())
    return prompt if len(prompt) <= SUBJECT_PROMPT_CHARS else prompt[: SUBJECT_PROMPT_CHARS - 1] + "…"


@dataclass(frozen=True)
class Recipient:
    """Someone who has no account yet: the footer needs only the address."""

    email: str


def _render(template: str, subject: str, user: User | Recipient, notification: bool, **context) -> Message:
    """Render ``mail/<template>.txt`` and ``.html``; notifications carry a one-click unsubscribe."""
    context = {"user": user, "subject": subject, "notification": notification,
               "account_url": links.public_url("auth.account"), "site_url": links.public_url("studio.index"),
               **context}
    headers = {}
    if notification:
        unsubscribe_url = links.public_url("links.unsubscribe", token=links.unsubscribe_token(user))
        context["unsubscribe_url"] = unsubscribe_url
        headers = {"List-Unsubscribe": f"<{unsubscribe_url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return Message(to=user.email, subject=subject, headers=headers,
                   text=render_template(f"mail/{template}.txt", **context),
                   html=render_template(f"mail/{template}.html", **context))


def result_ready(generation: Generation) -> Message:
    """"Your art is ready": the prompt, and a signed link (with a thumbnail) per image."""
    results = []
    for image in generation.images:
        token = links.result_token(image)
        results.append({"url": links.public_url("links.result", token=token),
                        "thumbnail_url": links.public_url("links.result_thumbnail", token=token),
                        "width": image.width, "height": image.height,
                        "timelapse_url": links.public_url("gallery.image_detail", image_id=image.id)
                        if image.timelapse_key else None})
    expires = utcnow() + timedelta(seconds=links.result_link_seconds())
    return _render("result_ready", f"Your art is ready: {_short(generation.prompt)}", generation.user, True,
                   generation=generation, results=results, expires=expires,
                   gallery_url=links.public_url("gallery.mine"))


def generation_failed(generation: Generation) -> Message:
    """"Your generation failed", with the reason in words."""
    return _render("generation_failed", f"Your generation failed: {_short(generation.prompt)}", generation.user, True,
                   generation=generation, reason=generation.error or "The generation failed unexpectedly.")


def password_reset(user: User) -> Message:
    """The single-use link to set a new password."""
    return _render("password_reset", "Reset your Easel password", user, False,
                   reset_url=links.public_url("auth.reset_password", token=links.password_reset_token(user)),
                   minutes=links.PASSWORD_RESET_SECONDS // 60)


def signup_link(email: str, token: str) -> Message:
    """The link that finishes a sign-up (the address is proved by clicking it)."""
    return _render("signup_link", "Finish creating your Easel account", Recipient(email), False,
                   finish_url=links.public_url("auth.finish_signup", token=token),
                   hours=links.SIGNUP_SECONDS // 3600)


def signup_attempt(user: User) -> Message:
    """Someone tried to create an account with an address that already has one."""
    return _render("signup_attempt", "Someone tried to sign up with your address", user, False,
                   login_url=links.public_url("auth.login"), forgot_url=links.public_url("auth.forgot_password"))


def password_changed(user: User) -> Message:
    """The password of this account was changed or reset."""
    return _render("password_changed", "Your Easel password was changed", user, False,
                   forgot_url=links.public_url("auth.forgot_password"))


def new_device(user: User, browser: str, address: str, when: str) -> Message:
    """A sign-in from a browser that had not signed in to this account before."""
    return _render("new_device", "New sign-in to your Easel account", user, False, browser=browser,
                   address=address, when=when, forgot_url=links.public_url("auth.forgot_password"))
