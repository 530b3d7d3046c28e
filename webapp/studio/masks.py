"""The edits of ``POST /generations``: a mask (a file, or the reused mask of one of the person's generations), or
a hires fix."""
from __future__ import annotations

from flask import abort
from flask_login import current_user

from .. import services
from ..access import owned_generation_or_404, viewable_image_or_404
from ..editing import DEFAULT_MASK_BLUR, EditRequest, HiresRejected, MaskRejected, fit_mask, hires_request, stored_mask
from ..extensions import db
from ..tables import Source, Upload
from .forms import GenerationForm


def start_size(form: GenerationForm) -> tuple[int, int]:
    """The size of the starting image the form chose (its access was checked by ``start_image_params``)."""
    if form.upload_picture is not None:
        return form.upload_picture.size
    if form.init_image_id.data:
        image = viewable_image_or_404(form.init_image_id.data)
        return image.width, image.height
    upload = db.session.get(Upload, form.upload_id.data)
    if upload is None or upload.user_id != current_user.id:
        abort(404)
    return upload.width, upload.height


def mask_edit(form: GenerationForm) -> EditRequest | None:
    """The inpainting a validated form asks for (its mask file, or the reused mask of one of the person's
    generations), or None; another person's generation is a 404.

    Raises:
        MaskRejected: nothing left to repaint once fitted to the picture.
    """
    picture = form.mask_picture
    if picture is None and form.mask_from.data:
        source = owned_generation_or_404(form.mask_from.data)
        if source.edit is None:
            abort(404)
        try:
            picture = stored_mask(services.storage().open(source.edit.mask_key))
        except FileNotFoundError:
            raise MaskRejected("That mask is no longer there; paint it again.") from None
    if picture is None or not form.has_start:
        return None
    mask = fit_mask(picture, start_size(form), (form.width.data, form.height.data), form.resize_mode.data or "crop")
    return EditRequest(kind=Source.INPAINT, mask=mask, mask_blur=DEFAULT_MASK_BLUR if form.mask_blur.data is None
                       else form.mask_blur.data, inpaint_area=form.inpaint_area.data or "whole")


def hires_edit(form: GenerationForm) -> tuple[tuple[int, int], EditRequest] | None:
    """The hires fix a validated form asks for: the larger size and its settings, or None.

    Raises:
        HiresRejected: with a starting image, or a setting the model cannot make.
    """
    if not form.hires.data:
        return None
    if form.has_start:
        raise HiresRejected("hires", "The hires fix makes a picture from words; leave it off with a starting image.")
    return hires_request(form.entry.sizes, form.width.data, form.height.data, form.hr_scale.data,
                         form.hr_upscaler.data, form.hr_strength.data, form.hr_steps.data)
