"""Request parsing for ``/api/v1``: an invalid request is a 400 problem with each field's messages."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import RAISE, Schema


def arguments_400(blp: Blueprint, schema: type[Schema], location: str = "json"):
    """``blp.arguments`` that answers 400 (not webargs' 422), documented as such; unknown fields are refused
    in the query string too (webargs would drop them), as the document says."""
    return blp.arguments(schema, location=location, error_status_code=400, unknown=RAISE)
