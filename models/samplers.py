"""The samplers a generation may choose, by AUTOMATIC1111's names: the one table of them (no torch here).

Each name maps to a diffusers scheduler class and the config settings it is made with; the worker makes it
with ``from_config`` from the model's own scheduler config, so the model's training settings (betas,
``prediction_type``, ``rescale_betas_zero_snr``, ``timestep_spacing``) carry over. No name (None or "") means
the scheduler the model's catalog entry (or its LoRA) names: what every generation ran with before.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.catalog import ModelEntry

MODEL_DEFAULT = "Model default"  # how "no choice" is shown


@dataclass(frozen=True)
class Sampler:
    """One sampler: its product name, the diffusers class and the settings it is made with."""

    name: str
    scheduler: str  # a diffusers class name
    settings: dict = field(default_factory=dict)
    aliases: tuple[str, ...] = ()  # other names clients send for it (A1111's internal names)

    @property
    def karras(self) -> bool:
        """Karras's sigmas: a ramp from the schedule's largest sigma, which a zero-terminal-SNR schedule makes
        enormous (4096 on the bundled model), so few steps are left for the picture itself."""
        return bool(self.settings.get("use_karras_sigmas"))


SAMPLERS: dict[str, Sampler] = {sampler.name: sampler for sampler in (
    Sampler("Euler", "EulerDiscreteScheduler", aliases=("k_euler",)),
    Sampler("Euler a", "EulerAncestralDiscreteScheduler", aliases=("k_euler_a",)),
    Sampler("DPM++ 2M", "DPMSolverMultistepScheduler", aliases=("k_dpmpp_2m",)),
    Sampler("DPM++ 2M Karras", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    Sampler("DDIM", "DDIMScheduler", aliases=("ddim",)),
    Sampler("UniPC", "UniPCMultistepScheduler", aliases=("unipc",)),
    Sampler("LMS", "LMSDiscreteScheduler", aliases=("k_lms",)),
)}
# A1111 (1.9 and later) sends the schedule apart: ``sampler_name: "DPM++ 2M", scheduler: "Karras"``.
SCHEDULE_TYPES = {"automatic": "", "karras": " Karras"}
# flow-matching models (SD 3) run their own flow scheduler; these samplers are for the noise-prediction models
SAMPLER_ARCHITECTURES = ("sd", "sdxl")


def allowed() -> str:
    """The names, for messages."""
    return ", ".join(f"“{name}”" for name in SAMPLERS)


def find(name: str | None) -> Sampler | None:
    """The sampler of a name or alias (case and spacing as written, or lower case); None for no choice.

    Raises:
        KeyError: a name that is not one of ``SAMPLERS``.
    """
    if not name:
        return None
    if name in SAMPLERS:
        return SAMPLERS[name]
    wanted = name.strip().lower()
    for sampler in SAMPLERS.values():
        if wanted == sampler.name.lower() or wanted in sampler.aliases:
            return sampler
    raise KeyError(name)


@lru_cache(maxsize=64)
def _zero_terminal_snr(folder: Path) -> bool:
    try:
        config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and bool(config.get("rescale_betas_zero_snr"))


def ends_at_pure_noise(entry: ModelEntry) -> bool:
    """Whether the model's scheduler config rescales its betas to zero terminal SNR (the bundled model does)."""
    folder = entry.config if entry.single_file else entry.path
    return folder is not None and _zero_terminal_snr(Path(folder))


def sampler_problem(name: object, architecture: str | None = None, lora_scheduler: str | None = None,
                    pure_noise: bool = False) -> str | None:
    """Why a sampler choice cannot be made (None when it can): not a name of the table, a model it does not fit
    (a flow-matching one; Karras's sigmas on a schedule that ends at pure noise, ``pure_noise``), or a LoRA that
    brings its own scheduler (an LCM-LoRA needs LCM's)."""
    if name is None or name == "":
        return None
    if not isinstance(name, str):
        return f"The sampler is one of {allowed()}, or empty for the model's own."
    try:
        sampler = find(name)
    except KeyError:
        return f"There is no sampler “{name[:40]}”; choose one of {allowed()}, or leave it empty for the model's own."
    if architecture is not None and architecture not in SAMPLER_ARCHITECTURES:
        return f"This {architecture} model runs its own scheduler; leave the sampler empty."
    if sampler is not None and sampler.karras and pure_noise:
        return (f"{sampler.name} does not fit this model: its noise schedule ends at pure noise (zero terminal SNR), "
                f"where Karras's sigmas leave too few steps for the picture. Choose another sampler.")
    if lora_scheduler:
        return f"The chosen LoRA runs with {lora_scheduler}; leave the sampler empty."
    return None


def canonical(name: str | None) -> str | None:
    """The table's own spelling of a valid name (None for no choice)."""
    sampler = find(name)
    return sampler.name if sampler is not None else None


def from_a1111(sampler_name: object, schedule: object) -> object:
    """A1111's ``sampler_name`` and ``scheduler`` (schedule type) as one name of the table, or as given (so the
    check names it) when they make none. "Automatic" or no schedule keeps the sampler's own."""
    if not isinstance(sampler_name, str) or not sampler_name:
        return sampler_name
    suffix = SCHEDULE_TYPES.get(schedule.strip().lower(), None) if isinstance(schedule, str) and schedule else ""
    if suffix is None:
        return f"{sampler_name} with the {schedule} schedule"
    try:
        sampler = find(sampler_name)
    except KeyError:
        return sampler_name
    if suffix and sampler is not None and not sampler.name.endswith(suffix):
        return sampler.name + suffix
    return sampler.name if sampler is not None else sampler_name
