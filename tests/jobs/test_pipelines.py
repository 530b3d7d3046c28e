"""Every architecture, LoRAs (from the studio, /api/v1 and A1111 prompt tags), model routing and out-of-memory,
through real worker processes and real HTTP.

The catalog points at tiny random-weight SD, SDXL and SD3 folders and a LoRA made here, so nothing
is downloaded. The SDXL Euler scheduler's numpy DeprecationWarning is raised in the worker process,
which does not turn warnings into errors, so no filter is needed there.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests
import webuiapi
from PIL import Image as PILImage
from redis import Redis
from rq.job import Job

from tests.support import FIELDS, api_token, bearer, post, state, submit_ok, wait_for, wait_running, wait_status, worker_report
from tests.support.tiny_pipelines import ARCHITECTURES, SIZE, catalog_entry, save_tiny, save_tiny_lora
from webapp.queues import SERIALIZER

LORA = """
[loras.ink]
label = "Ink"
path = "ink.safetensors"
base_kinds = ["sd"]
default_scale = 0.8
trigger_words = ["ink drawing"]
"""


@pytest.fixture(scope="module")
def tiny_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalog of tiny SD, SDXL and SD3 folders (many steps allowed, to catch a job mid-way) and an SD LoRA."""
    root = tmp_path_factory.mktemp("tiny-models")
    folders = {kind: save_tiny(kind, root / kind) for kind in ARCHITECTURES}
    save_tiny_lora(folders["sd"], root / "ink.safetensors")
    tables = [catalog_entry(f"tiny-{kind}", kind, folder, max_steps=1000) for kind, folder in folders.items()]
    path = root / "catalog.toml"
    path.write_text("\n".join(tables) + LORA, encoding="utf-8")
    return path


@pytest.fixture
def deployment_env(tiny_catalog: Path) -> dict[str, str]:
    """This module's deployment: the tiny catalog, three models warm per worker."""
    return {"EASEL_CATALOG": str(tiny_catalog), "EASEL_MODEL": "tiny-sd", "EASEL_MAX_LOADED_MODELS": "3",
            "MAIL_RETRY_INTERVALS": "1,1"}


def make(client, model: str = "tiny-sd", **fields) -> str:
    """Submit a tiny generation through the studio form."""
    return submit_ok(client, model=model, width=SIZE, height=SIZE, guidance=2.0, **fields)


def job_result(redis_url: str, generation_id: str) -> dict:
    """What the worker's job returned (images, seconds, pipeline loads in its process), once RQ has stored it."""
    job = Job.fetch(generation_id, connection=Redis.from_url(redis_url), serializer=SERIALIZER)
    return wait_for(job.return_value, timeout=15, message="the job's result")


def png_of(client, image: dict) -> PILImage.Image:
    response = client.get(image["url"])
    assert response.status_code == 200
    png = PILImage.open(io.BytesIO(response.get_data()))
    png.load()
    response.close()
    return png


@pytest.mark.parametrize("kind", ARCHITECTURES)
def test_architecture_runs_the_generation_loop(kind: str, app, signed_in, workers, redis_url) -> None:
    client, model = signed_in, f"tiny-{kind}"
    long_id = make(client, model, steps=900)  # the schedulers allow fewer than their 1000 training steps
    proc = workers.start(models=model)
    first = wait_running(client, long_id, min_step=2, timeout=180)
    preview = wait_for(lambda: state(client, long_id)["preview_url"], timeout=30, message="a live preview")
    response = client.get(preview)
    assert response.status_code == 200 and response.mimetype == "image/webp"
    wait_for(lambda: state(client, long_id)["step"] > first["step"], timeout=30, message="the step to rise")
    post(client, f"/generations/{long_id}/cancel")
    assert wait_status(client, long_id, {"canceled", "succeeded", "failed"})["status"] == "canceled"

    generation_id = make(client, model, steps=3, num_images=2, seed=5, negative_prompt="blurry")
    final = wait_status(client, generation_id, {"succeeded", "failed"})
    assert final["status"] == "succeeded", final
    png = png_of(client, final["images"][1])
    params = json.loads(png.text["easel"])
    assert png.size == (SIZE, SIZE)
    assert (params["model"], params["seed"], params["steps"], params["negative_prompt"]) == (model, 6, 3, "blurry")
    assert worker_report(redis_url, proc, generations=2)["loads"] == 1


