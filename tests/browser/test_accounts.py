"""A person signs up, out, in and changes their password in a real Chromium."""
from __future__ import annotations

import pytest

from tests.support import body, links_in, run_chores, sent_mail

pytestmark = pytest.mark.browser


def test_register_logout_login_change_password(app, app_env, page, live_server, tmp_path):
    page.goto(live_server + "/")
    page.get_by_role("link", name="Create an account").first.click()
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("Password", exact=True).fill("correct horse")
    page.get_by_label("Confirm password").fill("correct horse")
    page.get_by_role("button", name="Create account").click()
    page.get_by_text("Check your email").first.wait_for()
    run_chores(app)
    [link] = links_in(body(sent_mail(app_env)[0]), "/auth/welcome/")
    page.goto(live_server + link.removeprefix(app_env["PUBLIC_BASE_URL"]))
    page.get_by_role("button", name="Create my account").click()
    page.get_by_text("Welcome to Easel!").wait_for()

    page.get_by_role("button", name="Sign out", exact=True).click()
    page.get_by_text("You are signed out.").wait_for()

    page.get_by_role("link", name="Sign in").first.click()
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    assert "do not match an account" in page.locator("#login-error").inner_text()
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Welcome, grace").wait_for()

    page.get_by_role("link", name="Account").click()
    # A blank display name: the account page says what others see, in Explore's words.
    assert page.get_by_label("Display name").get_attribute("placeholder") == "Anonymous artist"
    assert "left blank, they show “Anonymous artist”" in page.get_by_text("Shown next to your public pictures").inner_text()
    page.get_by_label("Current password").fill("correct horse")
    page.get_by_label("New password", exact=True).fill("battery staple")
    page.get_by_label("Confirm new password").fill("battery staple")
    page.get_by_role("button", name="Change password").click()
    page.get_by_text("Your password is changed.").wait_for()
    page.screenshot(path=str(tmp_path / "account.png"))

    page.get_by_role("button", name="Sign out", exact=True).click()
    page.goto(live_server + "/auth/login")
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("Password").fill("battery staple")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Welcome, grace").wait_for()

    # A new API token has a copy button; on a phone the token table scrolls inside its card, not the page.
    page.get_by_role("link", name="Account").click()
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("Open WebUI")
    page.get_by_role("button", name="Create token").click()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == page.locator("#new-token").inner_text()
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.eval_on_selector("#tokens-scroll", "box => box.scrollWidth > box.clientWidth")
    page.set_viewport_size({"width": 1200, "height": 900})

    # Sign out everywhere, from the account page.
    page.get_by_role("link", name="Account").click()
    page.get_by_role("button", name="Sign out everywhere").click()
    page.get_by_text("You are signed out everywhere.").wait_for()
