"""Prepare and call the pipeline for one or more generations: device settings, LoRAs, supported arguments,
tiling, out of memory.

The generation job asks ``STATE`` for a model's warm state and calls ``generate``, the one function that
prepares a pipeline and calls it; the loader (``models/loader.py``) keeps the warm pipelines, this module
decides how each is set up on its device and what a worker keeps with it.
"""
from __future__ import annotations

import gc
import logging
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from flask import current_app

from models import loader, mapped_weights, openvino_unet, samplers
from models.capabilities import supported_kwargs
from models.catalog import CATALOG_PATH, CatalogFile, LoraEntry, ModelEntry, ModelError
from models.lora import apply_loras
from webapp import services, worker_status
from webapp.prompting.picks import prompt_of
from webapp.prompting.styles import apply_style

from . import control, editing
from .preview import LatentPreviewer
from .prompting import PromptEncoder

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline
    from PIL import Image as PILImage

    from webapp.tables import Generation

log = logging.getLogger(__name__)

TILE_ABOVE_PIXELS = 1024 * 1024  # decode larger pictures tile by tile: the VAE's memory grows with the area
OUT_OF_MEMORY = "The GPU ran out of memory"


@dataclass(frozen=True)
class DevicePlan:
    """How a pipeline runs on its device; chosen by ``plan_for`` from the device and the settings alone."""

    device: str
    offload: bool = False  # enable_model_cpu_offload: components visit the GPU one at a time (small GPUs)
    compile: bool = False  # torch.compile the denoiser (the first job pays the compile; CPU: inductor, minutes)
    openvino: bool = False  # CPU: the UNet through OpenVINO where `flask models optimize` made its IR
    attention_slicing: bool = False  # MPS: less memory per attention at little cost (diffusers' Mac advice)
    cuda: bool = False


def plan_for(device: str, offload: bool = False, compile: bool = False, openvino: bool = False) -> DevicePlan:
    """The set-up for a device: CUDA may offload or compile (not both), MPS slices attention, the CPU may compile
    or run an OpenVINO UNet (docs/precision.md, *CPU variants*).

    The dtype (fp16/bf16 on CUDA, fp16 on MPS, fp32 on CPU) and PyTorch SDPA are the loader's choice.
    """
    if device.startswith("cuda"):
        # an offloaded model moves between devices on every call, which torch.compile would recompile for
        return DevicePlan(device=device, offload=offload, compile=compile and not offload, cuda=True)
    if device == "mps":
        return DevicePlan(device=device, attention_slicing=True)
    return DevicePlan(device=device, compile=compile, openvino=openvino)


def vae_modes(plan: DevicePlan, width: int, height: int, num_images: int) -> tuple[bool, bool]:
    """(tiling, slicing) of the VAE for one call: tile large pictures, slice batches, on GPUs only."""
    if not (plan.cuda or plan.device == "mps"):
        return False, False  # the CPU has the memory; tiles would only add seams and time
    return width * height > TILE_ABOVE_PIXELS, num_images > 1


def _denoiser_name(pipe: DiffusionPipeline) -> str | None:
    """The component that runs every step: the UNet, or the transformer (SD3 and later)."""
    return next((name for name in ("unet", "transformer") if getattr(pipe, name, None) is not None), None)


def prepare(pipe: DiffusionPipeline, plan: DevicePlan) -> None:
    """Apply a device plan to a freshly loaded pipeline (once: ``WorkerState`` calls it when it meets a new pipe)."""
    if plan.offload:
        pipe.enable_model_cpu_offload(device=plan.device)
    if plan.compile and (name := _denoiser_name(pipe)):
        setattr(pipe, name, torch.compile(getattr(pipe, name)))
    if plan.attention_slicing:
        pipe.enable_attention_slicing()


def device() -> str:
    """The device this worker runs its models on (``EASEL_DEVICE``, auto: CUDA, else MPS, else the CPU)."""
    return loader.pick_device(current_app.config["EASEL_DEVICE"])


def _plan() -> DevicePlan:
    config = current_app.config
    return plan_for(device(), offload=config["EASEL_OFFLOAD"], compile=config["EASEL_COMPILE"],
                    openvino=config["EASEL_OPENVINO"])


