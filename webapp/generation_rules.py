"""The rules a generation request must meet: one source for the studio form and every API.

Each check returns the message a person reads, or None; ``problems`` runs them all over a request.
Limits come from the chosen model's catalog entry.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models.catalog import ModelEntry

from .generations import DEFAULT_STRENGTH as DEFAULT_STRENGTH  # re-exported: the forms and APIs use it
from .generations import MAX_SEED
from .styles import STYLES
from .tables import denoising_steps

PROMPT_MAX = 1000
IMAGES_MAX = 4  # per request, whatever the model allows
# Messages of the model-independent rules, also given to the API schemas' validators (same words everywhere).
MIN_STRENGTH, MAX_STRENGTH = 0.05, 1.0
PROMPT_MISSING = "Describe the picture you want."
PROMPT_TOO_LONG = f"Keep the prompt under {PROMPT_MAX} characters."
NEGATIVE_TOO_LONG = f"Keep it under {PROMPT_MAX} characters."
IMAGES_OUT_OF_RANGE = f"Choose 1 to {IMAGES_MAX} images."
SEED_OUT_OF_RANGE = f"The seed is a whole number from 0 to {MAX_SEED}, or blank for a random one."
STYLE_UNKNOWN = f"Choose one of the styles: {', '.join(STYLES)}."
STRENGTH_OUT_OF_RANGE = f"Use a strength from {MIN_STRENGTH} to {MAX_STRENGTH:g}."


def prompt_problem(prompt: str | None) -> str | None:
    """The prompt is required and bounded."""
    if not (prompt or "").strip():
        return PROMPT_MISSING
    if len(prompt) > PROMPT_MAX:
        return PROMPT_TOO_LONG
    return None


def negative_prompt_problem(negative_prompt: str | None) -> str | None:
    """The negative prompt is optional and bounded."""
    if negative_prompt and len(negative_prompt) > PROMPT_MAX:
        return NEGATIVE_TOO_LONG
    return None


NOT_INSTALLED = "not installed on this server"


def shown_reason(entry: ModelEntry) -> str | None:
    """Why a model cannot be used, as the signed-in person may see it: admins get the server's paths, others not."""
    from flask_login import current_user

    reason = entry.unavailable_reason()
    if reason is None or (current_user.is_authenticated and current_user.is_admin):
        return reason
    return NOT_INSTALLED


def model_problem(catalog: Mapping[str, ModelEntry], name: str | None) -> str | None:
    """The model is listed and its files are here."""
    entry = catalog.get(name or "")
    if entry is None:
        return "Choose one of the listed models."
    reason = shown_reason(entry)
    if reason:
        return f"{entry.label} is not available on this site: {reason}"
    return None


def size_problem(entry: ModelEntry, width: int, height: int) -> str | None:
    """The size is one the model offers."""
    if (width, height) not in {tuple(s) for s in entry.sizes}:
        return f"{entry.label} makes these sizes only: {offered_sizes(entry)}."
    return None


def offered_sizes(entry: ModelEntry, separator: str = "×") -> str:
    """The model's sizes as ``64×64, 128×128``."""
    return ", ".join(f"{w}{separator}{h}" for w, h in entry.sizes)


def steps_problem(entry: ModelEntry, steps: int) -> str | None:
    """Steps within the model's range."""
    if not entry.min_steps <= steps <= entry.max_steps:
        return f"Use {entry.min_steps} to {entry.max_steps} steps with {entry.label}."
    return None


def guidance_problem(entry: ModelEntry, guidance: float) -> str | None:
    """Guidance from 0 to the model's maximum."""
    if not 0 <= guidance <= entry.max_guidance:
        return f"Use a guidance from 0 to {entry.max_guidance:g} with {entry.label}."
    return None


def num_images_problem(entry: ModelEntry | None, num_images: int) -> str | None:
    """1 to 4 images, and no more than the model makes at a time."""
    if not 1 <= num_images <= IMAGES_MAX:
        return IMAGES_OUT_OF_RANGE
    if entry is not None and num_images > entry.max_images:
        return f"{entry.label} makes at most {entry.max_images} images at a time."
    return None


def seed_problem(seed: int | None) -> str | None:
    """A seed is a whole number in range, or None for a random one."""
    if seed is not None and not 0 <= seed <= MAX_SEED:
        return SEED_OUT_OF_RANGE
    return None


def style_problem(style: str | None) -> str | None:
    """One of the style presets."""
    if (style or "none") not in STYLES:
        return STYLE_UNKNOWN
    return None


def strength_problem(strength: float, steps: int) -> str | None:
    """With a starting image: a strength in range that changes the picture in at least one step."""
    if not MIN_STRENGTH <= strength <= MAX_STRENGTH:
        return STRENGTH_OUT_OF_RANGE
    if denoising_steps(steps, strength) < 1:
        return (f"At strength {strength:g} the picture changes in no step at all; "
                f"use at least {int(1 / strength) + 1} steps or a higher strength.")
    return None


def problems(catalog: Mapping[str, ModelEntry], params: Mapping[str, Any]) -> dict[str, str]:
    """Every broken rule of a request, by field name (empty when it may be made).

    Args:
        catalog: the site's models.
        params: ``prompt``, ``negative_prompt``, ``model``, ``width``, ``height``, ``steps``, ``guidance``,
            ``seed``, ``num_images``, ``style``; numbers already parsed.
    """
    found = {
        "prompt": prompt_problem(params.get("prompt")),
        "negative_prompt": negative_prompt_problem(params.get("negative_prompt")),
        "model": model_problem(catalog, params.get("model")),
        "seed": seed_problem(params.get("seed")),
        "style": style_problem(params.get("style")),
    }
    entry = catalog.get(params.get("model") or "")
    found["num_images"] = num_images_problem(entry, params["num_images"])
    if entry is not None:
        found["width"] = size_problem(entry, params["width"], params["height"])
        found["steps"] = steps_problem(entry, params["steps"])
        found["guidance"] = guidance_problem(entry, params["guidance"])
        if params.get("strength") is not None:
            found["strength"] = strength_problem(params["strength"], params["steps"])
    return {field: message for field, message in found.items() if message}
