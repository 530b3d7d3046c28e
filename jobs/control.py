"""Control images on the worker: control models kept warm beside their pipeline, and the control pipeline built
from the warm one (``from_pipe``: the base model's weights are shared, never loaded a second time).

``jobs.pipelines.generate`` asks ``for_call`` for the pipeline and the call arguments when a generation has
controls. A control model is read from its folder once per warm pipeline and lives as long as that pipeline
does (the loader's bounded cache evicts both together), as LoRAs do. A control picture stored for an estimator
preprocessor (depth, pose) becomes its map here, with the weights the operator installed (``models/estimators.py``).
"""
from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

from PIL import Image as PILImage

from models import loader
from models.catalog import ModelError, ModelUnavailable
from models.controls import ESTIMATORS, ControlEntry, install_hint, load_controls, load_estimators
from webapp import services

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

    from webapp.tables import Generation

    from .pipelines import Warm

log = logging.getLogger(__name__)

LOAD_COUNT = 0  # control models read from disk in this process (tests prove they stay warm)
CONTROL_GONE = "The control image of this generation is no longer stored, so it cannot be made."


def _catalog() -> dict[str, ControlEntry]:
    from flask import current_app

    return load_controls(current_app.config["EASEL_CATALOG"])


def _model(warm: Warm, entry: ControlEntry) -> Any:
    """The control model, read once per warm pipeline, on its device and in its dtype."""
    global LOAD_COUNT
    held = warm.controls.setdefault("models", {})
    if entry.name not in held:
        if reason := entry.unavailable_reason():
            raise ModelUnavailable(reason)
        from diffusers import ControlNetModel, T2IAdapter

        cls = ControlNetModel if entry.type == "controlnet" else T2IAdapter
        model = cls.from_pretrained(str(entry.path), torch_dtype=warm.pipe.unet.dtype, use_safetensors=True)
        held[entry.name] = model.to(warm.pipe.device).eval()
        LOAD_COUNT += 1
        log.info("loaded control %s for %s", entry.name, warm.name)
    return held[entry.name]


MODES = ("text", "image", "inpaint")  # text-to-image, image-to-image, inpainting (a mask)


def pipeline(warm: Warm, entries: list[ControlEntry], mode: str = "text") -> DiffusionPipeline:
    """The control pipeline for these control models and a mode (``MODES``), made from the warm pipeline once and
    kept: ControlNet text-to-image, image-to-image or inpainting (diffusers' ``StableDiffusionControlNet…Pipeline``
    for the mode, by ``AutoPipelineFor….from_pipe``)."""
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image

    key = (tuple(entry.name for entry in entries), mode)
    pipes = warm.controls.setdefault("pipelines", {})
    if key not in pipes:
        models = [_model(warm, entry) for entry in entries]
        adapter = entries[0].type == "t2i-adapter"
        if adapter and (mode != "text" or len(entries) > 1):
            raise ModelError("a T2I-Adapter works alone and on text-to-image only")
        extra = {"adapter": models[0]} if adapter else {"controlnet": models[0] if len(models) == 1 else models}
        if adapter:
            from diffusers import StableDiffusionAdapterPipeline, StableDiffusionXLAdapterPipeline

            cls = StableDiffusionXLAdapterPipeline if "XL" in type(warm.pipe).__name__ else StableDiffusionAdapterPipeline
            # DiffusionPipeline.from_pipe casts every shared component to fp32 unless told: the warm pipeline's too
            pipe = cls.from_pipe(warm.pipe, dtype=warm.pipe.unet.dtype, **extra)
        else:
            auto = {"text": AutoPipelineForText2Image, "image": AutoPipelineForImage2Image,
                    "inpaint": AutoPipelineForInpainting}[mode]
            pipe = auto.from_pipe(warm.pipe, **extra)
        pipe.set_progress_bar_config(disable=True)
        pipe._easel_precision = loader.precision_of(warm.pipe)
        if pipe._easel_precision == "bf16":
            loader.decode_in_fp32(pipe)
        pipes[key] = pipe
    pipe = pipes[key]
    pipe.scheduler = warm.pipe.scheduler  # a LoRA (LCM) may have swapped it since the control pipeline was made
    return pipe


