"""Catalog files for web tests: models whose pipelines lack fields, and LoRAs (the web reads only their files' presence)."""
from __future__ import annotations

import json
from pathlib import Path

from . import ROOT

MODELS = """
[models.tiny]
label = "Tiny"
kind = "sd"
path = "{root}/models/easel-tiny"
default_width = 64
default_height = 64
default_steps = 20
default_guidance = 3.0
sizes = [[64, 64]]

[models.lcm-model]
label = "LCM model"
kind = "auto"
path = "lcm-folder"
default_width = 64
default_height = 64
default_steps = 4
default_guidance = 1.0
sizes = [[64, 64]]

[models.cascade]
label = "Cascade"
kind = "auto"
path = "cascade-folder"
default_width = 64
default_height = 64
default_steps = 4
default_guidance = 0.0
sizes = [[64, 64]]

[models.xl]
label = "XL"
kind = "sdxl"
path = "xl-folder"
default_width = 64
default_height = 64
default_steps = 20
default_guidance = 5.0
sizes = [[64, 64]]

[loras.ink]
label = "Ink"
path = "ink.safetensors"
base_kinds = ["sd"]
default_scale = 0.8
trigger_words = ["ink drawing"]

[loras.lcm]
label = "LCM-LoRA"
path = "lcm.safetensors"
base_kinds = ["sd"]
scheduler = "LCMScheduler"
default_steps = 4
min_steps = 2
max_steps = 8
default_guidance = 1.5

[loras.xl-style]
label = "XL style"
path = "xl.safetensors"
base_kinds = ["sdxl"]
"""


def write_models_catalog(folder: Path) -> Path:
    """Write MODELS with the folders and LoRA files it names under folder; returns the catalog's path."""
    for name, cls in (("lcm-folder", "LatentConsistencyModelPipeline"), ("cascade-folder", "StableCascadeCombinedPipeline"),
                      ("xl-folder", "StableDiffusionXLPipeline")):
        (folder / name).mkdir()
        (folder / name / "model_index.json").write_text(json.dumps({"_class_name": cls}))
    for name in ("ink", "lcm", "xl"):
        (folder / f"{name}.safetensors").write_bytes(b"not read by the web")
    catalog = folder / "catalog.toml"
    catalog.write_text(MODELS.format(root=ROOT), encoding="utf-8")
    return catalog
