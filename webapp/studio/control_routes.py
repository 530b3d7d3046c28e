"""The studio's control-image routes: ``POST /controls/preview`` (what the preprocessor makes of a picture) and
``GET /generations/<id>/control.png`` (the control image a generation was made with)."""
from __future__ import annotations

from flask import Response, current_app, jsonify
from flask_login import login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional

from models.control_images import preprocess
from models.controls import ESTIMATORS, PREPROCESSORS

from .. import services
from ..access import viewable_generation_or_404
from ..controls import preprocessor_problem
from ..image_files import serve_file
from ..inputs import AsciiIntegerField
from ..uploads import UploadRejected, decode_upload, encode_png, fit_to
from .routes import bp

PREVIEW_MAX_SIDE = 1024


class ControlPreviewForm(FlaskForm):
    """Fields of ``POST /controls/preview``."""

    control_image = FileField("Control image")
    control_preprocessor = SelectField("Preprocessor", choices=[SelectChoice(p, p) for p in PREPROCESSORS + ESTIMATORS],
                                       default="scribble")
    width = AsciiIntegerField("Width", validators=[Optional()])
    height = AsciiIntegerField("Height", validators=[Optional()])


@bp.post("/controls/preview")
@login_required
def control_preview():
    """The preprocessed control image (PNG) at the generation's size; 400 with the reason for a bad picture."""
    form = ControlPreviewForm()
    if not form.validate_on_submit():
        return jsonify(errors=form.errors), 400
    storage = form.control_image.data
    if storage is None or not getattr(storage, "filename", None):
        return jsonify(errors={"control_image": ["Choose or draw a control image."]}), 400
    try:
        picture = decode_upload(storage.read(), current_app.config["MAX_UPLOAD_PIXELS"])
    except UploadRejected as exc:
        return jsonify(errors={"control_image": [str(exc)]}), 400
    entry = services.catalog().get(services.default_model())
    width = form.width.data or (entry.default_width if entry else 512)
    height = form.height.data or (entry.default_height if entry else 512)
    if not (8 <= width <= PREVIEW_MAX_SIDE and 8 <= height <= PREVIEW_MAX_SIDE):
        return jsonify(errors={"width": [f"Use a size from 8 to {PREVIEW_MAX_SIDE} pixels."]}), 400
    chosen = form.control_preprocessor.data
    if problem := preprocessor_problem(chosen):
        return jsonify(errors={"control_preprocessor": [problem]}), 400
    if chosen in ESTIMATORS:  # no torch on the web: the worker makes the map when the picture is generated
        return jsonify(errors={"control_preprocessor": [
            f"The {chosen} map is made by the worker when the picture is generated; it has no preview here."]}), 400
    shown = preprocess(fit_to(picture, (width, height), "crop"), chosen)
    return Response(encode_png(shown), mimetype="image/png", headers={"Cache-Control": "no-store"})


@bp.get("/generations/<generation_id>/control.png")
@login_required
def control_file(generation_id: str):
    """The (first) control image a generation was made with, as stored."""
    generation = viewable_generation_or_404(generation_id)
    if not generation.controls:
        return jsonify(error="This generation had no control image."), 404
    return serve_file(generation.controls[0]["image_key"], "image/png")