def test_lora_switches_between_requests_without_reloading(app, signed_in, workers, redis_url, live_server) -> None:
    client = signed_in
    proc = workers.start(models="tiny-sd")

    def pixels(generation_id: str) -> tuple[bytes, dict]:
        final = wait_status(client, generation_id, {"succeeded", "failed"})
        assert final["status"] == "succeeded", final
        png = png_of(client, final["images"][0])
        return png.convert("RGB").tobytes(), json.loads(png.text["easel"])

    def from_form(**fields) -> tuple[bytes, dict]:
        return pixels(make(client, steps=2, seed=9, **fields))

    plain, _ = from_form()
    inked, params = from_form(**{"loras-0-name": "ink"})
    plain_again, _ = from_form()
    # The same LoRA and scale through /api/v1 (webapp/api/v1/) and the studio form: the same picture.
    token = api_token(app, ada_id(app))
    created = requests.post(f"{live_server}/api/v1/generations", headers=bearer(token), timeout=10, json={
        "prompt": FIELDS["prompt"], "model": "tiny-sd", "width": SIZE, "height": SIZE, "steps": 2, "guidance": 2.0,
        "seed": 9, "loras": [{"name": "ink", "scale": 0.3}]})
    assert created.status_code == 201, created.text
    from_api, api_params = pixels(created.json()["id"])
    lighter, lighter_params = from_form(**{"loras-0-name": "ink", "loras-0-scale": "0.3"})
    assert params["loras"] == [["ink", 0.8]] and lighter_params["loras"] == api_params["loras"] == [["ink", 0.3]]
    assert inked != plain and lighter not in (plain, inked)
    assert plain_again == plain, "without the LoRA the base model's pictures come back exactly"
    assert from_api == lighter, "the API's LoRA is applied as the studio's"
    assert worker_report(redis_url, proc, generations=5)["loads"] == 1

    # A1111's clients put the LoRA in the prompt (webapp/api/extra_networks.py): taken out, then applied alike.
    # sampler "": the model's own scheduler, the studio's default (webuiapi sends "Euler a" unless told otherwise)
    api = webuiapi.WebUIApi(host="127.0.0.1", port=urlsplit(live_server).port, username="ada@example.com",
                            password=token, sampler="")
    assert [lora["name"] for lora in api.get_loras()] == ["ink"]
    tagged = api.txt2img(prompt=f"{FIELDS['prompt']} <lora:ink:0.3>", width=SIZE, height=SIZE, steps=2, seed=9,
                         cfg_scale=2.0)
    assert tagged.info["prompt"] == FIELDS["prompt"]
    assert tagged.image.convert("RGB").tobytes() == lighter, "the tag's LoRA is applied as the studio's"


def test_a_lora_never_leaks_into_the_generations_batched_after_it(app, signed_in, workers, redis_url) -> None:
    """A LoRA generation, then LoRA-free ones batched together, then LoRA ones batched together: each image is the
    one the same seed makes alone (``jobs.pipelines.generate`` prepares every call, one or many)."""
    client = signed_in
    app.config["MAX_ACTIVE_PER_USER"] = 6
    inked = make(client, steps=900, seed=1, **{"loras-0-name": "ink"})  # long: the others queue behind it
    workers.start(models="tiny-sd", extra_env={"EASEL_BATCH_MAX": "4", "EASEL_BATCH_WAIT_MS": "0"})
    wait_running(client, inked, 2, timeout=180)
    plain = [{"prompt": "a red circle", "seed": 21}, {"prompt": "a green square", "seed": 22}]
    batched = [make(client, steps=3, **fields) for fields in plain]
    post(client, f"/generations/{inked}/cancel")
    assert wait_status(client, inked, {"canceled", "succeeded", "failed"})["status"] == "canceled"
    finals = [wait_status(client, gid, {"succeeded", "failed"}) for gid in batched]
    assert [final["status"] for final in finals] == ["succeeded"] * 2, finals
    assert [job_result(redis_url, gid)["batch"] for gid in batched] == [2, 2]  # one call for the two

    def alone(**fields) -> dict:
        final = wait_status(client, make(client, steps=3, **fields), {"succeeded", "failed"})
        assert final["status"] == "succeeded", final
        return final

    for fields, together in zip(plain, finals, strict=True):
        solo = alone(**fields)
        difference = np.abs(pixels_of(client, solo) - pixels_of(client, together))
        assert difference.max() <= 8 and difference.mean() < 0.5, (difference.max(), difference.mean())
    inked_alone = alone(**plain[0], **{"loras-0-name": "ink"})
    assert np.abs(pixels_of(client, inked_alone) - pixels_of(client, finals[0])).mean() > 1, "the LoRA shows"
    # the text the model saw (the trigger word added) is kept, and shown where its owner sees the prompt
    png = png_of(client, inked_alone["images"][0])
    assert png.text["parameters"].startswith("a red circle, ink drawing\n")
    assert json.loads(png.text["easel"])["prompt"] == "a red circle"
    page = client.get(f"/images/{inked_alone['images'][0]['id']}").get_data(as_text=True)
    assert '<td id="model-prompt">a red circle, ink drawing</td>' in page


