"""The model catalog: which models the site offers, their defaults and limits (stdlib only, no torch).

The web process reads this to build its forms, so it must stay cheap to import: it never touches
torch, diffusers or the network. Whether a model is usable is decided from local files alone.
"""

from __future__ import annotations

import json
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

from models.precision import PrecisionError
from models.precision import check as check_precision

CATALOG_PATH = Path(__file__).with_name("catalog.toml")
DEFAULT_MODEL = "easel-tiny"
KINDS = ("auto", "sd", "sdxl", "sd3", "sd-single-file", "sdxl-single-file")
SINGLE_FILE_KINDS = ("sd-single-file", "sdxl-single-file")
PIPELINE_CLASSES = {"sd": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline",
                    "sd3": "StableDiffusion3Pipeline"}  # the architectures Easel names, by diffusers class
# Pickled weights run code when loaded (InvokeAI's CVE-2024-12029), so only safetensors are read.
PICKLED_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth", ".pkl")
PICKLED_REASON = ("{name}: {path} holds pickled weights ({suffix}), which can run code when loaded; "
                  "only .safetensors files are used. Convert it to safetensors on a trusted machine first")


class ModelError(Exception):
    """A model cannot be used; the message says why in words a person can act on."""


class ModelNotFound(ModelError):
    """No model of that name is in the catalog."""


class ModelUnavailable(ModelError):
    """The model is listed but its files are not on this machine."""


def hf_cache_dir(cache_dir: Path | str | None = None) -> Path:
    """The local Hugging Face hub cache: cache_dir, else where huggingface_hub resolves it (HF_HUB_CACHE, HF_HOME)."""
    if cache_dir:
        return Path(cache_dir)
    from huggingface_hub import constants  # small module, no torch; it resolves the variables itself

    return Path(constants.HF_HUB_CACHE)


def hf_snapshot(hf_id: str, cache_dir: Path | str | None = None) -> Path | None:
    """The cached snapshot of a hub repo that ``refs/main`` points at (huggingface_hub's own lookup), or None."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(hf_id, "model_index.json", cache_dir=hf_cache_dir(cache_dir))
    return Path(found).parent if isinstance(found, str) else None


def pickled_reason(name: str, path: Path) -> str | None:
    """Why a weights file is refused (pickled format), or None for anything else."""
    suffix = path.suffix.lower()
    if suffix in PICKLED_SUFFIXES:
        return PICKLED_REASON.format(name=name, path=path, suffix=suffix)
    return None


def pickled_only_reason(name: str, folder: Path) -> str | None:
    """Why a diffusers folder is refused: a component it loads holds only pickled weights; None otherwise.

    Cheap enough for page loads: model_index.json is read, then only the subfolders it names are listed.
    """
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # an unreadable index is the loader's to report
    if not isinstance(index, dict):
        return None
    refused: dict[str, set[str]] = {}
    for component, spec in index.items():
        # Left-out components ([null, null]) and the safety checker, which the loader never reads.
        if component.startswith("_") or component == "safety_checker" or not isinstance(spec, list) or None in spec:
            continue
        try:
            suffixes = {child.suffix.lower() for child in (folder / component).iterdir()}
        except OSError:
            continue
        if ".safetensors" not in suffixes and (pickled := suffixes & set(PICKLED_SUFFIXES)):
            refused[component] = pickled
    if not refused:
        return None
    found = ", ".join(sorted(set().union(*refused.values())))
    has = "has" if len(refused) == 1 else "have"
    return (f"{name}: {', '.join(refused)} {has} only pickled weights ({found}) in {folder}; convert them to "
            f"safetensors on a trusted machine — pickles run code when loaded")


def architecture_of(class_name: str | None) -> str | None:
    """sd, sdxl or sd3 for a diffusers pipeline class name, else None."""
    return next((arch for arch, cls in PIPELINE_CLASSES.items() if cls == class_name), None)


def folder_class_name(folder: Path) -> str | None:
    """The pipeline class a diffusers folder declares (model_index.json `_class_name`), or None."""
    try:
        return json.loads((folder / "model_index.json").read_text(encoding="utf-8")).get("_class_name")
    except (OSError, ValueError, AttributeError):
        return None


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
    config: Path | None = None  # single files: the local diffusers folder whose configs describe them
    hf_cache: Path | None = None  # where cached hub snapshots are looked for (None: huggingface_hub's default)
    batch_max: int | None = None  # images one pipeline call may make across people (None: EASEL_BATCH_MAX)
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (models/precision.py); EASEL_PRECISION overrides it

    @property
    def architecture(self) -> str | None:
        """sd, sdxl or sd3 from the kind, or for kind auto from the folder's pipeline class; None if other."""
        if self.kind == "auto":
            return architecture_of(folder_class_name(self.path)) if self.path is not None else None
        return self.kind.removesuffix("-single-file")

    @property
    def single_file(self) -> bool:
        """Whether the weights are one original-format checkpoint file rather than a diffusers folder."""
        return self.kind in SINGLE_FILE_KINDS

    def config_source(self) -> str | None:
        """The local folder (or cached hub snapshot) holding a single file's component configs."""
        if self.config is not None:
            return str(self.config) if (self.config / "model_index.json").is_file() else None
        if self.hf_id:
            snapshot = hf_snapshot(self.hf_id, self.hf_cache)
            return str(snapshot) if snapshot is not None else None
        return None

    def unavailable_reason(self) -> str | None:
        """None when the model's files are on this machine, else what is missing and how to add it."""
        if self.path is not None and (refused := pickled_reason(f"model {self.name!r}", self.path)):
            return refused
        if self.single_file:
            return self._single_file_reason()
        if self.path is not None:
            if (self.path / "model_index.json").is_file():
                return pickled_only_reason(f"model {self.name!r}", self.path)
            if self.hf_id is None:
                return (f"model {self.name!r}: no diffusers folder at {self.path} (model_index.json missing); "
                        f"place the pipeline folder there")
        if self.hf_id is not None:
            if (snapshot := hf_snapshot(self.hf_id, self.hf_cache)) is not None:
                return pickled_only_reason(f"model {self.name!r}", snapshot)
            return (f"model {self.name!r}: {self.hf_id} is not in the local Hugging Face cache "
                    f"({hf_cache_dir(self.hf_cache)}); download it once with `huggingface-cli download {self.hf_id}` "
                    f"on a machine with access, or save the folder to {self.path or 'models/<name>'}")
        return f"model {self.name!r}: the catalog gives neither a path nor an hf_id"

    def _single_file_reason(self) -> str | None:
        """Why a single-file entry cannot load: a missing file, a non-safetensors file or no local config."""
        if self.path is None or not self.path.is_file():
            return (f"model {self.name!r}: checkpoint file {self.path} is missing; copy the .safetensors "
                    f"file there")
        if self.path.suffix.lower() != ".safetensors":
            return f"model {self.name!r}: {self.path.name} is not a .safetensors file; only safetensors are loaded"
        if self.config_source() is None:
            where = self.config or (f"{self.hf_id} in the local Hugging Face cache" if self.hf_id else None)
            where = where or 'name one with config = "<folder>" in the catalog'
            return (f"model {self.name!r}: a single file needs its base model's configs from a local diffusers "
                    f"folder ({where}); nothing is fetched from the Hub")
        return None


