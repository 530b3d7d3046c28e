"""Control images from the web side: the catalog's control models, the checks every entry point shares, the
preprocessing at the generation's size and the stored copy. No torch here.

The studio (``control_image``, ``control``, ``control_scale``, ``control_preprocessor``), ``/api/v1`` (the same
fields) and AUTOMATIC1111's ControlNet units all become ``ControlUnit``s, checked by ``prepare`` before anything
is written; ``store`` saves the preprocessed control images (under ``create_generation``'s transaction) and
returns what the ``controls`` column records.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from PIL import Image as PILImage

from models.catalog import ModelEntry
from models.control_images import preprocess
from models.controls import (
    ESTIMATORS,
    MAX_SCALE,
    PREPROCESSORS,
    ControlEntry,
    EstimatorEntry,
    install_hint,
    load_controls,
    load_estimators,
)

from . import services
from .storage import generation_prefix
from .uploads import encode_png, fit_to


class ControlProblem(ValueError):
    """A control request that cannot be used; ``field`` names the input it is about."""

    def __init__(self, message: str, field: str = "control") -> None:
        super().__init__(message)
        self.field = field


@dataclass
class ControlUnit:
    """One control image as asked for: the decoded picture, the control model (None: the first that fits the
    model), its scale (None: the model's default) and the preprocessor (None: the model's own)."""

    picture: PILImage.Image
    name: str | None = None
    scale: float | None = None
    preprocessor: str | None = None


@dataclass
class PreparedControl:
    """A checked control: its catalog entry, scale, preprocessor, and the control image at the generation's size."""

    entry: ControlEntry
    scale: float
    preprocessor: str
    image: PILImage.Image


def catalog() -> dict[str, ControlEntry]:
    """The catalog's control models (``[controls.<name>]`` in ``EASEL_CATALOG``), read once per app."""
    held = current_app.extensions.setdefault("easel_controls", {})
    if "catalog" not in held:
        held["catalog"] = load_controls(current_app.config["EASEL_CATALOG"])
    return held["catalog"]


def estimators() -> dict[str, EstimatorEntry]:
    """The estimator preprocessors the catalog names (``[preprocessors.<name>]``), read once per app."""
    held = current_app.extensions.setdefault("easel_controls", {})
    if "estimators" not in held:
        held["estimators"] = load_estimators(current_app.config["EASEL_CATALOG"])
    return held["estimators"]


def offered_preprocessors() -> list[str]:
    """The built-in preprocessors, and the estimator ones whose weights are installed here (depth)."""
    installed = estimators()
    return [*PREPROCESSORS, *(name for name in ESTIMATORS
                              if name in installed and installed[name].unavailable_reason() is None)]


def preprocessor_problem(name: str) -> str | None:
    """Why a preprocessor cannot be used here (unknown, or an estimator whose weights are not installed), else None."""
    if name in offered_preprocessors():
        return None
    if name in ESTIMATORS:
        entry = estimators().get(name)
        return install_hint(name) + (f" Now: {entry.unavailable_reason()}." if entry is not None else "")
    return f"Unknown preprocessor {name!r}; this site has: {', '.join(offered_preprocessors())}."


def max_controls() -> int:
    """How many control images one generation may combine (``MAX_CONTROLS``, 2 by default)."""
    return int(current_app.config.get("MAX_CONTROLS", 2))


def fitting(entry: ModelEntry | None) -> list[ControlEntry]:
    """The usable control models that fit a model."""
    return [c for c in catalog().values() if entry is not None and c.fits(entry) and c.unavailable_reason() is None]


def choose(entry: ModelEntry, name: str | None) -> ControlEntry:
    """The control model for a request (None: the first usable one that fits the model).

    Raises:
        ControlProblem: unknown, unavailable, or made for another kind of model.
    """
    controls = catalog()
    if not name:
        found = fitting(entry)
        if not found:
            raise ControlProblem(f"No control model on this site fits {entry.label}.")
        return found[0]
    control = controls.get(name)
    if control is None:
        raise ControlProblem(f"Unknown control model {name!r}; this site offers: {', '.join(controls) or 'none'}.")
    if reason := control.unavailable_reason():
        raise ControlProblem(f"That control model is not available here: {reason}.")
    if not control.fits(entry):
        raise ControlProblem(f"The control model {control.label} fits {', '.join(control.base_kinds)} models, "
                             f"not {entry.label}.")
    return control


def prepare(units: list[ControlUnit], entry: ModelEntry, width: int, height: int,
            image_to_image: bool = False) -> list[PreparedControl]:
    """Check the units against the catalog and the model, and preprocess each picture at the generation's size.

    Raises:
        ControlProblem: too many units, a model that does not fit, a scale out of range, an unknown
            preprocessor, or a T2I-Adapter where only ControlNets work.
    """
    if len(units) > max_controls():
        raise ControlProblem(f"At most {max_controls()} control images may be combined; {len(units)} were sent.")
    prepared = []
    for unit in units:
        control = choose(entry, unit.name)
        scale = control.default_scale if unit.scale is None else float(unit.scale)
        if not 0 <= scale <= MAX_SCALE:
            raise ControlProblem(f"The control scale must be between 0 and {MAX_SCALE:g}.", "control_scale")
        preprocessor = unit.preprocessor or control.preprocessor
        if problem := preprocessor_problem(preprocessor):
            raise ControlProblem(problem, "control_preprocessor")
        if control.type == "t2i-adapter" and (image_to_image or len(units) > 1):
            raise ControlProblem("A T2I-Adapter works alone and on text-to-image only; use a ControlNet to combine "
                                 "controls or to start from an image.")
        picture = fit_to(unit.picture.convert("RGB"), (width, height), "crop")
        # an estimator's map (depth) is made by the worker, which has torch: the picture is stored as it is
        shown = picture if preprocessor in ESTIMATORS else preprocess(picture, preprocessor)
        prepared.append(PreparedControl(control, scale, preprocessor, shown))
    if len({p.entry.type for p in prepared}) > 1:
        raise ControlProblem("ControlNets and T2I-Adapters cannot be combined in one generation.")
    return prepared


def control_key(user_id: int, generation_id: str, index: int) -> str:
    """Where a generation's control image is stored: in the generation's folder, so it goes with the generation
    (deleting it, cleanup, the sweep of files no row owns)."""
    return f"{generation_prefix(user_id, generation_id)}control-{int(index)}.png"


def store(user_id: int, generation_id: str, prepared: list[PreparedControl]) -> list[dict]:
    """Save each control image (preprocessed, at the generation's size; for an estimator, the picture the worker
    makes the map of); the ``controls`` column's entries."""
    recorded = []
    storage = services.storage()
    for index, control in enumerate(prepared):
        key = control_key(user_id, generation_id, index)
        storage.save(key, encode_png(control.image), "image/png")
        recorded.append({"name": control.entry.name, "scale": control.scale, "preprocessor": control.preprocessor,
                         "image_key": key})
    return recorded


def forget(recorded: list[dict] | None) -> None:
    """Delete stored control images (a generation that was not committed)."""
    for unit in recorded or []:
        services.storage().delete(unit["image_key"])


def listing() -> list[dict]:
    """Every control model in the catalog, as ``GET /api/v1/controls`` shows it."""
    models = services.catalog()
    return [{"name": name, "label": c.label, "type": c.type, "base_kinds": list(c.base_kinds),
             "preprocessor": c.preprocessor, "default_scale": c.default_scale, "description": c.description,
             "models": [m for m, e in models.items() if c.fits(e)],
             "available": c.unavailable_reason() is None, "unavailable_reason": c.unavailable_reason()}
            for name, c in catalog().items()]