def _image(key: str) -> PILImage.Image:
    try:
        data = services.storage().open(key)
    except FileNotFoundError as exc:
        raise ModelError(CONTROL_GONE) from exc
    with PILImage.open(io.BytesIO(data)) as picture:
        return picture.convert("RGB")


def _estimated(picture: PILImage.Image, preprocessor: str) -> PILImage.Image:
    """The map an estimator preprocessor (depth, pose) makes of a stored control picture, with the installed
    weights."""
    from flask import current_app

    from models.estimators import estimate

    entry = load_estimators(current_app.config["EASEL_CATALOG"]).get(preprocessor)
    if entry is None or (reason := entry.unavailable_reason()):
        raise ModelUnavailable(install_hint(preprocessor) if entry is None else reason)
    return estimate(preprocessor, picture, entry.path)


def for_call(warm: Warm, generations: list[Generation], mode: str = "text") -> tuple[DiffusionPipeline, dict]:
    """The control pipeline and its call arguments (control images per image, scales) for these generations.

    ``mode``: ``text``, ``image`` (a starting image) or ``inpaint`` (a starting image and a mask; never batched).

    They share the batch key, so the same control models and scales; each image gets its generation's
    control images (stored at its size, already preprocessed).
    """
    lead = generations[0].controls
    catalog = _catalog()
    missing = next((unit["name"] for unit in lead if unit["name"] not in catalog), None)
    if missing is not None:
        raise ModelUnavailable(f"control {missing!r} is no longer in the catalog")
    entries = [catalog[unit["name"]] for unit in lead]
    pipe = pipeline(warm, entries, mode)
    per_unit: list[list[PILImage.Image]] = [[] for _ in lead]
    for generation in generations:
        pictures = [_image(unit["image_key"]) for unit in generation.controls]
        pictures = [_estimated(picture, unit["preprocessor"]) if unit.get("preprocessor") in ESTIMATORS else picture
                    for picture, unit in zip(pictures, generation.controls, strict=True)]
        for index, picture in enumerate(pictures):
            per_unit[index] += [picture] * generation.num_images
    scales = [float(unit["scale"]) for unit in lead]
    if entries[0].type == "t2i-adapter":
        return pipe, {"image": per_unit[0], "adapter_conditioning_scale": scales[0]}
    # Several ControlNets take one image each for the whole call (diffusers' MultiControlNet): such generations
    # never share a call (jobs.batching.batch_key), so that image is the one generation's.
    # An edit (never batched) gives its one picture, which diffusers repeats: its "only masked" crop takes a single
    # picture only.
    images: Any = ([pictures[0] for pictures in per_unit] if len(per_unit) > 1
                   else per_unit[0][0] if mode == "inpaint" and len(generations) == 1 else per_unit[0])
    return pipe, {"image" if mode == "text" else "control_image": images,
                  "controlnet_conditioning_scale": scales[0] if len(scales) == 1 else scales}


def sized(arguments: dict, size: tuple[int, int]) -> dict:
    """Call arguments with every control picture at ``size`` (a hires fix's passes are made at two sizes)."""
    def fit(value: Any) -> Any:
        if isinstance(value, list):
            return [fit(item) for item in value]
        if isinstance(value, PILImage.Image) and value.size != size:
            return value.resize(size, PILImage.Resampling.LANCZOS)
        return value

    return {key: fit(value) if key in ("image", "control_image") else value for key, value in arguments.items()}


def hires_passes(warm: Warm, generation: Generation, base: tuple[int, int], full: tuple[int, int]
                 ) -> tuple[DiffusionPipeline, dict, DiffusionPipeline | None, dict]:
    """A hires fix with control images: the first pass's control pipeline and arguments (text-to-image at ``base``),
    and the second's (ControlNet image-to-image at ``full``; None for a T2I-Adapter, which steers the first only)."""
    first_pipe, first = for_call(warm, [generation], "text")
    if _catalog()[generation.controls[0]["name"]].type == "t2i-adapter":
        return first_pipe, sized(first, base), None, {}
    second_pipe, second = for_call(warm, [generation], "image")
    return first_pipe, sized(first, base), second_pipe, sized(second, full)
