"""The rules a generation request must meet: one source for the studio form and every API.

Each check returns the message a person reads, or None; ``problems`` runs them all over a request.
Limits come from the chosen model's catalog entry.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from models.catalog import LoraEntry, ModelEntry
from models.lora import MAX_LORAS
from models.samplers import ends_at_pure_noise, sampler_problem

from .generations import MAX_SEED
from .prompting.weights import weights_problem
from .styles import STYLES
from .tables import MAX_IMAGES_PER_REQUEST, denoising_steps

if TYPE_CHECKING:
    from models.upscalers import UpscalerEntry

PROMPT_MAX = 1000
IMAGES_MAX = MAX_IMAGES_PER_REQUEST  # per request, whatever the model allows
# Messages of the model-independent rules, also given to the API schemas' validators (same words everywhere).
MIN_STRENGTH, MAX_STRENGTH = 0.05, 1.0
PROMPT_MISSING = "Describe the picture you want."
PROMPT_TOO_LONG = f"Keep the prompt under {PROMPT_MAX} characters."
NEGATIVE_TOO_LONG = f"Keep it under {PROMPT_MAX} characters."
IMAGES_OUT_OF_RANGE = f"Choose 1 to {IMAGES_MAX} images."
SEED_OUT_OF_RANGE = f"The seed is a whole number from 0 to {MAX_SEED}, or blank for a random one."
STYLE_UNKNOWN = f"Choose one of the styles: {', '.join(STYLES)}, or one saved on the Styles page."
STRENGTH_OUT_OF_RANGE = f"Use a strength from {MIN_STRENGTH} to {MAX_STRENGTH:g}."
MIN_LORA_SCALE, MAX_LORA_SCALE = 0.0, 2.0
LORA_SCALE_OUT_OF_RANGE = f"Use a scale from {MIN_LORA_SCALE:g} to {MAX_LORA_SCALE:g}."
TOO_MANY_LORAS = f"Choose at most {MAX_LORAS} LoRAs."
LORA_TWICE = "Choose each LoRA once."
VARIANTS_UNKNOWN = "variants is random (each image picks from its seed) or all (one image per combination)."
LORA_NAME_SHOWN = 60  # characters of an unknown LoRA's name repeated in the message


def prompt_problem(prompt: str | None) -> str | None:
    """The prompt is required and bounded."""
    if not (prompt or "").strip():
        return PROMPT_MISSING
    if len(prompt) > PROMPT_MAX:
        return PROMPT_TOO_LONG
    return weights_problem(prompt)


def negative_prompt_problem(negative_prompt: str | None) -> str | None:
    """The negative prompt is optional and bounded."""
    if negative_prompt and len(negative_prompt) > PROMPT_MAX:
        return NEGATIVE_TOO_LONG
    return weights_problem(negative_prompt)


NOT_INSTALLED = "not installed on this server"


def shown_reason(entry: ModelEntry | LoraEntry | UpscalerEntry) -> str | None:
    """Why a model, LoRA or upscaler cannot be used, as the signed-in person may see it: admins get the
    server's paths, others not."""
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


def steps_range(entry: ModelEntry, chosen: Sequence[tuple[LoraEntry, float]] = ()) -> tuple[int, int, str]:
    """The allowed steps: the model's, narrowed by a LoRA that states its own (LCM: 2 to 8), and whose."""
    low, high, label = entry.min_steps, entry.max_steps, entry.label
    for lora, _ in chosen:
        if lora.min_steps is not None or lora.max_steps is not None:
            low, high = max(low, lora.min_steps or low), min(high, lora.max_steps or high)
            label = f"{entry.label} and {lora.label}"
    return low, high, label


def steps_problem(entry: ModelEntry, steps: int, chosen: Sequence[tuple[LoraEntry, float]] = ()) -> str | None:
    """Steps within the model's range (narrowed by the chosen LoRAs')."""
    low, high, label = steps_range(entry, chosen)
    if not low <= steps <= high:
        return f"Use {low} to {high} steps with {label}."
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
    """One of the style presets or a saved style (None: the default, ``none``), or several joined by ``,`` (each
    must be one; the message names the first that is not); an empty name is not one."""
    if style is None:
        return None
    names = style.split(",") if isinstance(style, str) and "," in style else [style]
    for name in names:
        if name not in STYLES and not _saved_style(name):
            return STYLE_UNKNOWN if len(names) == 1 else f"There is no style “{str(name)[:40]}”. {STYLE_UNKNOWN}"
    return None


