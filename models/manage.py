"""Add a model to the catalog: check its files, detect its architecture, optionally convert it, append the entry.

Used by `flask models add`; torch and diffusers are imported only when a single file is converted.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from models.catalog import (
    CATALOG_PATH,
    PIPELINE_CLASSES,
    ModelError,
    architecture_of,
    folder_class_name,
    load_catalog,
    pickled_only_reason,
    pickled_reason,
)

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# what a person gets before tuning the entry: the architecture's native size, usual steps and guidance
DEFAULTS = {
    "sd": {"size": 512, "default_steps": 25, "default_guidance": 7.5, "job_timeout": 900, "max_images": 4},
    "sdxl": {"size": 1024, "default_steps": 30, "default_guidance": 6.0, "job_timeout": 1800, "max_images": 2},
    "sd3": {"size": 1024, "default_steps": 28, "default_guidance": 7.0, "job_timeout": 1800, "max_images": 2},
    "auto": {"size": 1024, "default_steps": 30, "default_guidance": 5.0, "job_timeout": 1800, "max_images": 2},
}


@dataclass(frozen=True)
class AddedModel:
    """What `add_model` wrote: the catalog name, kind, weights path and the TOML table appended."""

    name: str
    kind: str
    path: Path
    table: str


def single_file_kind(path: Path) -> str:
    """sd-single-file or sdxl-single-file, from the checkpoint's key names (read without loading tensors)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as fh:
            keys = list(fh.keys())
    except Exception as exc:  # safetensors raises its own error types for a damaged header
        raise ModelError(f"{path} is not a readable .safetensors file: {exc}") from exc
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return "sdxl-single-file"
    if any(k.startswith("model.diffusion_model.joint_blocks.") for k in keys):
        raise ModelError(f"{path} looks like an SD3 single file; save it as a diffusers folder and add that")
    if any(k.startswith("cond_stage_model.") for k in keys) and any(k.startswith("model.diffusion_model.") for k in keys):
        return "sd-single-file"
    raise ModelError(f"{path}: not an SD 1.x/2.x or SDXL checkpoint (no UNet and text-encoder keys found)")


def detect_kind(path: Path) -> str:
    """The catalog kind of a diffusers folder or a single checkpoint file; refuses pickled weights."""
    if refused := pickled_reason("this model", path):
        raise ModelError(refused)
    if path.is_dir():
        class_name = folder_class_name(path)
        if class_name is None:
            raise ModelError(f"{path} is not a diffusers folder (model_index.json missing or unreadable)")
        if not any(path.glob("*/*.safetensors")):
            raise ModelError(f"{path} has no .safetensors weights; pickled .bin weights can run code and are refused")
        if refused := pickled_only_reason("this model", path):  # one component's weights may still be pickles
            raise ModelError(refused)
        return architecture_of(class_name) or "auto"
    if not path.is_file():
        raise ModelError(f"{path} does not exist")
    if path.suffix.lower() != ".safetensors":
        raise ModelError(f"{path.name}: only .safetensors files or diffusers folders can be added")
    return single_file_kind(path)


def convert_single_file(path: Path, kind: str, config: Path, out: Path) -> Path:
    """Load a single file with a local folder's configs and save it as a diffusers folder of safetensors."""
    import diffusers

    cls = getattr(diffusers, PIPELINE_CLASSES[kind.removesuffix("-single-file")])
    extra = {"safety_checker": None, "requires_safety_checker": False} if kind == "sd-single-file" else {}
    pipe = cls.from_single_file(str(path), config=str(config), local_files_only=True, **extra)
    pipe.save_pretrained(str(out), safe_serialization=True)
    return out


def _relative(path: Path, base: Path) -> str:
    """path relative to the catalog's folder where it lies beneath it, else absolute."""
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path.resolve())


def catalog_table(name: str, kind: str, path: str, config: str | None = None, label: str | None = None) -> str:
    """A [models.<name>] table with the defaults of the kind."""
    d = DEFAULTS[kind.removesuffix("-single-file")]
    size = d["size"]
    fields = {"label": label or name, "kind": kind, "path": path, **({"config": config} if config else {}),
              "default_width": size, "default_height": size, "default_steps": d["default_steps"],
              "default_guidance": d["default_guidance"], "sizes": [[size, size]], "min_steps": 1, "max_steps": 50,
              "max_guidance": 20.0, "max_images": d["max_images"], "job_timeout": d["job_timeout"],
              "description": f"Added with `flask models add` ({kind})."}
    # JSON strings, numbers and lists are valid TOML for these simple values
    return f"\n[models.{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in fields.items())


def add_model(path: Path | str, name: str, catalog_path: Path | str | None = None, convert: bool = False,
              config: Path | str | None = None, models_dir: Path | str | None = None) -> AddedModel:
    """Check a model, optionally convert a single file to models_dir/<name>, and append its catalog entry."""
    path, catalog_path = Path(path).resolve(), Path(catalog_path or CATALOG_PATH)
    models_dir = Path(models_dir) if models_dir else CATALOG_PATH.parent
    if not NAME.match(name):
        raise ModelError(f"name {name!r}: use lower-case letters, digits, '.', '_' or '-' (at most 64)")
    if name in load_catalog(catalog_path):
        raise ModelError(f"the catalog already lists a model named {name!r}")
    kind = detect_kind(path)
    config_dir = Path(config).resolve() if config else None
    if kind.endswith("-single-file"):
        if config_dir is None:
            raise ModelError("a single file needs --config DIR: a local diffusers folder of the same architecture "
                             "(e.g. models/stable-diffusion-v1-5) whose configs describe it; the Hub is never asked")
        config_kind = architecture_of(folder_class_name(config_dir))
        if config_kind != kind.removesuffix("-single-file"):
            raise ModelError(f"--config {config_dir} is not a {kind.removesuffix('-single-file')} diffusers folder")
    elif convert or config_dir:
        raise ModelError("--convert and --config are for single files; a diffusers folder is added as it is")
    base = catalog_path.parent
    if convert:
        target = models_dir / name
        if target.exists():
            raise ModelError(f"{target} already exists; choose another name or remove it")
        path = convert_single_file(path, kind, config_dir, target)
        kind, config_dir = kind.removesuffix("-single-file"), None
    table = catalog_table(name, kind, _relative(path, base), _relative(config_dir, base) if config_dir else None)
    text = catalog_path.read_text(encoding="utf-8")
    tomllib.loads(text + table)  # refuse to write a catalog that would no longer parse
    with open(catalog_path, "a", encoding="utf-8") as fh:
        fh.write(("" if text.endswith("\n") else "\n") + table)
    return AddedModel(name=name, kind=kind, path=path, table=table)
