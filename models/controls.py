"""Control models (ControlNet, T2I-Adapter) in the catalog: ``[controls.<name>]`` tables (stdlib only, no torch).

Each entry names a diffusers ControlNet or T2I-Adapter folder (``config.json`` and safetensors weights), the
model kinds it fits, the preprocessor its control images want and a default scale. Like models and LoRAs, an
entry whose files are absent (or pickled) is listed as unavailable with the reason; nothing is downloaded.

Preprocessors that need estimator weights (``ESTIMATORS``: depth, pose) are offered only where an operator
installed them: ``[preprocessors.depth] path = "..."`` names a local transformers depth-estimation folder (DPT,
Depth Anything…), ``[preprocessors.pose]`` a ViTPose one (``config.json``, ``preprocessor_config.json`` and
safetensors weights). The worker runs them
(``models/estimators.py``); the web side only checks that they are there.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from models.catalog import PICKLED_SUFFIXES, PIPELINE_CLASSES, ModelEntry, ModelError, read_catalog_file

CONTROL_TYPES = ("controlnet", "t2i-adapter")
PREPROCESSORS = ("none", "scribble", "canny")  # built in: no estimator weights (control_images.py)
ESTIMATORS = ("depth", "pose")  # need estimator weights an operator installs ([preprocessors.<name>], estimators.py)
KNOWN_PREPROCESSORS = PREPROCESSORS + ESTIMATORS
MAX_SCALE = 2.0
DEFAULT_MAX_CONTROLS = 2


@dataclass(frozen=True)
class ControlEntry:
    """One control model the site offers on top of base models of some kinds."""

    name: str
    label: str
    path: Path
    type: str
    base_kinds: tuple[str, ...]
    preprocessor: str
    default_scale: float
    description: str

    def unavailable_reason(self) -> str | None:
        """None when the folder holds a config and safetensors weights, else why it cannot be used."""
        what = f"control {self.name!r}"
        if not (self.path / "config.json").is_file():
            return f"{what}: no diffusers folder at {self.path} (config.json missing); place the model folder there"
        try:
            suffixes = {child.suffix.lower() for child in self.path.iterdir()}
        except OSError as exc:
            return f"{what}: {self.path} cannot be read ({exc.strerror})"
        if ".safetensors" not in suffixes:
            if pickled := suffixes & set(PICKLED_SUFFIXES):
                return (f"{what}: {self.path} holds only pickled weights ({', '.join(sorted(pickled))}), which can "
                        f"run code when loaded; convert them to safetensors on a trusted machine")
            return f"{what}: no .safetensors weights in {self.path}"
        try:
            declared = json.loads((self.path / "config.json").read_text(encoding="utf-8")).get("_class_name")
        except (OSError, ValueError, AttributeError):
            return f"{what}: {self.path / 'config.json'} is not readable JSON"
        expected = "ControlNetModel" if self.type == "controlnet" else "T2IAdapter"
        if declared and declared != expected:
            return f"{what}: the folder holds a {declared}, but the catalog says type = {self.type!r}"
        return None

    def fits(self, entry: ModelEntry) -> bool:
        """Whether the control model was trained for this model's architecture."""
        return entry.architecture in self.base_kinds


def _control(name: str, raw: dict, base: Path) -> ControlEntry:
    """Build and check one [controls.<name>] table."""
    try:
        control = ControlEntry(
            name=name, label=str(raw.get("label", name)), path=(base / raw["path"]).resolve(),
            type=str(raw.get("type", "controlnet")), base_kinds=tuple(str(k) for k in raw["base_kinds"]),
            preprocessor=str(raw.get("preprocessor", "none")), default_scale=float(raw.get("default_scale", 1.0)),
            description=str(raw.get("description", "")).strip(),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"catalog control {name!r} is malformed: {exc!r}") from exc
    if control.type not in CONTROL_TYPES:
        raise ModelError(f"catalog control {name!r}: type {control.type!r} is not one of {', '.join(CONTROL_TYPES)}")
    if unknown := set(control.base_kinds) - set(PIPELINE_CLASSES):
        raise ModelError(f"catalog control {name!r}: base_kinds {sorted(unknown)} are not sd, sdxl or sd3")
    if control.preprocessor not in KNOWN_PREPROCESSORS:
        raise ModelError(f"catalog control {name!r}: preprocessor {control.preprocessor!r} is not one of "
                         f"{', '.join(KNOWN_PREPROCESSORS)}")
    if not 0 <= control.default_scale <= MAX_SCALE:
        raise ModelError(f"catalog control {name!r}: default_scale outside 0..{MAX_SCALE:g}")
    return control


def load_controls(path: Path | str | None = None) -> dict[str, ControlEntry]:
    """Read the catalog's [controls.<name>] tables (path, default models/catalog.toml), in file order."""
    path, data = read_catalog_file(path)
    return {name: _control(name, raw, path.parent) for name, raw in data.get("controls", {}).items()}


EXAMPLES = {"depth": "a depth-estimation model such as DPT or Depth Anything",
            "pose": "a ViTPose pose-estimation model such as usyd-community/vitpose-base-simple"}


def install_hint(name: str) -> str:
    """How an operator installs an estimator preprocessor (never downloaded by Easel)."""
    return (f"The {name} preprocessor needs estimator weights that this site has not installed. An operator saves "
            f"{EXAMPLES.get(name, 'its transformers model')} with safetensors into a "
            f"folder on a machine with network (model.save_pretrained(folder, safe_serialization=True) and its image "
            f"processor's save_pretrained(folder)), copies it here and names it in the catalog: "
            f"[preprocessors.{name}] path = \"<folder>\" (docs/controls.md). Or send a ready-made {name} map with "
            f"the preprocessor none.")


@dataclass(frozen=True)
class EstimatorEntry:
    """An installed estimator preprocessor: ``[preprocessors.<name>]`` with the folder of its weights."""

    name: str
    path: Path

    def unavailable_reason(self) -> str | None:
        """None when the folder holds a config, an image processor config and safetensors weights."""
        what = f"preprocessor {self.name!r}"
        for needed in ("config.json", "preprocessor_config.json"):
            if not (self.path / needed).is_file():
                return f"{what}: no transformers folder at {self.path} ({needed} missing)"
        suffixes = {child.suffix.lower() for child in self.path.iterdir()}
        if ".safetensors" not in suffixes:
            if pickled := suffixes & set(PICKLED_SUFFIXES):
                return (f"{what}: {self.path} holds only pickled weights ({', '.join(sorted(pickled))}), which can "
                        f"run code when loaded; convert them to safetensors on a trusted machine")
            return f"{what}: no .safetensors weights in {self.path}"
        return None


def load_estimators(path: Path | str | None = None) -> dict[str, EstimatorEntry]:
    """Read the catalog's [preprocessors.<name>] tables (estimator weights an operator installed)."""
    path, data = read_catalog_file(path)
    found = {}
    for name, raw in data.get("preprocessors", {}).items():
        if name not in ESTIMATORS:
            raise ModelError(f"catalog preprocessor {name!r}: only {' and '.join(ESTIMATORS)} take estimator weights "
                             f"(the others are built in)")
        try:
            found[name] = EstimatorEntry(name=name, path=(path.parent / raw["path"]).resolve())
        except (KeyError, TypeError) as exc:
            raise ModelError(f"catalog preprocessor {name!r} is malformed: {exc!r}") from exc
    return found
