"""``python -m tests.support.flaky_worker``: a generation worker whose database blips once per "flaky" generation.

The first time a generation whose prompt contains "flaky" stores its images, the write fails with the
``OperationalError`` a PostgreSQL restart or a locked SQLite file gives; every later try succeeds (a
marker file per generation in ``TEST_FLAKY_DIR`` remembers the blip). The rest is the real worker.
"""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.exc import OperationalError

from jobs import generate
from jobs.worker import exit_at_once, main

_store = generate._store


def flaky_store(generation, images, recorder=None, seen=None) -> None:
    """``_store``, failing once for each generation whose prompt contains "flaky"."""
    marker = Path(os.environ["TEST_FLAKY_DIR"]) / generation.id
    if "flaky" in generation.prompt and not marker.exists():
        marker.touch()
        raise OperationalError("UPDATE generations", {}, Exception("server closed the connection unexpectedly"))
    _store(generation, images, recorder, seen)


generate._store = flaky_store

if __name__ == "__main__":
    main()
    exit_at_once()
