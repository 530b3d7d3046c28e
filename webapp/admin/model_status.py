"""What the admin Models page shows: models, LoRAs, upscalers and control models with availability, the workers
holding them, jobs waiting."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app
from rq import Worker

from models.capabilities import pipeline_capabilities
from models.upscalers import load_upscalers

from .. import services, worker_status
from ..controls import estimators as installed_estimators
from ..controls import listing as control_listing
from ..queues import GENERATE_QUEUE, generation_queue


@dataclass
class ModelRow:
    """One catalog model: can it run here, who serves it, what waits for it."""

    name: str
    label: str
    kind: str
    reason: str | None  # None: its files are here
    precision: str = "auto"  # the catalog's setting; what each worker runs it in is in its loaded items
    waiting: int = 0
    running: int = 0
    served_by: list[str] = field(default_factory=list)
    warm_on: list[str] = field(default_factory=list)
    no_negative_prompt: bool = False
    no_guidance: bool = False


@dataclass
class LoraRow:
    """One catalog LoRA and the models it fits."""

    name: str
    label: str
    base_kinds: tuple[str, ...]
    reason: str | None
    trigger_words: tuple[str, ...]
    scheduler: str | None
    fits: list[str]


@dataclass
class UpscalerRow:
    """One upscaler (the built-in Lanczos, or a network from the catalog)."""

    name: str
    label: str
    scale: int  # 0: any factor (Lanczos)
    reason: str | None


@dataclass
class ControlRow:
    """One catalog control model (ControlNet or T2I-Adapter) and the models it fits."""

    name: str
    label: str
    type: str
    base_kinds: list[str]
    preprocessor: str
    default_scale: float
    reason: str | None
    fits: list[str]


@dataclass
class WorkerRow:
    """One live generation worker and what it reported about its models."""

    name: str
    state: str
    serves: list[str]
    device: str | None = None
    loaded: list[dict] = field(default_factory=list)  # name, device, load_seconds, precision
    peak_rss: int | None = None
    cuda_allocated: int | None = None


@dataclass
class ModelsOverview:
    """Everything on the Models page."""

    models: list[ModelRow]
    loras: list[LoraRow]
    upscalers: list[UpscalerRow]
    workers: list[WorkerRow]
    controls: list[ControlRow] = field(default_factory=list)
    estimators: dict[str, str | None] = field(default_factory=dict)  # preprocessor -> why not usable (None: usable)


def _worker_rows() -> list[WorkerRow]:
    """The live workers listening to a generation queue, with their published reports."""
    live = [w for w in Worker.all(connection=services.redis())
            if any(q.split(":")[0] == GENERATE_QUEUE for q in w.queue_names())]
    reports = worker_status.read(services.redis(), [w.name for w in live])
    rows = []
    for worker in sorted(live, key=lambda w: w.name):
        report = reports.get(worker.name, {})
        state = worker.get_state()
        memory = report.get("memory", {})
        rows.append(WorkerRow(name=worker.name, state=getattr(state, "value", state),
                              serves=report.get("serves", []), device=report.get("device"),
                              loaded=report.get("loaded", []), peak_rss=memory.get("peak_rss"),
                              cuda_allocated=memory.get("cuda_allocated")))
    return rows


def models_overview() -> ModelsOverview:
    """Read the catalog (availability from local files) and Redis (workers, queues).

    Raises:
        redis.exceptions.RedisError: Redis is unreachable.
    """
    catalog, loras = services.catalog(), services.loras()
    workers = _worker_rows()
    models = []
    for name, entry in catalog.items():
        queue = generation_queue(name)
        caps = pipeline_capabilities(entry)
        models.append(ModelRow(
            name=name, label=entry.label, kind=entry.kind, reason=entry.unavailable_reason(),
            precision=entry.precision, waiting=queue.count, running=queue.started_job_registry.count,
            served_by=[w.name for w in Worker.all(queue=queue)],
            warm_on=[f"{w.name} ({item['precision']})" if item.get("precision") else w.name
                     for w in workers for item in w.loaded if item["name"] == name],
            no_negative_prompt=not caps.negative_prompt, no_guidance=not caps.guidance))
    lora_rows = [LoraRow(name=name, label=lora.label, base_kinds=lora.base_kinds, reason=lora.unavailable_reason(),
                         trigger_words=lora.trigger_words, scheduler=lora.scheduler,
                         fits=[m for m, entry in catalog.items() if lora.fits(entry)])
                 for name, lora in loras.items()]
    upscalers = [UpscalerRow(name=name, label=entry.label, scale=entry.scale, reason=entry.unavailable_reason())
                 for name, entry in load_upscalers(current_app.config["EASEL_CATALOG"]).items()]
    controls = [ControlRow(name=c["name"], label=c["label"], type=c["type"], base_kinds=c["base_kinds"],
                           preprocessor=c["preprocessor"], default_scale=c["default_scale"],
                           reason=c["unavailable_reason"], fits=c["models"]) for c in control_listing()]
    estimators = {name: entry.unavailable_reason() for name, entry in installed_estimators().items()}
    return ModelsOverview(models=models, loras=lora_rows, upscalers=upscalers, workers=workers, controls=controls,
                          estimators=estimators)