def pixels_of(client, final: dict) -> np.ndarray:
    return np.asarray(png_of(client, final["images"][0]).convert("RGB"), dtype=np.int16)


def ada_id(app) -> int:
    """The signed-in person's id (``signed_in`` makes her)."""
    from webapp.extensions import db
    from webapp.tables import User

    with app.app_context():
        return db.session.scalar(db.select(User.id).where(User.email == "ada@example.com"))


def test_lora_that_does_not_fit_the_model_is_refused(app, signed_in) -> None:
    from tests.support import submit

    response = submit(signed_in, model="tiny-sdxl", width=SIZE, height=SIZE, steps=2, **{"loras-0-name": "ink"})
    assert response.status_code == 400
    assert "made for sd models" in response.get_data(as_text=True)


def test_worker_serves_only_its_models_and_the_page_says_when_none_does(app, signed_in, workers, redis_url) -> None:
    client = signed_in
    unserved = make(client, "tiny-sdxl", steps=2)
    workers.start(models="tiny-sd")
    served = make(client, "tiny-sd", steps=2)
    assert wait_status(client, served, {"succeeded", "failed"})["status"] == "succeeded"
    waiting = state(client, unserved)
    assert waiting["status"] == "queued" and waiting["queue_position"] == 1, waiting
    assert waiting["notice"].startswith("No worker serves model tiny-sdxl right now")
    page = client.get(f"/generations/{unserved}").get_data(as_text=True)
    assert "No worker serves model tiny-sdxl right now" in page
    assert state(client, served)["notice"] is None

    workers.start(models="tiny-sdxl")
    assert wait_status(client, unserved, {"succeeded", "failed"})["status"] == "succeeded"


def test_out_of_memory_is_explained_and_the_worker_carries_on(app, signed_in, workers, redis_url) -> None:
    client = signed_in
    proc = workers.start(models="tiny-sd", module="tests.support.oom_worker", extra_env={"TEST_OOM_ABOVE_BATCH": "2"})
    too_big = make(client, steps=2, num_images=2)  # two images with guidance: a batch of 4 latents
    failed = wait_status(client, too_big, {"succeeded", "failed"})
    assert failed["status"] == "failed"
    assert failed["error"].startswith("The GPU ran out of memory. Try a smaller size or fewer images."), failed
    fits = make(client, steps=2, num_images=1)
    assert wait_status(client, fits, {"succeeded", "failed"})["status"] == "succeeded"
    assert proc.poll() is None
    assert worker_report(redis_url, proc, generations=2)["loads"] == 1, "the same process, its pipeline still loaded"


# The choices, without a GPU: what each device gets, and what a failed call leaves behind

def test_device_plans() -> None:
    from jobs.pipelines import DevicePlan, plan_for

    assert plan_for("cpu", offload=True) == DevicePlan(device="cpu")
    assert plan_for("cpu", compile=True, openvino=True) == DevicePlan(device="cpu", compile=True, openvino=True)
    assert plan_for("mps") == DevicePlan(device="mps", attention_slicing=True)
    assert plan_for("cuda", compile=True) == DevicePlan(device="cuda", compile=True, cuda=True)
    assert plan_for("cuda:1", offload=True, compile=True) == DevicePlan(device="cuda:1", offload=True, cuda=True)


