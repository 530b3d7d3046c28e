"""Style presets: keyword modifiers added to the prompt, as the seed articles describe.

"pixel art" also pixelates the result and reduces its palette after generation.
"""
from __future__ import annotations

from dataclasses import dataclass

from PIL import Image as PILImage


@dataclass(frozen=True)
class Style:
    """A preset: its label, the words appended to the prompt, and whether to pixelate."""

    name: str
    label: str
    modifiers: str = ""
    pixelate: bool = False


STYLES: dict[str, Style] = {s.name: s for s in [
    Style("none", "No style"),
    Style("artstation", "ArtStation", "trending on artstation, highly detailed"),
    Style("pencil", "Pencil sketch", "pencil sketch, graphite drawing"),
    Style("low-poly", "Low poly", "low poly, 3d render"),
    Style("watercolor", "Watercolor", "watercolor painting"),
    Style("unreal", "Unreal Engine", "unreal engine, hd, realistic lighting"),
    Style("pixel-art", "Pixel art", "pixel art", pixelate=True),
]}


def styled_prompt(prompt: str, style: str) -> str:
    """The prompt the model sees: the person's words, then the preset's modifiers."""
    modifiers = STYLES[style].modifiers
    return f"{prompt.strip()}, {modifiers}" if modifiers else prompt.strip()


def pixelate(image: PILImage.Image, cell: int | None = None, colors: int = 16) -> PILImage.Image:
    """Pixel-art look: average into ``cell``-pixel blocks, reduce the palette, scale back up sharply."""
    width, height = image.size
    cell = cell or max(2, min(width, height) // 32)
    small = image.convert("RGB").resize((max(1, width // cell), max(1, height // cell)), PILImage.Resampling.BOX)
    small = small.quantize(colors=colors, method=PILImage.Quantize.MEDIANCUT).convert("RGB")
    return small.resize((width, height), PILImage.Resampling.NEAREST)


def postprocess(image: PILImage.Image, style: str) -> PILImage.Image:
    """Apply the preset's after-generation step, if it has one."""
    # a saved style (webapp/prompting/styles.py) has no after-generation step; several styles are joined by ","
    presets = [STYLES.get(name) for name in (style or "").split(",")]
    return pixelate(image) if any(preset is not None and preset.pixelate for preset in presets) else image
