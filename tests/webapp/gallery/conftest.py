"""Fixtures of the gallery tests."""
from __future__ import annotations

from datetime import datetime

import pytest


@pytest.fixture
def two_people(app, make_user, make_image) -> dict:
    ada, bob = make_user("ada@example.com"), make_user("bob@example.com")
    ids = {
        "fox": make_image(ada, prompt="a red fox in snow", created_at=datetime(2026, 3, 1, 12)),
        "owl": make_image(ada, prompt="an owl at night", created_at=datetime(2026, 3, 5, 12), is_starred=True),
        "sea": make_image(ada, prompt="red sea at dawn", created_at=datetime(2026, 3, 9, 12), is_public=True),
        "bob": make_image(bob, prompt="bob's red fox", created_at=datetime(2026, 3, 6, 12)),
    }
    return {"ada": ada, "bob": bob, "ids": ids}
