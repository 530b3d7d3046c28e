"""What a model's pipeline accepts (negative prompt, guidance, progress callback), for the studio and the worker.

The web must not import torch, so the answer for a catalog entry comes from a table derived from the
pipelines' call signatures (`pipeline_capabilities.json`, written by `write_table()` and checked against
the installed diffusers by a test); the worker, which has the pipeline, reads its signature directly.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from models.catalog import PIPELINE_CLASSES, ModelEntry, folder_class_name

TABLE_PATH = Path(__file__).with_name("pipeline_capabilities.json")
# call arguments the studio may leave out, keyed by the capability that says whether they are accepted
OPTIONAL_ARGUMENTS = {"negative_prompt": "negative_prompt", "guidance_scale": "guidance",
                      "callback_on_step_end": "progress", "num_images_per_prompt": "num_images"}


@dataclass(frozen=True)
class Capabilities:
    """Which optional studio fields a pipeline honours."""

    negative_prompt: bool = True
    guidance: bool = True
    progress: bool = True  # callback_on_step_end: live steps, previews and cancel
    num_images: bool = True
    known: bool = True  # False: the class is not in the table, so every field is offered


def capabilities_of(pipeline: Any) -> Capabilities:
    """The capabilities of a pipeline class or instance, read from its __call__ signature."""
    cls = pipeline if inspect.isclass(pipeline) else type(pipeline)
    params = inspect.signature(cls.__call__).parameters
    return Capabilities(**{cap: arg in params for arg, cap in OPTIONAL_ARGUMENTS.items()})


def supported_kwargs(pipeline: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call arguments without the optional ones this pipeline does not accept (e.g. no negative prompt)."""
    params = inspect.signature(type(pipeline).__call__).parameters
    return {k: v for k, v in kwargs.items() if k not in OPTIONAL_ARGUMENTS or k in params}


def pipeline_class_name(entry: ModelEntry) -> str | None:
    """The text-to-image pipeline class an entry loads, from its kind or its folder's model_index.json."""
    if entry.kind == "auto":
        return folder_class_name(entry.path) if entry.path is not None else None
    return PIPELINE_CLASSES[entry.architecture]


@cache
def _table() -> dict[str, dict[str, bool]]:
    """The stored capabilities of every text-to-image pipeline class AutoPipeline knows."""
    return json.loads(TABLE_PATH.read_text(encoding="utf-8"))


def pipeline_capabilities(entry: ModelEntry) -> Capabilities:
    """What the entry's pipeline accepts, without importing torch; unknown classes get every field."""
    found = _table().get(pipeline_class_name(entry) or "")
    return Capabilities(**found) if found is not None else Capabilities(known=False)


def build_table() -> dict[str, dict[str, bool]]:
    """Capabilities of every AutoPipelineForText2Image class in the installed diffusers (imports it)."""
    from diffusers.pipelines.auto_pipeline import AUTO_TEXT2IMAGE_PIPELINES_MAPPING

    table = {}
    for cls in AUTO_TEXT2IMAGE_PIPELINES_MAPPING.values():
        caps = asdict(capabilities_of(cls))
        caps.pop("known")
        table[cls.__name__] = caps
    return dict(sorted(table.items()))


def write_table(path: Path = TABLE_PATH) -> None:
    """Refresh the stored table after upgrading diffusers: python -c 'import models.capabilities as c; c.write_table()'."""
    path.write_text(json.dumps(build_table(), indent=1) + "\n", encoding="utf-8")