def _saved_style(name: str) -> bool:
    """Whether the signed-in person may apply a saved style of that name (``webapp.prompting.styles``)."""
    from flask import has_request_context
    from flask_login import current_user

    from .prompting.styles import style_exists

    if not has_request_context() or not isinstance(name, str):
        return False
    return style_exists(name, current_user.id if current_user.is_authenticated else None)


def strength_problem(strength: float, steps: int) -> str | None:
    """With a starting image: a strength in range that changes the picture in at least one step."""
    if not MIN_STRENGTH <= strength <= MAX_STRENGTH:
        return STRENGTH_OUT_OF_RANGE
    if denoising_steps(steps, strength) < 1:
        return (f"At strength {strength:g} the picture changes in no step at all; "
                f"use at least {int(1 / strength) + 1} steps or a higher strength.")
    return None


LoraPicks = Sequence[tuple[str, float | None]]  # (catalog name, scale or None for the LoRA's default)


def lora_scale_problem(scale: float | None) -> str | None:
    """A LoRA's scale is blank (its default) or within range."""
    if scale is not None and not MIN_LORA_SCALE <= scale <= MAX_LORA_SCALE:  # NaN is out of range too
        return LORA_SCALE_OUT_OF_RANGE
    return None


def chosen_loras(loras: Mapping[str, LoraEntry], picks: LoraPicks) -> list[tuple[LoraEntry, float]]:
    """The picks that name a listed LoRA, as catalog entries with their scales (the default where None)."""
    return [(loras[name], loras[name].default_scale if scale is None else float(scale))
            for name, scale in picks if name in loras]


def loras_problem(loras: Mapping[str, LoraEntry], entry: ModelEntry | None, picks: LoraPicks) -> str | None:
    """At most three listed, available LoRAs made for the model's architecture, each once, at a scale in range,
    and not asking for different schedulers."""
    if len(picks) > MAX_LORAS:
        return TOO_MANY_LORAS
    for name, scale in picks:
        lora = loras.get(name)
        if lora is None:
            shown = name if len(name) <= LORA_NAME_SHOWN else name[:LORA_NAME_SHOWN] + "…"
            return f"There is no LoRA “{shown}” on this site. Choose one of the listed LoRAs."
        if reason := shown_reason(lora):
            return f"{lora.label} is not available on this site: {reason}"
        if entry is not None and not lora.fits(entry):
            return f"{lora.label} is made for {', '.join(lora.base_kinds)} models, not {entry.label}."
        if problem := lora_scale_problem(scale):
            return problem
    names = [name for name, _ in picks]
    if len(set(names)) != len(names):
        return LORA_TWICE
    chosen = chosen_loras(loras, picks)
    if len({lora.scheduler for lora, _ in chosen if lora.scheduler}) > 1:
        return (f"{' and '.join(lora.label for lora, _ in chosen if lora.scheduler)} need different schedulers; "
                f"choose one of them.")
    return None


def scheduler_problem(entry: ModelEntry | None, name: object,
                      chosen: Sequence[tuple[LoraEntry, float]] = ()) -> str | None:
    """A sampler by one of its names (``models.samplers``), on a model it fits and without a LoRA that brings
    its own scheduler; None or "" is the model's own."""
    lora_scheduler = next((lora.scheduler for lora, _ in chosen if lora.scheduler), None)
    return sampler_problem(name, entry.architecture if entry is not None else None, lora_scheduler,
                           pure_noise=entry is not None and ends_at_pure_noise(entry))


def problems(catalog: Mapping[str, ModelEntry], params: Mapping[str, Any],
             loras: Mapping[str, LoraEntry] | None = None) -> dict[str, str]:
    """Every broken rule of a request, by field name (empty when it may be made).

    Args:
        catalog: the site's models.
        params: ``prompt``, ``negative_prompt``, ``model``, ``width``, ``height``, ``steps``, ``guidance``,
            ``seed``, ``num_images``, ``style``, optionally ``scheduler`` and ``loras`` (``(name, scale)``
            pairs); numbers parsed.
        loras: the site's LoRAs (``[loras.<name>]`` in the catalog).
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
    picks = params.get("loras") or []
    found["loras"] = loras_problem(loras or {}, entry, picks)
    if entry is not None:
        found["width"] = size_problem(entry, params["width"], params["height"])
        found["steps"] = steps_problem(entry, params["steps"], chosen_loras(loras or {}, picks))
        found["guidance"] = guidance_problem(entry, params["guidance"])
        if params.get("strength") is not None:
            found["strength"] = strength_problem(params["strength"], params["steps"])
    found["scheduler"] = scheduler_problem(entry, params.get("scheduler"), chosen_loras(loras or {}, picks))
    return {field: message for field, message in found.items() if message}
