"""Estimator preprocessors on the worker: a depth map (a transformers depth-estimation model) or a pose skeleton (a
ViTPose model) of a control picture, from weights an operator installed.

The catalog names the folders (``[preprocessors.depth]``, ``[preprocessors.pose]``; ``models/controls.py``);
nothing is downloaded. Each model is read once per process and kept. The web side never runs this (no torch
there): it stores the control picture cropped to the generation's size, and the worker makes the map before the
call (``jobs/control.py``).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

log = logging.getLogger(__name__)

LOADED: dict[tuple[str, Path], tuple[Any, Any]] = {}  # (preprocessor, folder) -> (image processor, model)
POSE_THRESHOLD = 0.3  # keypoints scored below this are left out of the skeleton
# OpenPose's 18 keypoints (what pose ControlNets were trained on) from COCO's 17 (ViTPose's); None: the neck,
# between the shoulders
OPENPOSE_FROM_COCO = (0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
         (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))
COLOURS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
           (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
           (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))


def _load(name: str, folder: Path) -> tuple[Any, Any]:
    if (name, folder) not in LOADED:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation, VitPoseForPoseEstimation

        cls = AutoModelForDepthEstimation if name == "depth" else VitPoseForPoseEstimation
        processor = AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)
        model = cls.from_pretrained(str(folder), local_files_only=True, use_safetensors=True).eval()
        LOADED[(name, folder)] = (processor, model)
        log.info("loaded the %s estimator from %s", name, folder)
    return LOADED[(name, folder)]


def estimate(name: str, picture: Image.Image, folder: Path) -> Image.Image:
    """The control map an estimator preprocessor (``depth`` or ``pose``) makes of a picture, RGB, at its size."""
    return depth_map(picture, folder) if name == "depth" else pose_map(picture, folder)


def depth_map(picture: Image.Image, folder: Path) -> Image.Image:
    """The picture's depth map as depth ControlNets take it: near = white, far = black.

    The model's relative depth (or disparity: larger is nearer for DPT and Depth Anything) is scaled to 0..255.
    """
    import torch

    processor, model = _load("depth", folder)
    inputs = processor(images=picture.convert("RGB"), return_tensors="pt")
    with torch.no_grad():
        predicted = model(**inputs).predicted_depth
    resized = torch.nn.functional.interpolate(predicted[:, None].float(), size=(picture.height, picture.width),
                                              mode="bicubic", align_corners=False)[0, 0].numpy()
    low, high = float(resized.min()), float(resized.max())
    scaled = (resized - low) / (high - low) if high > low else np.zeros_like(resized)
    return Image.fromarray((scaled * 255).round().astype(np.uint8)).convert("RGB")


def pose_map(picture: Image.Image, folder: Path, threshold: float = POSE_THRESHOLD) -> Image.Image:
    """The skeleton of the person filling the picture, drawn as OpenPose draws it (coloured limbs and joints on
    black), as pose ControlNets take it. ViTPose is top-down: the whole picture is the person's box (no person
    detector is run, so one person is found)."""
    import torch

    processor, model = _load("pose", folder)
    boxes = [[[0.0, 0.0, float(picture.width), float(picture.height)]]]
    inputs = processor(images=picture.convert("RGB"), boxes=boxes, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    found = processor.post_process_pose_estimation(outputs, boxes=boxes)[0][0]
    points, scores = found["keypoints"].numpy(), found["scores"].numpy()
    joints: list[tuple[float, float] | None] = []
    for coco in OPENPOSE_FROM_COCO:
        if coco is None:  # the neck: both shoulders seen
            seen = scores[5] >= threshold and scores[6] >= threshold
            joints.append(tuple((points[5] + points[6]) / 2) if seen else None)
        else:
            joints.append(tuple(points[coco]) if scores[coco] >= threshold else None)
    canvas = Image.new("RGB", picture.size, (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(min(picture.size) * 0.01))
    for index, (start, end) in enumerate(LIMBS):
        if joints[start] is not None and joints[end] is not None:
            draw.line([joints[start], joints[end]], fill=tuple(int(c * 0.6) for c in COLOURS[index]), width=width)
    for index, joint in enumerate(joints):
        if joint is not None:
            x, y = joint
            draw.ellipse((x - width, y - width, x + width, y + width), fill=COLOURS[index])
    return canvas
