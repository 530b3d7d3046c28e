"""axe-core (vendored in static/vendor/axe-core/) in Chromium on every main page, in the light and the dark
theme, at desktop and phone sizes: no serious or critical violation. Also: the theme follows the system, and its
toggle is remembered."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.browser.test_studio import sign_in
from tests.support import add_generation

pytestmark = pytest.mark.browser

BLOCKING = ("serious", "critical")
DESKTOP = {"width": 1200, "height": 900}
PHONE = {"width": 390, "height": 844}


def axe_violations(page, live_server: str) -> list[str]:
    """Run axe on the page as it is now; one line per serious or critical violation and node."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=live_server + "/static/vendor/axe-core/axe.min.js")  # same origin: fine under CSP
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    where = f"{page.evaluate('document.documentElement.dataset.bsTheme')}, {page.viewport_size['width']} px"
    return [f"{page.url} [{where}] {v['id']} ({v['impact']}): "
            f"{node['html'][:160]} — {node.get('failureSummary', '')[:200]}"
            for v in result["violations"] if v["impact"] in BLOCKING for node in v["nodes"]]


def check_both_themes(browser, live_server: str, paths: list[str], email: str | None = None,
                      prepare=None) -> list[str]:
    problems = []
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme, viewport=DESKTOP)
        page = context.new_page()
        try:
            if email:
                sign_in(page, live_server, email)
            for path in paths:
                page.goto(live_server + path)
                assert page.evaluate("document.documentElement.dataset.bsTheme") == scheme
                if prepare:
                    prepare(page, path)
                problems += axe_violations(page, live_server)
                page.set_viewport_size(PHONE)  # the same page as a phone shows it (menus and forms fold)
                problems += axe_violations(page, live_server)
                page.set_viewport_size(DESKTOP)
        finally:
            context.close()
    return problems


def test_signed_out_pages(browser, live_server, app, make_user, make_image):
    problems = check_both_themes(browser, live_server, ["/", "/auth/login", "/auth/register"])
    app.config["PUBLIC_SHOWCASE"] = True  # the landing page with published images instead of the examples
    make_image(make_user(), prompt="a yellow star on a purple background", is_public=True)
    problems += check_both_themes(browser, live_server, ["/"])
    assert problems == [], "\n".join(problems)


def test_signed_in_pages(browser, live_server, app, make_user, make_image):
    from webapp.extensions import db
    from webapp.tables import Image

    ada = make_user("ada@example.com")
    mine = make_image(ada, prompt="a red circle on a blue background", is_public=True)
    make_image(ada, prompt="a green square")
    with app.app_context():
        generation_id = db.session.scalar(select(Image.generation_id).where(Image.id == mine))
    running = add_generation(app, ada, "queued")
    with app.app_context():
        from webapp.api_tokens import issue_token
        from webapp.tables import User

        issue_token(db.session.get(User, ada), "Open WebUI")

    def prepare(page, path):
        if path == "/":  # the studio with a try, the queue and the prompt history open
            page.locator("#queue .queue-item").first.wait_for()
            page.get_by_label("Prompt", exact=True).fill("a")
            page.locator("#prompt-history [role=option]").first.wait_for()
            page.get_by_label("Prompt", exact=True).press("ArrowDown")

    problems = check_both_themes(
        browser, live_server,
        ["/", f"/generations/{generation_id}", f"/generations/{running}", "/gallery", f"/images/{mine}", "/explore",
         "/auth/account", "/auth/tokens"], email="ada@example.com", prepare=prepare)
    assert problems == [], "\n".join(problems)


def test_admin_pages(browser, live_server, make_user):
    make_user("root@example.com", is_admin=True)
    make_user("ada@example.com", queue_weight=2.5)
    problems = check_both_themes(browser, live_server, ["/admin/", "/admin/users"], email="root@example.com")
    assert problems == [], "\n".join(problems)


def test_theme_follows_the_system_and_the_toggle_is_remembered(browser, live_server):
    context = browser.new_context(color_scheme="dark")
    page = context.new_page()
    try:
        page.goto(live_server + "/auth/login")
        theme = "document.documentElement.dataset.bsTheme"
        assert page.evaluate(theme) == "dark"
        page.get_by_role("button", name="Switch to light mode").click()
        assert page.evaluate(theme) == "light"
        page.goto(live_server + "/auth/register")  # remembered across pages…
        assert page.evaluate(theme) == "light"
        assert page.evaluate("localStorage.getItem('easel-theme')") == "light"
        page.emulate_media(color_scheme="light")  # … and the system changing does not undo a choice
        page.emulate_media(color_scheme="dark")
        assert page.evaluate(theme) == "light"
        page.get_by_role("button", name="Switch to dark mode").click()  # back to what the system shows: follow it
        assert page.evaluate("localStorage.getItem('easel-theme')") is None
        page.emulate_media(color_scheme="light")
        page.wait_for_function(f"() => {theme} === 'light'")
    finally:
        context.close()


def test_theme_is_set_before_first_paint(page, live_server):
    """The attribute is there when the body is first parsed (no light flash in dark mode)."""
    page.emulate_media(color_scheme="dark")
    page.add_init_script("new MutationObserver((records, observer) => { if (document.body) {"
                         " window.__first = document.documentElement.dataset.bsTheme || 'unset'; observer.disconnect(); }"
                         "}).observe(document, {childList: true, subtree: true});")
    page.goto(live_server + "/auth/login")
    assert page.evaluate("window.__first") == "dark"
