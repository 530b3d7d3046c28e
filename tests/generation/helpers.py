"""Helpers for driving generations through the real routes."""
from __future__ import annotations

import re

from ..conftest import csrf_token, wait_for

FIELDS = {"prompt": "a red circle on a blue background", "negative_prompt": "", "model": "easel-tiny",
          "width": "64", "height": "64", "steps": "8", "guidance": "5.0", "seed": "42", "num_images": "1",
          "style": "none"}


def submit(client, **overrides):
    """POST the studio form (with its CSRF token) and return the response."""
    data = {**FIELDS, **{k: str(v) for k, v in overrides.items()}, "csrf_token": csrf_token(client, "/")}
    return client.post("/generations", data=data)


def submit_ok(client, **overrides) -> str:
    """Submit and return the new generation's id (asserting the 303)."""
    response = submit(client, **overrides)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    match = re.fullmatch(r"/generations/([0-9a-f-]{36})", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def state(client, generation_id: str) -> dict:
    response = client.get(f"/api/generations/{generation_id}")
    assert response.status_code == 200
    return response.get_json()


def wait_status(client, generation_id: str, statuses: set[str], timeout: float = 120.0) -> dict:
    """Poll the API until the status is one of ``statuses``."""
    return wait_for(lambda: (s := state(client, generation_id))["status"] in statuses and s,
                    timeout=timeout, interval=0.2, message=f"generation {generation_id} to be {statuses}")


def wait_running(client, generation_id: str, min_step: int = 2, timeout: float = 120.0) -> dict:
    """Poll until the job is running at ``min_step`` or later (fails at once if it ended)."""

    def check():
        s = state(client, generation_id)
        assert s["status"] in {"queued", "running"}, s
        return s if s["step"] >= min_step else None

    return wait_for(check, timeout=timeout, interval=0.1, message=f"generation {generation_id} to run")
