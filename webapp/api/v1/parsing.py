"""Request parsing for ``/api/v1``: an invalid request is a 400 problem with each field's messages."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import RAISE, Schema
from webargs.flaskparser import FlaskParser
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import CombinedMultiDict


class MultipartParser(FlaskParser):
    """webargs' parser whose ``form`` location also holds the uploaded files, so one schema describes a
    multipart request whole (its text fields and its files), for validation and for the document."""

    def load_form(self, req, schema: Schema) -> MultiDictProxy:
        """The form's fields and files together."""
        return self._makeproxy(CombinedMultiDict([req.form, req.files]), schema)


class ApiBlueprint(Blueprint):
    """flask-smorest's Blueprint with the multipart-aware parser."""

    ARGUMENTS_PARSER = MultipartParser()


def arguments_400(blp: Blueprint, schema: type[Schema], location: str = "json", **options):
    """``blp.arguments`` that answers 400 (not webargs' 422), documented as such; unknown fields are refused
    in the query string too (webargs would drop them), as the document says."""
    return blp.arguments(schema, location=location, error_status_code=400, unknown=RAISE, **options)


def multipart_400(blp: ApiBlueprint, schema: type[Schema]):
    """``arguments_400`` for a multipart/form-data body (text fields and files in one schema)."""
    return arguments_400(blp, schema, location="form", content_type="multipart/form-data")
