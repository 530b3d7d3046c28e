"""The API reference page (webapp/api/docs.py): Swagger UI from the vendored files renders the generated
document in Chromium, with no script errors."""
from __future__ import annotations

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