def test_vae_tiles_large_pictures_and_slices_batches_on_gpus_only() -> None:
    from jobs.pipelines import plan_for, vae_modes

    cuda, mps, cpu = plan_for("cuda"), plan_for("mps"), plan_for("cpu")
    assert vae_modes(cuda, 1024, 1024, 1) == (False, False)
    assert vae_modes(cuda, 1536, 1024, 1) == (True, False)
    assert vae_modes(mps, 512, 512, 4) == (False, True)
    assert vae_modes(cpu, 2048, 2048, 4) == (False, False)


class FakePipe:
    """Records what ``prepare`` asks of a pipeline."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.unet = "the unet"

    def enable_model_cpu_offload(self, device: str) -> None:
        self.calls.append(f"offload:{device}")

    def enable_attention_slicing(self) -> None:
        self.calls.append("attention_slicing")


def test_prepare_applies_a_plan_once(monkeypatch) -> None:
    import torch

    from jobs.pipelines import plan_for, prepare

    monkeypatch.setattr(torch, "compile", lambda module: f"compiled {module}")
    pipe = FakePipe()
    prepare(pipe, plan_for("cuda", compile=True))  # once per loaded pipeline: WorkerState.warm calls it
    assert pipe.unet == "compiled the unet" and pipe.calls == []
    small = FakePipe()
    prepare(small, plan_for("cuda", offload=True))
    assert small.calls == ["offload:cuda"] and small.unet == "the unet"
    mac = FakePipe()
    prepare(mac, plan_for("mps"))
    assert mac.calls == ["attention_slicing"]


def test_out_of_memory_frees_the_failed_call_before_raising() -> None:
    import weakref

    import torch

    from jobs.pipelines import call, plan_for

    held: list[weakref.ref] = []

    class Exhausting:
        def __call__(self, prompt: str, guidance_scale: float = 1.0):
            activations = torch.zeros(1 << 16)
            held.append(weakref.ref(activations))
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    with pytest.raises(torch.OutOfMemoryError, match=r"^The GPU ran out of memory \(CUDA out of memory"):
        call(Exhausting(), plan_for("cpu"), 1, prompt="a red star", negative_prompt="dropped: not accepted", guidance_scale=2.0)
    assert held and held[0]() is None, "the failed call's tensors are gone before the error reaches the job"


def test_trigger_words_are_added_once() -> None:
    from jobs.pipelines import with_trigger_words
    from models.catalog import LoraEntry

    lora = LoraEntry(name="ink", label="Ink", path=Path("ink.safetensors"), base_kinds=("sd",), default_scale=1.0,
                     trigger_words=("ink drawing", "sketch"), scheduler=None, min_steps=None, max_steps=None,
                     default_steps=None, default_guidance=None, description="")
    assert with_trigger_words("a cat, Ink Drawing", [lora]) == "a cat, Ink Drawing, sketch"
    assert with_trigger_words("a cat", []) == "a cat"


def test_worker_queues_follow_the_models_it_serves() -> None:
    from jobs.worker import queue_names

    assert queue_names(["generate", "default"], ["a", "b"], requested=False) == [
        "generate:a", "generate:b", "generate", "default"]
    assert queue_names(["generate"], ["b"], requested=True) == ["generate:b"]
    assert queue_names(["default"], [], requested=False) == ["default"]


def test_model_settings(monkeypatch) -> None:
    from webapp import config

    for name in ("EASEL_MAX_LOADED_MODELS", "EASEL_GPU_HEADROOM_MB", "EASEL_COMPILE", "EASEL_OFFLOAD",
                 "EASEL_PRECISION", "EASEL_OPENVINO", "EASEL_KEEP_FREED_MEMORY"):
        monkeypatch.delenv(name, raising=False)
    assert config.model_settings() == {"EASEL_MAX_LOADED_MODELS": 2, "EASEL_GPU_HEADROOM_MB": 6144,
                                       "EASEL_COMPILE": False, "EASEL_OPENVINO": True, "EASEL_OFFLOAD": False,
                                       "EASEL_PRECISION": "", "EASEL_KEEP_FREED_MEMORY": True}
    monkeypatch.setenv("EASEL_MAX_LOADED_MODELS", "0")
    with pytest.raises(config.ConfigError, match="at least 1"):
        config.model_settings()