@dataclass
class Warm:
    """What a worker keeps of one loaded model between jobs: the pipeline as its device plan set it up, the
    model's own scheduler (a LoRA may swap it for a request), and, made on first use, the image-to-image twin
    that shares its weights and the live previewer fitted to its VAE."""

    name: str
    pipe: DiffusionPipeline
    plan: DevicePlan
    load_seconds: float | None
    base_scheduler: Any
    _img2img: DiffusionPipeline | None = field(default=None, repr=False)
    _inpaint: DiffusionPipeline | None = field(default=None, repr=False)
    _previewer: LatentPreviewer | None = field(default=None, repr=False)
    _prompts: PromptEncoder | None = field(default=None, repr=False)
    controls: dict = field(default_factory=dict, repr=False)  # control models and pipelines (jobs/control.py)
    openvino: Any = field(default=None, repr=False)  # the OpenVINO UNet (models/openvino_unet.py) when in use
    torch_unet: Any = field(default=None, repr=False)  # the PyTorch UNet beside it, for LoRAs and control models

    @property
    def prompts(self) -> PromptEncoder:
        """compel set up for this pipeline's text encoders (``jobs.prompting``), made on first use."""
        if self._prompts is None:
            self._prompts = PromptEncoder(self.pipe)
        return self._prompts

    @property
    def previewer(self) -> LatentPreviewer:
        if self._previewer is None:
            self._previewer = LatentPreviewer(self.pipe.vae)
            # the fit read the VAE's encoder; text-to-image reads it no more, so its mapped pages go back
            vae = self.pipe.vae
            mapped_weights.release([getattr(vae, "encoder", None), getattr(vae, "quant_conv", None)])
        return self._previewer

    def img2img(self) -> DiffusionPipeline:
        """The image-to-image twin (made once, no second load), with the scheduler the pipeline has now."""
        if self._img2img is None:
            self._img2img = loader.img2img_from(self.pipe)
        self._img2img.scheduler = self.pipe.scheduler  # a LoRA (LCM) may have swapped it since the twin was made
        return self._img2img

    def inpaint(self) -> DiffusionPipeline:
        """The inpainting twin (made once, no second load), with the scheduler the pipeline has now."""
        if self._inpaint is None:
            self._inpaint = editing.inpaint_from(self.pipe)
        self._inpaint.scheduler = self.pipe.scheduler
        return self._inpaint

    def use_unet(self, openvino: bool) -> None:
        """Run the OpenVINO UNet (when there is one) or the PyTorch one, in the pipeline and its twins."""
        if self.openvino is None:
            return
        unet = self.openvino if openvino else self.torch_unet
        for pipe in (self.pipe, self._img2img, self._inpaint):
            if pipe is not None and pipe.unet is not unet:
                pipe.unet = unet


