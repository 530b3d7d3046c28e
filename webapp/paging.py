"""Plain numbered pages: the page number read from the query string, so back and reload keep the place."""
from __future__ import annotations

from flask import request

PER_PAGE = 24


def page_number() -> int:
    """``?page=`` as a sane positive number (1 when missing or not a number)."""
    try:
        return max(1, min(10_000, int(request.args.get("page", 1))))
    except ValueError:
        return 1
