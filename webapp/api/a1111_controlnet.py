"""The ControlNet extension's own routes as AUTOMATIC1111 clients call them (``/controlnet/...``, HTTP Basic like
``/sdapi/v1``): the control models and the preprocessors ("modules") this site offers."""
from __future__ import annotations

from flask import Blueprint, Flask, jsonify

from ..controls import catalog, offered_preprocessors
from ..errors import register_api_errors
from .gate import Scheme, protect
from .problems import a1111_error

bp = Blueprint("a1111_controlnet", __name__, url_prefix="/controlnet")
protect(bp, Scheme.BASIC)
VERSION = 2  # what webuiapi's controlnet_version() reads; the unit fields Easel takes are those of version 2


@bp.get("/model_list")
def model_list():
    """The usable control models by catalog name (a unit's ``model``)."""
    return jsonify({"model_list": [name for name, c in catalog().items() if c.unavailable_reason() is None]})


@bp.get("/module_list")
def module_list():
    """The preprocessors (a unit's ``module``): the built-in ones, and depth where its weights are installed."""
    return jsonify({"module_list": offered_preprocessors()})


@bp.get("/version")
def version():
    return jsonify({"version": VERSION})


def register(app: Flask) -> None:
    """Serve the routes; their errors are A1111-shaped."""
    app.register_blueprint(bp)
    register_api_errors(app, "/controlnet", a1111_error)