class WorkerState:
    """Everything a generation worker keeps between jobs: its warm models by name, and the catalog it read.

    The catalog file is read once, and again only when its modification time changes; the pipelines
    themselves stay in the loader's bounded cache (``models.loader``), and a model it evicted and
    loaded again gets a fresh ``Warm``.
    """

    def __init__(self) -> None:
        self.models: dict[str, Warm] = {}
        self._catalog: CatalogFile | None = None
        self.calls = 0  # pipeline calls made
        self.generations = 0  # generations those calls were for

    def catalog(self) -> tuple[dict[str, ModelEntry], dict[str, LoraEntry]]:
        """The catalog's models and LoRAs (``EASEL_CATALOG``), read again only when the file changed."""
        path = Path(current_app.config["EASEL_CATALOG"] or CATALOG_PATH)
        if self._catalog is None or self._catalog.path != path:
            self._catalog = CatalogFile(path)
        return self._catalog.read()

    @property
    def catalog_reads(self) -> int:
        """Times the catalog file was read (the admin page, and the tests that prove it)."""
        return self._catalog.reads if self._catalog is not None else 0

    def warm(self, name: str) -> Warm:
        """The warm model, loaded within this worker's bounds on first use and prepared for its device."""
        config = current_app.config
        plan = _plan()
        models, _ = self.catalog()
        loads = loader.LOAD_COUNT
        began = time.perf_counter()
        pipe = loader.get_pipeline(name, device=plan.device, max_loaded=config["EASEL_MAX_LOADED_MODELS"],
                                   memory_headroom=config["EASEL_GPU_HEADROOM_MB"] << 20, catalog=models,
                                   configured_precision=config["EASEL_PRECISION"])
        warm = self.models.get(name)
        if warm is None or warm.pipe is not pipe:
            seconds = round(time.perf_counter() - began, 2) if loader.LOAD_COUNT != loads else None
            if seconds is not None:
                log.info("loaded %s on %s in %s in %.1f s", name, plan.device, loader.precision_of(pipe), seconds)
            prepare(pipe, plan)
            warm = Warm(name, pipe, plan, seconds, base_scheduler=pipe.scheduler)
            if plan.openvino and name in models and getattr(pipe, "unet", None) is not None:
                warm.torch_unet = pipe.unet
                warm.openvino = openvino_unet.for_entry(pipe, models[name], config["INSTANCE_DIR"])
        self.models = {held: self.models[held] for held, _ in loader.loaded_models() if held in self.models}
        self.models[name] = warm
        return warm


STATE = WorkerState()  # this process's; a worker runs one job (or one batch) at a time


def precision_of(name: str) -> str | None:
    """fp32, bf16 or fp16: what this worker's warm pipeline of a model computes in (None when not loaded)."""
    return loader.loaded_precision(name, _plan().device)


def apply_to(warm: Warm, loras: list | None) -> list[LoraEntry]:
    """Switch exactly these LoRAs on (and the scheduler they need, else the model's own); the entries used."""
    _, catalog = STATE.catalog()
    requested = [(name, scale) for name, scale in (loras or [])]
    return apply_loras(warm.pipe, requested, catalog=catalog, base_scheduler=warm.base_scheduler)


def use_sampler(warm: Warm, name: str | None) -> None:
    """Run this call with the sampler of that name (``models.samplers``): its scheduler class made from the model's
    own scheduler config (betas, prediction type, zero-SNR rescaling and spacing carry over) with the sampler's
    settings, on the warm pipeline, without reloading anything. None keeps what ``apply_to`` just set (the model's
    own scheduler, or a LoRA's), which every call sets afresh, so a sampler never outlives its call."""
    sampler = samplers.find(name)
    if sampler is None:
        return
    import diffusers

    cls = getattr(diffusers, sampler.scheduler)
    warm.pipe.scheduler = cls.from_config(warm.base_scheduler.config, **sampler.settings)


def with_trigger_words(prompt: str, loras: list[LoraEntry]) -> str:
    """The prompt followed by each LoRA trigger word it does not already contain."""
    missing = [word for lora in loras for word in lora.trigger_words if word.lower() not in prompt.lower()]
    return ", ".join([prompt, *missing]) if missing else prompt


def model_prompt(prompt: str, style: str, loras: list[LoraEntry], user_id: int | None = None) -> str:
    """The text the model sees: the person's words, the LoRAs' trigger words, then the style (a bundled preset's
    modifiers, or a saved style's template around them: ``webapp.prompting.styles``)."""
    return apply_style(with_trigger_words(prompt, loras), "", style, user_id)[0]


def model_negative(generation: Generation) -> str:
    """The negative prompt the model sees: the person's, and a saved style's after it."""
    return apply_style("", generation.negative_prompt or "", generation.style, generation.user_id)[1]


