"""Where every request's input is parsed and bounded, before any route reads it.

One guard runs before every request (``register``): a form body must be UTF-8 without NUL characters, and a
JSON body (any route, any dialect) must parse under ``load_json``'s bounds. A refusal is ``InputRejected``, a
400 that each route family answers in its own shape (the studio's page, RFC 9457 problem details, OpenAI's
error object, AUTOMATIC1111's 422), so nothing behind the guard is reached and nothing is written.

The field readers here (``ascii_int``, the WTForms ``AsciiIntegerField``/``AsciiFloatField`` and the
marshmallow ``AsciiInteger``/``AsciiFloat``) read numbers in ASCII digits only: ``str.isdigit()`` also takes
"²" (which ``int()`` refuses) and ``int()``/``float()`` also read "٣" and "１２", which no form offers.
Images are decoded, fully and inside one guarded block, by ``webapp.uploads``.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from marshmallow import ValidationError
from marshmallow import fields as mm_fields
from werkzeug.exceptions import BadRequest
from wtforms import FloatField, IntegerField

MAX_JSON_DEPTH = 32  # arrays and objects inside each other; no API of Easel's needs more than 4
MAX_JSON_INTEGER = 2**63 - 1  # numbers beyond 64 bits fit no column
# NUL, and the lone UTF-16 halves that JSON's \uD800 escapes can make (they cannot be stored or encoded).
BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
ASCII_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
ASCII_FLOAT = re.compile(r"[+-]?(?:[0-9]{1,20}(?:\.[0-9]{0,20})?|\.[0-9]{1,20})(?:[eE][+-]?[0-9]{1,3})?")

NOT_UTF8 = "The form contained text that is not valid UTF-8. Please retype it."
BAD_JSON_TEXT = "Text in the JSON body holds a NUL character or a lone UTF-16 surrogate (\\uD800–\\uDFFF); remove it."
NOT_FINITE = "Numbers must be finite: NaN and Infinity are not JSON numbers."
TOO_LARGE = f"Whole numbers must lie within ±{MAX_JSON_INTEGER}."
TOO_DEEP = f"The JSON body nests arrays and objects more than {MAX_JSON_DEPTH} deep."


class InputRejected(BadRequest):
    """A request body that no route reads: a 400 with a message for the person or client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


def _constant(name: str) -> float:
    raise InputRejected(NOT_FINITE)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as infinity
        raise InputRejected(NOT_FINITE)
    return value


def _int(text: str) -> int:
    if len(text) > 20:
        raise InputRejected(TOO_LARGE)
    value = int(text)
    if abs(value) > MAX_JSON_INTEGER:
        raise InputRejected(TOO_LARGE)
    return value


def _check(value: Any) -> None:
    """Walk the parsed value without recursion: depth, and every string (keys too) free of NUL and surrogates."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if BAD_TEXT.search(item):
                raise InputRejected(BAD_JSON_TEXT)
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise InputRejected(TOO_DEEP)
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def load_json(data: str | bytes) -> Any:
    """Parse JSON text under Easel's bounds.

    Raises:
        InputRejected: not UTF-8 or not JSON, NaN/±Infinity (or a number that overflows to it), a whole number
            past 64 bits, nesting deeper than ``MAX_JSON_DEPTH``, NUL or lone surrogates in any string.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except InputRejected:
        raise
    except RecursionError:
        raise InputRejected(TOO_DEEP) from None
    except UnicodeDecodeError:
        raise InputRejected("The JSON body is not valid UTF-8.") from None
    except ValueError as exc:
        raise InputRejected(f"The body is not valid JSON: {_ascii(exc)}.") from None
    _check(value)
    return value


def _ascii(exc: Exception) -> str:
    return str(exc).encode("ascii", "backslashreplace").decode()


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON with ``load_json``'s bounds: ``request.get_json()`` anywhere reads only what may be read."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return load_json(s)


