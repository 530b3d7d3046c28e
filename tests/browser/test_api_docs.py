"""The API reference page (webapp/api/docs.py): Swagger UI from the vendored files renders the generated
document in Chromium, with no script errors, inside the site's page (its header, the footer's link to it, readable
tag names) and in its colour mode (Swagger UI's dark theme when the site is dark)."""
from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.browser


def test_swagger_ui_renders_every_operation(page, live_server):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(f"{live_server}/api/v1/docs")
    spec = page.request.get(f"{live_server}/api/v1/openapi.json").json()
    operations = sum(len(set(methods) - {"parameters"}) for methods in spec["paths"].values())
    page.wait_for_function("n => document.querySelectorAll('.opblock-summary-path').length === n", arg=operations)
    assert errors == []
    assert page.locator("nav.navbar").get_by_role("link", name="Easel").is_visible()  # the site's header
    assert page.locator(".opblock-tag").first.inner_text().startswith("Generations")  # not "api_generations"
    assert page.locator("#api-docs-link").get_attribute("href") == "/api/v1/docs"  # linked from every footer
    assert not page.evaluate("document.documentElement.classList.contains('dark-mode')")
    page.emulate_media(color_scheme="dark")  # the site follows the system, and Swagger UI follows the site
    page.wait_for_function("() => document.documentElement.classList.contains('dark-mode')")
    if os.environ.get("EASEL_SCREENSHOT_DIR"):  # to look at
        page.screenshot(path=os.path.join(os.environ["EASEL_SCREENSHOT_DIR"], "api-docs-dark.png"))