def generate(warm: Warm, generations: list[Generation], starts: dict[str, PILImage.Image],
             callback: Callable, edits: dict[str, editing.Edit] | None = None
             ) -> tuple[list[PILImage.Image], dict[str, list[str]]]:
    """Make the images of one or more compatible generations in one call of the warm pipeline.

    The one place a pipeline is prepared and called: the generations' LoRAs, their scheduler and the chosen
    sampler (compatible generations share them, ``jobs.batching.batch_key``), each image's own prompt (trigger
    words and style added), negative prompt and seeded generator, the arguments the pipeline accepts,
    VAE tiling and slicing, and out-of-memory recovery (``call``).

    Args:
        warm: the model's warm state.
        generations: in order; all share the batch key of the first.
        starts: the starting image of each image-to-image generation, by id.
        callback: the ``callback_on_step_end``.
        edits: the mask and settings of an inpainting or outpainting generation, by id (never batched).

    Returns:
        The images, in order of the generations and then of their seeds, and the text the model saw for each
        image, by generation id.
    """
    lead = generations[0]
    STATE.calls += 1
    STATE.generations += len(generations)
    warm.use_unet(openvino=False)  # LoRAs load into the PyTorch UNet
    used = apply_to(warm, lead.loras)
    use_sampler(warm, lead.scheduler)  # before the twins and control pipelines take the pipeline's scheduler
    # OpenVINO's UNet takes no LoRA and no ControlNet residuals: those calls run the PyTorch one
    warm.use_unet(openvino=not used and not lead.controls)
    # each image's own prompt: its wildcard picks (``webapp.prompting``), else the prompt as written
    seen = {generation.id: [model_prompt(prompt_of(generation, index), generation.style, used, generation.user_id)
                            for index in range(generation.num_images)] for generation in generations}
    prompts, negatives, generators, images = [], [], [], []
    for generation in generations:
        for index in range(generation.num_images):
            prompts.append(seen[generation.id][index])
            negatives.append(model_negative(generation))
            generators.append(torch.Generator("cpu").manual_seed(generation.seed + index))
            if generation.init_image_key:
                images.append(starts[generation.id])
    common = {
        # weights, BREAK and long prompts through compel (``jobs.prompting``). None, not "", when nobody gave a
        # negative prompt: SDXL then uses zero embeddings (``force_zeros_for_empty_prompt``)
        **warm.prompts.encode(prompts, negatives if any(negatives) else None),
        "num_inference_steps": lead.steps, "guidance_scale": lead.guidance, "num_images_per_prompt": 1,
        "generator": generators, "callback_on_step_end": callback, "output_type": "pil",
    }
    if lead.edit is not None and lead.edit.kind == "hires":
        return hires(warm, lead, len(prompts), common), seen
    edit = (edits or {}).get(lead.id)
    whole = edit is None and editing.inpainting_unet(warm.pipe)  # an inpainting checkpoint: the whole is the mask
    mode = "inpaint" if edit or whole else "image" if lead.init_image_key else "text"
    controlled = control.for_call(warm, generations, mode) if lead.controls else None
    if controlled is not None:  # the control pipeline made from the warm one, and its control images
        common.update(controlled[1])
    if edit:
        # one starting picture and mask for every image (diffusers repeats them; its mask crop takes only one);
        # with control images, diffusers' ControlNet inpainting pipeline, pasted back the same way
        pipe = controlled[0] if controlled else warm.inpaint()
        result = call(pipe, warm.plan, len(prompts), image=edit.image(), strength=lead.strength,
                      **edit.call_kwargs(), **common)
        return [edit.paste_back(picture) for picture in result.images], seen
    if whole:  # from words: a grey start repainted at full strength; from a start: at its strength
        size = (lead.width, lead.height)
        start = images if lead.init_image_key else editing.grey(size)
        result = call(controlled[0] if controlled else warm.inpaint(), warm.plan, len(prompts), image=start,
                      mask_image=editing.whole_mask(size), width=size[0], height=size[1],
                      strength=lead.strength if lead.init_image_key else 1.0, **common)
        return list(result.images), seen
    if lead.init_image_key:
        pipe = controlled[0] if controlled else warm.img2img()
        result = call(pipe, warm.plan, len(prompts), image=images, strength=lead.strength, **common)
    else:
        pipe = controlled[0] if controlled else warm.pipe
        result = call(pipe, warm.plan, len(prompts), width=lead.width, height=lead.height, **common)
    return list(result.images), seen


