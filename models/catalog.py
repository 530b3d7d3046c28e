"""The model catalog: which models the site offers, their defaults and limits (no torch, no network).

The web process reads this to build its forms, so it must stay cheap to import: it never touches
torch, diffusers or the network. Whether a model is usable is decided from local files alone.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

CATALOG_PATH = Path(__file__).with_name("catalog.toml")
DEFAULT_MODEL = "easel-tiny"
KINDS = ("sd", "sdxl", "sd-single-file")


class ModelError(Exception):
    """A model cannot be used; the message says why in words a person can act on."""


class ModelNotFound(ModelError):
    """No model of that name is in the catalog."""


class ModelUnavailable(ModelError):
    """The model is listed but its files are not on this machine."""


def hf_cache_dir() -> Path:
    """The local Hugging Face hub cache, as huggingface_hub resolves it (``HF_HOME``, ``HF_HUB_CACHE``)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hf_snapshot(hf_id: str) -> Path | None:
    """The cached snapshot of a hub repo that ``refs/main`` points at (huggingface_hub's own lookup), or None."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(hf_id, "model_index.json", cache_dir=hf_cache_dir())
    return Path(found).parent if isinstance(found, str) else None


@dataclass(frozen=True)
class ModelEntry:
    """One model the site can offer, with its defaults and limits."""

    name: str
    label: str
    kind: str
    path: Path | None
    hf_id: str | None
    default_width: int
    default_height: int
    default_steps: int
    default_guidance: float
    scheduler: str | None
    sizes: tuple[tuple[int, int], ...]
    min_steps: int
    max_steps: int
    max_guidance: float
    max_images: int
    job_timeout: int
    description: str

    def unavailable_reason(self) -> str | None:
        """None when the model's files are on this machine, else what is missing and how to add it."""
        if self.kind == "sd-single-file":
            if self.path is None or not self.path.is_file():
                return (f"model {self.name!r}: checkpoint file {self.path} is missing; copy the .safetensors "
                        f"file there (and have the base config {self.hf_id or 'repo'} in the Hugging Face cache)")
            return None
        if self.path is not None:
            if (self.path / "model_index.json").is_file():
                return None
            if self.hf_id is None:
                return (f"model {self.name!r}: no diffusers folder at {self.path} (model_index.json missing); "
                        f"place the pipeline folder there")
        if self.hf_id is not None:
            if hf_snapshot(self.hf_id) is not None:
                return None
            return (f"model {self.name!r}: {self.hf_id} is not in the local Hugging Face cache "
                    f"({hf_cache_dir()}); download it once with `huggingface-cli download {self.hf_id}` "
                    f"on a machine with access, or save the folder to {self.path or 'models/<name>'}")
        return f"model {self.name!r}: the catalog gives neither a path nor an hf_id"


def _entry(name: str, raw: dict, base: Path) -> ModelEntry:
    """Build and check one entry from its TOML table."""
    try:
        path = raw.get("path")
        resolved = (base / path).resolve() if path else None
        width, height = int(raw["default_width"]), int(raw["default_height"])
        sizes = tuple((int(w), int(h)) for w, h in raw.get("sizes", [[width, height]]))
        entry = ModelEntry(
            name=name, label=str(raw.get("label", name)), kind=str(raw.get("kind", "sd")), path=resolved,
            hf_id=raw.get("hf_id"), default_width=width, default_height=height,
            default_steps=int(raw["default_steps"]), default_guidance=float(raw["default_guidance"]),
            scheduler=raw.get("scheduler"), sizes=sizes, min_steps=int(raw.get("min_steps", 1)),
            max_steps=int(raw.get("max_steps", 50)), max_guidance=float(raw.get("max_guidance", 20.0)),
            max_images=int(raw.get("max_images", 4)), job_timeout=int(raw.get("job_timeout", 600)),
            description=str(raw.get("description", "")).strip(),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"catalog entry {name!r} is malformed: {exc!r}") from exc
    if entry.kind not in KINDS:
        raise ModelError(f"catalog entry {name!r}: kind {entry.kind!r} is not one of {', '.join(KINDS)}")
    if (width, height) not in sizes:
        raise ModelError(f"catalog entry {name!r}: default size {width}x{height} is not in its sizes")
    if not entry.min_steps <= entry.default_steps <= entry.max_steps:
        raise ModelError(f"catalog entry {name!r}: default_steps outside min_steps..max_steps")
    if not 0 <= entry.default_guidance <= entry.max_guidance:
        raise ModelError(f"catalog entry {name!r}: default_guidance outside 0..max_guidance")
    return entry


def read_catalog_file(path: str | Path | None = None) -> tuple[Path, dict]:
    """The catalog's path (the caller's, e.g. the app's ``EASEL_CATALOG``, else models/catalog.toml) and its TOML."""
    path = Path(path or CATALOG_PATH)
    try:
        with open(path, "rb") as fh:
            return path, tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ModelError(f"model catalog not found at {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"model catalog {path} is not valid TOML: {exc}") from exc


def load_catalog(path: str | Path | None = None) -> dict[str, ModelEntry]:
    """Read the catalog (``EASEL_CATALOG``, default models/catalog.toml), in file order."""
    path, data = read_catalog_file(path)
    return {name: _entry(name, raw, path.parent) for name, raw in data.get("models", {}).items()}


def get_entry(name: str, catalog: dict[str, ModelEntry] | None = None) -> ModelEntry:
    """The usable catalog entry for a name; raises ModelNotFound/ModelUnavailable."""
    catalog = catalog if catalog is not None else load_catalog()
    if name not in catalog:
        known = ", ".join(catalog) or "none"
        raise ModelNotFound(f"unknown model {name!r}; the catalog lists: {known}")
    entry = catalog[name]
    reason = entry.unavailable_reason()
    if reason:
        raise ModelUnavailable(reason)
    return entry

