"""The Content-Security-Policy blocks nothing the site itself uses: no violation on the main pages, in Chromium."""
from __future__ import annotations

import pytest

from tests.support import add_generation
from webapp.tables import utcnow

pytestmark = pytest.mark.browser

VIOLATION_PROBE = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation',
  e => window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));
"""


# The dev server may be mid-way through a static file when the browser moves on; that is not a CSP matter.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_main_pages_report_no_csp_violation(page, live_server, app, make_user, make_image):
    root = make_user("root@example.com", is_admin=True)
    image_id = make_image(root, is_public=True, published_at=utcnow())
    generation_id = add_generation(app, root, status="succeeded")
    console = []
    page.on("console", lambda message: console.append(message.text))
    page.add_init_script(VIOLATION_PROBE)

    def visit(path: str) -> None:
        response = page.goto(live_server + path)
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        page.wait_for_load_state("networkidle")
        violations = page.evaluate("window.__cspViolations")
        assert violations == [], (path, violations)

    for path in ("/", "/auth/login", "/auth/register", "/auth/forgot"):
        visit(path)
    page.goto(live_server + "/auth/login")
    page.get_by_label("Email").fill("root@example.com")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server + "/")
    for path in ("/", "/gallery", "/explore", f"/images/{image_id}", f"/generations/{generation_id}", "/auth/account",
                 "/admin/", "/admin/images", "/admin/users", "/admin/reports", "/admin/audit", "/admin/terms"):
        visit(path)
    page.goto(live_server + "/admin/images")
    page.locator("#select-all").click()  # the moved script still works
    assert page.locator("#admin-images input[name=image_ids]").first.is_checked()
    assert [text for text in console if "Content Security Policy" in text] == []
