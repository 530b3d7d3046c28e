"""Estimator preprocessors on the worker: a depth map from a local transformers depth-estimation model.

An operator installs the weights (``[preprocessors.depth]`` in the catalog, ``models/controls.py``); nothing is
downloaded. Each model is read once per process and kept. The web side never runs this (no torch there): it
stores the control picture cropped to the generation's size, and the worker makes the map before the call.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

LOADED: dict[Path, tuple[Any, Any]] = {}  # folder -> (image processor, model)


def _load(folder: Path) -> tuple[Any, Any]:
    if folder not in LOADED:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        processor = AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)
        model = AutoModelForDepthEstimation.from_pretrained(str(folder), local_files_only=True,
                                                            use_safetensors=True).eval()
        LOADED[folder] = (processor, model)
        log.info("loaded the depth estimator from %s", folder)
    return LOADED[folder]


def depth_map(picture: Image.Image, folder: Path) -> Image.Image:
    """The picture's depth map as depth ControlNets take it: near = white, far = black, RGB, at its size.

    The model's relative depth (or disparity: larger is nearer for DPT and Depth Anything) is scaled to 0..255.
    """
    import torch

    processor, model = _load(folder)
    inputs = processor(images=picture.convert("RGB"), return_tensors="pt")
    with torch.no_grad():
        predicted = model(**inputs).predicted_depth
    resized = torch.nn.functional.interpolate(predicted[:, None].float(), size=(picture.height, picture.width),
                                              mode="bicubic", align_corners=False)[0, 0].numpy()
    low, high = float(resized.min()), float(resized.max())
    scaled = (resized - low) / (high - low) if high > low else np.zeros_like(resized)
    return Image.fromarray((scaled * 255).round().astype(np.uint8)).convert("RGB")