def hires(warm: Warm, generation: Generation, images: int, common: dict[str, Any]) -> list[PILImage.Image]:
    """A hires fix: the pictures at the first pass's size, enlarged, then image-to-image at the full size at the
    hires strength; the second pass's steps follow the first's on the progress bar."""
    settings = generation.edit
    width, height = editing.base_size(generation)
    full = (generation.width, generation.height)
    if editing.inpainting_unet(warm.pipe):  # an inpainting checkpoint: both passes inpaint the whole picture
        if generation.controls:
            raise ModelError("A hires fix with a control image is not offered on an inpainting checkpoint.")
        first = call(warm.inpaint(), warm.plan, images, image=editing.grey((width, height)), strength=1.0,
                     mask_image=editing.whole_mask((width, height)), width=width, height=height, **common)
        pipe, extra = warm.inpaint(), {"mask_image": editing.whole_mask(full), "width": full[0], "height": full[1]}
    else:  # with control images: ControlNet text-to-image, then ControlNet image-to-image (jobs/control.py)
        first_pipe, steering, pipe, extra = warm.pipe, {}, warm.img2img(), {}
        if generation.controls:
            first_pipe, steering, steered, extra = control.hires_passes(warm, generation, (width, height), full)
            pipe = steered or pipe
        first = call(first_pipe, warm.plan, images, width=width, height=height, **steering, **common)
    larger = [editing.enlarge(picture, full, settings.hr_upscaler) for picture in first.images]
    second = {**common, "num_inference_steps": settings.hr_steps or generation.steps,
              "callback_on_step_end": editing.AfterFirstPass(common["callback_on_step_end"], generation.steps)}
    result = call(pipe, warm.plan, images, image=larger, strength=settings.hr_strength, **extra, **second)
    return list(result.images)


def call(pipe: DiffusionPipeline, plan: DevicePlan, images: int, **kwargs: Any) -> Any:
    """Call the pipeline with the arguments it accepts; out of memory frees what it can and says so.

    Arguments the pipeline lacks (a negative prompt, guidance) are dropped. The VAE tiles large pictures
    and slices batches of ``images`` on GPUs. A ``torch.OutOfMemoryError`` is raised again only after
    leaving the failed call's frames, so their tensors can be freed first and the worker is ready for the
    next job.
    """
    tiling, slicing = vae_modes(plan, kwargs.get("width") or 0, kwargs.get("height") or 0, images)
    vae = getattr(pipe, "vae", None)
    if vae is not None and hasattr(vae, "enable_tiling"):
        (vae.enable_tiling if tiling else vae.disable_tiling)()
        (vae.enable_slicing if slicing else vae.disable_slicing)()
    try:
        return pipe(**supported_kwargs(pipe, kwargs))
    except torch.OutOfMemoryError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else ""
    free_memory(plan.device)
    raise torch.OutOfMemoryError(f"{OUT_OF_MEMORY} ({detail})" if detail else OUT_OF_MEMORY)


def free_memory(device: str) -> None:
    """Return the memory of a failed call: Python's garbage, and CUDA's cached blocks."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def memory_bytes(device: str) -> dict[str, int]:
    """This process's peak resident memory, and on CUDA the memory torch holds there."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    found = {"peak_rss": peak}
    if device.startswith("cuda"):
        found["cuda_allocated"] = torch.cuda.memory_allocated()
        found["cuda_reserved"] = torch.cuda.memory_reserved()
    return found


def publish(worker_name: str, serves: list[str]) -> None:
    """Tell the admin pages which models this worker serves and holds warm, their load times and memory."""
    plan = _plan()
    loaded = [{"name": name, "device": device,
               "load_seconds": STATE.models[name].load_seconds if name in STATE.models else None,
               "precision": loader.loaded_precision(name, device)}
              for name, device in loader.loaded_models()]
    worker_status.publish(services.redis(), worker_name, {
        "serves": serves, "loaded": loaded, "device": plan.device, "memory": memory_bytes(plan.device),
        "max_loaded": current_app.config["EASEL_MAX_LOADED_MODELS"], "loads": loader.LOAD_COUNT,
        "control_loads": control.LOAD_COUNT,
        "calls": STATE.calls, "generations": STATE.generations, "catalog_reads": STATE.catalog_reads})
