"""Fixtures for the model tests: the bundled pipeline, loaded once per module on the CPU."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def tiny_pipe() -> Iterator[object]:
    """The bundled easel-tiny pipeline, loaded offline on the CPU."""
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from models.loader import get_pipeline

    yield get_pipeline("easel-tiny", device="cpu")
    if old is None:
        os.environ.pop("HF_HUB_OFFLINE", None)
    else:
        os.environ["HF_HUB_OFFLINE"] = old