@dataclass(frozen=True)
class LoraEntry:
    """A LoRA adapter the site offers on top of base models of some kinds."""

    name: str
    label: str
    path: Path
    base_kinds: tuple[str, ...]
    default_scale: float
    trigger_words: tuple[str, ...]
    scheduler: str | None
    min_steps: int | None
    max_steps: int | None
    default_steps: int | None
    default_guidance: float | None
    description: str

    def unavailable_reason(self) -> str | None:
        """None when the adapter file is here and safe to read, else why not."""
        if refused := pickled_reason(f"LoRA {self.name!r}", self.path):
            return refused
        if not self.path.is_file():
            return f"LoRA {self.name!r}: file {self.path} is missing; copy the .safetensors file there"
        if self.path.suffix.lower() != ".safetensors":
            return f"LoRA {self.name!r}: {self.path.name} is not a .safetensors file; only safetensors are loaded"
        return None

    def fits(self, entry: ModelEntry) -> bool:
        """Whether the adapter was made for this model's architecture."""
        return entry.architecture in self.base_kinds


def _entry(name: str, raw: dict, base: Path, hf_cache: Path | None) -> ModelEntry:
    """Build and check one entry from its TOML table."""
    try:
        path, config = raw.get("path"), raw.get("config")
        width, height = int(raw["default_width"]), int(raw["default_height"])
        sizes = tuple((int(w), int(h)) for w, h in raw.get("sizes", [[width, height]]))
        entry = ModelEntry(
            name=name, label=str(raw.get("label", name)), kind=str(raw.get("kind", "sd")),
            path=(base / path).resolve() if path else None,
            hf_id=raw.get("hf_id"), default_width=width, default_height=height,
            default_steps=int(raw["default_steps"]), default_guidance=float(raw["default_guidance"]),
            scheduler=raw.get("scheduler"), sizes=sizes, min_steps=int(raw.get("min_steps", 1)),
            max_steps=int(raw.get("max_steps", 50)), max_guidance=float(raw.get("max_guidance", 20.0)),
            max_images=int(raw.get("max_images", 4)), job_timeout=int(raw.get("job_timeout", 600)),
            description=str(raw.get("description", "")).strip(),
            config=(base / config).resolve() if config else None, hf_cache=hf_cache,
            batch_max=int(raw["batch_max"]) if "batch_max" in raw else None,
            precision=check_precision(raw.get("precision", "auto"), f"catalog entry {name!r}"),
        )
    except PrecisionError as exc:
        raise ModelError(str(exc)) from exc
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


