"""URL converters shared by the blueprints."""
from __future__ import annotations

from werkzeug.routing import IntegerConverter

MAX_ROW_ID = 2**31 - 1  # the largest INTEGER primary key on PostgreSQL (SQLite overflows past 2**63 - 1)


class RowIdConverter(IntegerConverter):
    """``<id:user_id>``: a table's integer id; a larger number does not match (404), never reaching the database."""

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(map, *args, **kwargs)