def ascii_int(raw: str, low: int | None = None, high: int | None = None) -> int:
    """A whole number written in ASCII digits (optional sign), within ``low``..``high`` when given.

    Raises:
        ValueError: anything else ("²", "٣", "１２", "1.0", "", a number out of range).
    """
    text = raw.strip()
    if not ASCII_INTEGER.fullmatch(text):
        raise ValueError(f"{raw!a} is not a whole number")
    value = int(text)
    if (low is not None and value < low) or (high is not None and value > high) or abs(value) > MAX_JSON_INTEGER:
        raise ValueError(f"{value} is out of range")
    return value


def ascii_float(raw: str) -> float:
    """A finite decimal number in ASCII ("1", "-0.5", "2e3").

    Raises:
        ValueError: anything else (NaN, inf, "١٫٥", "").
    """
    text = raw.strip()
    if not ASCII_FLOAT.fullmatch(text) or not math.isfinite(value := float(text)):  # 1e999 reads as infinity
        raise ValueError(f"{raw!a} is not a finite number")
    return value


class AsciiIntegerField(IntegerField):
    """WTForms' IntegerField reading ASCII digits only (and within 64 bits)."""

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist:
            return
        try:
            self.data = ascii_int(valuelist[0])
        except ValueError:
            self.data = None
            raise ValueError(self.gettext("Not a valid integer value.")) from None


class AsciiFloatField(FloatField):
    """WTForms' FloatField reading finite ASCII decimals only (no NaN, no infinity, no other digits)."""

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist:
            return
        try:
            self.data = ascii_float(valuelist[0])
        except ValueError:
            self.data = None
            raise ValueError(self.invalid_value_message or self.gettext("Not a valid float value.")) from None


class AsciiInteger(mm_fields.Integer):
    """marshmallow's Integer; from text (multipart, query strings) ASCII digits only."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, str):
            try:
                value = ascii_int(value)
            except ValueError:
                raise self.make_error("invalid") from None
        return super()._validated(value)


class AsciiFloat(mm_fields.Float):
    """marshmallow's Float; from text, finite ASCII decimals only."""

    def _validated(self, value: Any) -> float:
        if isinstance(value, str):
            try:
                value = ascii_float(value)
            except ValueError:
                raise self.make_error("invalid") from None
        return super()._validated(value)


def json_text(text: str, field: str) -> Any:
    """A JSON value sent as the text of a form field (a multipart part), under ``load_json``'s bounds.

    Raises:
        marshmallow.ValidationError: naming ``field``.
    """
    try:
        return load_json(text)
    except InputRejected as exc:
        raise ValidationError(exc.description, field) from None


def refuse_unreadable_body() -> None:
    """The guard: a form body must be UTF-8 without NUL; a JSON body must parse under ``load_json``'s bounds.

    Raises:
        InputRejected: before any route, CSRF check or API gate reads the body.
    """
    if request.mimetype == "application/x-www-form-urlencoded":
        raw = unquote_to_bytes(request.get_data(cache=True).replace(b"+", b" "))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputRejected(NOT_UTF8) from None
        if "\x00" in text:
            raise InputRejected(NOT_UTF8)
    elif request.mimetype == "multipart/form-data":
        if any("\x00" in v or "\ufffd" in v for values in request.form.listvalues() for v in values):
            raise InputRejected(NOT_UTF8)
    elif request.is_json and request.get_data(cache=True):
        request.get_json()  # parsed once by BoundedJSONProvider and cached for the route; InputRejected if bad


def register(app: Flask) -> None:
    """Bounded JSON for ``request.get_json()`` everywhere, and the guard before every request that has a body."""
    app.json_provider_class = BoundedJSONProvider
    app.json = BoundedJSONProvider(app)

    @app.before_request
    def guard_input() -> None:
        if request.method in {"POST", "PUT", "PATCH", "DELETE"}:
            refuse_unreadable_body()
