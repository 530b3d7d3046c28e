"""The one password rule: 8 to 128 characters, not a common password, not the email's name."""
from __future__ import annotations

import pytest

from webapp.auth.passwords import common_passwords, password_problem


def test_the_common_list_is_shipped_and_about_ten_thousand_long():
    common = common_passwords()
    assert 9_000 <= len(common) <= 10_000
    assert {"password", "iloveyou1", "qwertyuiop"} <= common


@pytest.mark.parametrize(("password", "email", "problem"), [
    ("correct horse", "ada@example.com", None),
    ("abcd" * 32, None, None),  # 128 characters
    ("abcd" * 32 + "!", None, "Use 8 to 128 characters."),
    ("seven77", None, "Use 8 to 128 characters."),
    ("Password1", None, "too easy to guess"),  # any case
    ("QWERTYUIOP", None, "too easy to guess"),
    ("lowercase only words", None, None),  # no composition rules
    ("ada.lovelace", "Ada.Lovelace@example.com", "not be your email name"),
])
def test_password_problem(password, email, problem):
    found = password_problem(password, email)
    assert (found is None) if problem is None else (problem in found)


def test_create_admin_refuses_a_common_password(runner, monkeypatch):
    monkeypatch.setenv("EASEL_ADMIN_PASSWORD", "password123")
    result = runner.invoke(args=["create-admin", "root@example.com"])
    assert result.exit_code != 0 and "too easy to guess" in result.output
