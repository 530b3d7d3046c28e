"""The safety check on pictures: nudenet's offline nudity detector, its verdict, and holding what it flags.

The detector (an ONNX model inside the ``nudenet`` wheel, run by onnxruntime) is imported and loaded on the first
check: in a worker for the pictures it makes, in a web process on the first upload it receives (never at start).
A check never fails a generation or an upload: when the detector cannot run, the picture is held for review and
the reason says so. A picture made from a held upload is held too.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from flask import current_app
from PIL import Image as PILImage

log = logging.getLogger(__name__)

# The detector's labels that hold a picture when scored at or above SAFETY_THRESHOLD: the exposed intimate parts.
# Faces, feet, armpits, bellies, and every *_COVERED label are reported by the detector but never hold a picture.
FLAGGED_LABELS = frozenset({
    "FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "BUTTOCKS_EXPOSED", "ANUS_EXPOSED",
})
ERROR_REASON = "The safety check could not run on this picture, so it is held until someone reviews it."

_detector = None
_detector_lock = threading.Lock()


@dataclass
class Verdict:
    """What the check says of one picture: held or not, why, and the detector's [label, score] pairs.

    ``labels`` is None when the detector did not look (the check is off, or it failed), ``[]`` when it found nothing.
    """

    held: bool = False
    reason: str | None = None
    labels: list[list] | None = None

    def columns(self) -> dict:
        """The Image columns that record this verdict."""
        return {"is_held": self.held, "held_reason": self.reason, "safety_labels": self.labels}


def _nude_detector():
    """The detector, loaded once per process (about a second) on first use."""
    global _detector
    with _detector_lock:
        if _detector is None:
            from nudenet import NudeDetector  # onnxruntime and OpenCV: only in the process that checks pictures

            _detector = NudeDetector()
        return _detector


def detect(picture: PILImage.Image) -> list[dict]:
    """The detector's findings on ``picture``: ``[{"class": LABEL, "score": 0.0-1.0, "box": [...]}, ...]``."""
    import numpy as np

    rgb = np.asarray(picture.convert("RGB"))
    return _nude_detector().detect(np.ascontiguousarray(rgb[:, :, ::-1]))  # nudenet reads OpenCV's BGR order


def verdict_of(findings: list[dict], threshold: float) -> Verdict:
    """Hold the picture when an exposed label scores at or above ``threshold``; keep every finding's score."""
    labels = sorted(([str(f["class"]), round(float(f["score"]), 3)] for f in findings), key=lambda p: -p[1])
    flagged = [(label, score) for label, score in labels if label in FLAGGED_LABELS and score >= threshold]
    if not flagged:
        return Verdict(labels=labels)
    names = ", ".join(dict.fromkeys(label.lower().replace("_", " ") for label, _ in flagged))
    return Verdict(True, f"Held by the safety check: {names} (score {flagged[0][1]:.2f}).", labels)


def _look(picture: PILImage.Image) -> Verdict:
    if not current_app.config.get("SAFETY_CHECK", True):
        return Verdict()
    try:
        return verdict_of(detect(picture), current_app.config.get("SAFETY_THRESHOLD", 0.6))
    except Exception:
        log.exception("the safety check failed; holding the picture for review")
        return Verdict(True, ERROR_REASON)


def check(picture: PILImage.Image, made_from=None) -> Verdict:
    """Check one picture when SAFETY_CHECK is on; a detector error holds it (never raises).

    Args:
        picture: a picture made or uploaded.
        made_from: the ``Upload`` it was made from, if any: a held upload holds every picture made from it.
    """
    verdict = _look(picture)
    if made_from is not None and made_from.is_held and not verdict.held:
        reason = f"Made from an upload the safety check holds. {made_from.held_reason or ''}".strip()
        return Verdict(True, reason[:200], verdict.labels)
    return verdict