def _lora(name: str, raw: dict, base: Path) -> LoraEntry:
    """Build and check one [loras.<name>] table."""
    def optional(key: str, cast: type) -> object:
        return cast(raw[key]) if key in raw else None

    try:
        lora = LoraEntry(
            name=name, label=str(raw.get("label", name)), path=(base / raw["path"]).resolve(),
            base_kinds=tuple(str(k) for k in raw["base_kinds"]), default_scale=float(raw.get("default_scale", 1.0)),
            trigger_words=tuple(str(w) for w in raw.get("trigger_words", [])), scheduler=raw.get("scheduler"),
            min_steps=optional("min_steps", int), max_steps=optional("max_steps", int),
            default_steps=optional("default_steps", int), default_guidance=optional("default_guidance", float),
            description=str(raw.get("description", "")).strip(),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"catalog LoRA {name!r} is malformed: {exc!r}") from exc
    if unknown := set(lora.base_kinds) - set(PIPELINE_CLASSES):
        raise ModelError(f"catalog LoRA {name!r}: base_kinds {sorted(unknown)} are not sd, sdxl or sd3")
    return lora


def read_catalog_file(path: Path | str | None = None) -> tuple[Path, dict]:
    """The catalog's path (the caller's, e.g. the app's ``EASEL_CATALOG``, else models/catalog.toml) and its TOML."""
    path = Path(path or CATALOG_PATH)
    try:
        with open(path, "rb") as fh:
            return path, tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ModelError(f"model catalog not found at {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"model catalog {path} is not valid TOML: {exc}") from exc


def load_catalog(path: Path | str | None = None, hf_cache: Path | str | None = None) -> dict[str, ModelEntry]:
    """Read the catalog's models (path, default models/catalog.toml), in file order."""
    path, data = read_catalog_file(path)
    cache = Path(hf_cache) if hf_cache else None
    return {name: _entry(name, raw, path.parent, cache) for name, raw in data.get("models", {}).items()}


def load_loras(path: Path | str | None = None) -> dict[str, LoraEntry]:
    """Read the catalog's [loras.<name>] tables (path, default models/catalog.toml), in file order."""
    path, data = read_catalog_file(path)
    return {name: _lora(name, raw, path.parent) for name, raw in data.get("loras", {}).items()}


class CatalogFile:
    """One catalog file's models and LoRAs, read again only when the file changes (its time or size).

    The worker's warm state and the web's services each keep one, so an edited catalog reaches both without
    a restart, and an unchanged one is not parsed on every use.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path or CATALOG_PATH)
        self.reads = 0  # times the file was parsed
        self._read: tuple[tuple, dict[str, ModelEntry], dict[str, LoraEntry]] | None = None
        self._lock = threading.Lock()  # web threads may ask at the same moment

    def _stamp(self) -> tuple:
        try:
            stat = self.path.stat()
        except OSError:
            return (None, None)
        return (stat.st_mtime_ns, stat.st_size)

    def read(self) -> tuple[dict[str, ModelEntry], dict[str, LoraEntry]]:
        """The models and LoRAs as the file says now."""
        stamp = self._stamp()
        with self._lock:
            if self._read is None or self._read[0] != stamp:
                self._read = (stamp, load_catalog(self.path), load_loras(self.path))
                self.reads += 1
            return self._read[1], self._read[2]


def get_entry(name: str | None = None, catalog: dict[str, ModelEntry] | None = None,
              catalog_path: Path | str | None = None) -> ModelEntry:
    """The usable catalog entry for a name (default model when None); raises ModelNotFound/ModelUnavailable."""
    name = name or DEFAULT_MODEL
    catalog = catalog if catalog is not None else load_catalog(catalog_path)
    if name not in catalog:
        known = ", ".join(catalog) or "none"
        raise ModelNotFound(f"unknown model {name!r}; the catalog lists: {known}")
    entry = catalog[name]
    reason = entry.unavailable_reason()
    if reason:
        raise ModelUnavailable(reason)
    return entry

