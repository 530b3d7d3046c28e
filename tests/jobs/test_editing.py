"""Inpainting and outpainting through the real worker (jobs/editing.py, webapp/editing.py): the outside kept to the
pixel, the inside repainted, the inpainting twin made without a second load, the mask stored with the generation."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

from models.training.data import Scene, render
from models.training.measure import read_image
from tests.jobs.test_img2img import result_png
from tests.support import FIELDS, csrf_token, wait_status, worker_report
from tests.support.tiny_pipelines import catalog_entry, save_tiny_depth, save_tiny_inpainting
from webapp.extensions import db
from webapp.tables import Generation

SCENE = Scene(shape="square", colour="red", background="green", position="center", size="large")


def png(picture: PILImage.Image) -> io.BytesIO:
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    buffer.seek(0)
    return buffer


def centre_mask() -> PILImage.Image:
    """The middle of the picture, where SCENE's square is (and a little around it), white on black."""
    mask = PILImage.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    return mask


def post_edit(client, **fields):
    data = {**FIELDS, "csrf_token": csrf_token(client, "/"), **fields}
    return client.post("/generations", data=data, content_type="multipart/form-data")


def generation_id(response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return response.headers["Location"].rsplit("/", 1)[1]


CATALOG = """
[models.easel-tiny]
label = "Easel Tiny, two sizes"
kind = "sd"
path = "{path}"
default_width = 64
default_height = 64
default_steps = 20
default_guidance = 3.0
sizes = [[64, 64], [128, 128]]
max_images = 4
job_timeout = 120

[controls.easel-scribble]
label = "Easel Scribble"
path = "{path}/../controls/easel-scribble"
type = "controlnet"
base_kinds = ["sd"]
preprocessor = "scribble"

[preprocessors.depth]
path = "{depth}"
"""


def circle_drawing(box: tuple[int, int, int, int] = (20, 20, 44, 44)) -> PILImage.Image:
    """A black circle drawn on white, in the middle unless said (the scribble preprocessor makes its outline the
    control)."""
    drawing = PILImage.new("RGB", (64, 64), "white")
    ImageDraw.Draw(drawing).ellipse(box, outline="black", width=3)
    return drawing


def test_inpainting_keeps_the_outside_and_repaints_the_inside_then_outpainting_grows_it(app, signed_in, workers,
                                                                                        tmp_path):
    catalog = tmp_path / "catalog.toml"  # the bundled model, also allowed at 128×128 (for the hires fix)
    inpainting = save_tiny_inpainting(tmp_path / "tiny-inpainting")  # an inpainting checkpoint: 9-channel UNet
    depth = save_tiny_depth(tmp_path / "depth")  # depth-estimator weights an operator installed (random, tiny)
    catalog.write_text(CATALOG.format(path=Path(__file__).resolve().parents[2] / "models" / "easel-tiny", depth=depth)
                       + catalog_entry("tiny-inpainting", "sd", inpainting, sizes=[[32, 32], [64, 64]]))
    app.config.update(MAX_ACTIVE_PER_USER=4, EASEL_CATALOG=str(catalog))
    start = render(SCENE)
    prompt = "a large blue square in the center, green background"
    whole = generation_id(post_edit(signed_in, prompt=prompt, steps="10", strength="1.0", mask_blur="2",
                                    init_image=(png(start), "start.png"), mask=(png(centre_mask()), "mask.png")))
    proc = workers.start(extra_env={"EASEL_CATALOG": str(catalog)})
    done = wait_status(signed_in, whole, {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded", done
    result = result_png(signed_in, done).convert("RGB")
    before, after = np.asarray(start, np.int16), np.asarray(result, np.int16)
    outside = np.asarray(centre_mask()) == 0
    assert np.abs(after[outside] - before[outside]).max() == 0  # pasted back: not one pixel outside drifts
    assert read_image(result).colour == "blue"  # the square, repainted
    params = json.loads(result_png(signed_in, done).text["easel"])
    assert (params["edit"], params["mask_blur"], params["inpaint_area"]) == ("inpaint", 2, "whole")

    first_done = done

    # ControlNet inpainting: the same edit and seed steered by a drawn circle (diffusers' ControlNet inpainting
    # pipeline from the warm one): the outside still kept to the pixel, the inside steered, both recorded
    steered = generation_id(post_edit(signed_in, prompt=prompt, steps="10", strength="1.0", mask_blur="2",
                                      init_image=(png(start), "start.png"), mask=(png(centre_mask()), "mask.png"),
                                      control_image=(png(circle_drawing()), "circle.png"), control="easel-scribble"))
    done = wait_status(signed_in, steered, {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded", done
    steered_png = result_png(signed_in, done)
    with_control = np.asarray(steered_png.convert("RGB"), np.int16)
    assert np.abs(with_control[outside] - before[outside]).max() == 0
    assert np.abs(with_control[~outside] - after[~outside]).mean() > 3  # the control changed the repainted part
    recorded = json.loads(steered_png.text["easel"])
    assert recorded["edit"] == "inpaint" and recorded["controls"][0]["name"] == "easel-scribble"
    with app.app_context():
        row = db.session.get(Generation, steered)
        assert row.edit.kind == "inpaint" and row.edit.mask_key and row.controls[0]["name"] == "easel-scribble"

    # ControlNet image-to-image: a control and a starting image, no mask; the control's map made by the depth
    # preprocessor, offered because its weights are installed, and run by the worker (the web has no torch)
    assert '<option value="depth">depth</option>' in signed_in.get("/").get_data(as_text=True)
    guided = generation_id(post_edit(signed_in, prompt=prompt, steps="4", strength="0.8",
                                     init_image=(png(start), "start.png"), control_preprocessor="depth",
                                     control_image=(png(circle_drawing()), "circle.png"), control="easel-scribble"))
    done = wait_status(signed_in, guided, {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded", done
    unit = json.loads(result_png(signed_in, done).text["easel"])["controls"][0]
    assert (unit["name"], unit["preprocessor"]) == ("easel-scribble", "depth")
    with PILImage.open(Path(app.config["MEDIA_DIR"]) / unit["image_key"]) as stored:  # the picture, as sent
        assert np.array_equal(np.asarray(stored.convert("RGB")), np.asarray(circle_drawing()))
    assert done["params"]["control_preprocessor"] == "depth"  # "Reuse settings" makes the map again
    done = first_done

    # "Reuse settings" brings the mask back by the generation's id; only the masked area is repainted (cropped)
    reused = done["params"]
    assert (reused["mask_from"], reused["mask_blur"], reused["inpaint_area"]) == (whole, 2, "whole")
    image_id = done["images"][0]["id"]
    masked = generation_id(post_edit(signed_in, prompt="a large yellow square in the center, green background",
                                     steps="10", strength="1.0", init_image_id=image_id, mask_from=whole,
                                     inpaint_area="masked"))
    done = wait_status(signed_in, masked, {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded", done
    again = np.asarray(result_png(signed_in, done).convert("RGB"), np.int16)
    assert np.abs(again[outside] - after[outside]).max() == 0
    assert read_image(PILImage.fromarray(again.astype(np.uint8))).colour == "yellow"
    inpainted = result_png(signed_in, done)
    assert json.loads(inpainted.text["easel"])["lineage"][0] == {"image_id": image_id, "source": "inpaint"}
    page = signed_in.get(f"/images/{done['images'][0]['id']}").get_data(as_text=True)
    assert "inpainted from" in page

    # Outpainting: 32 pixels more on the right, scaled back to the model's one size (64x64): the old part stays
    token = csrf_token(signed_in, f"/images/{image_id}/edit")
    response = signed_in.post(f"/images/{image_id}/outpaint", data={"right": "0.5", "csrf_token": token})
    grown = generation_id(response)
    done = wait_status(signed_in, grown, {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded", done
    wide_png = result_png(signed_in, done)
    wide = wide_png.convert("RGB")
    assert wide.size == (64, 64)
    with app.app_context():
        row = db.session.get(Generation, grown)
        canvas_key, border_key = row.init_image_key, row.edit.mask_key
    media = Path(app.config["MEDIA_DIR"])
    with PILImage.open(media / canvas_key) as stored:
        canvas = np.asarray(stored.convert("RGB"), np.int16)
    with PILImage.open(media / border_key) as stored:
        border = np.asarray(stored) > 0
    assert border[:, 50:].all() and not border[20:44, 0:40].any()  # the new right side, and the old picture
    assert np.abs(np.asarray(wide, np.int16)[~border] - canvas[~border]).max() == 0
    assert json.loads(wide_png.text["easel"])["outpaint"] == {"left": 0, "right": 32, "top": 0, "bottom": 0}

    # Hires fix: made at 64×64, enlarged ×2, refined at 128×128; one progress bar over both passes
    studio = signed_in.get("/").get_data(as_text=True)
    assert 'id="hires-box"' in studio and 'id="hires-box" hidden' not in studio  # offered: it makes twice its size
    hires = generation_id(post_edit(signed_in, prompt="a large blue circle in the center, yellow background",
                                    steps="4", hires="y", hr_scale="2", hr_strength="0.5", hr_steps="4"))
    done = wait_status(signed_in, hires, {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded", done
    assert (done["step"], done["total_steps"]) == (6, 6)  # 4 steps, then int(4 * 0.5)
    assert "hires fix ×2.0 (lanczos, strength 0.5)" in signed_in.get(f"/generations/{hires}").get_data(as_text=True)
    large = result_png(signed_in, done)
    assert large.size == (128, 128) and json.loads(large.text["easel"])["hires"]["scale"] == 2
    assert read_image(large.convert("RGB").resize((64, 64))).colour == "blue"
    assert done["params"]["hires"] and (done["params"]["width"], done["params"]["height"]) == (64, 64)

    # ... steered by a control image (a circle drawn in the corner): ControlNet text-to-image at 64×64, then
    # ControlNet image-to-image at 128×128, the control picture at each pass's size
    steered_hires = generation_id(post_edit(signed_in, prompt="a large blue circle in the center, yellow background",
                                            steps="4", hires="y", hr_scale="2", hr_strength="0.5", hr_steps="4",
                                            control_image=(png(circle_drawing((34, 34, 60, 60))), "corner.png"),
                                            control="easel-scribble"))
    done = wait_status(signed_in, steered_hires, {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded", done
    steered_png = result_png(signed_in, done)
    recorded = json.loads(steered_png.text["easel"])
    assert steered_png.size == (128, 128) and recorded["hires"]["scale"] == 2
    assert recorded["controls"][0]["name"] == "easel-scribble"
    moved = np.abs(np.asarray(steered_png.convert("RGB"), np.int16) - np.asarray(large.convert("RGB"), np.int16))
    assert moved.mean() > 3  # the same prompt and seed, steered elsewhere

    # The hires fix of an image already made (its second pass, from the image page): "hires of" that image
    page = signed_in.get(f"/images/{image_id}").get_data(as_text=True)
    assert 'id="hires-form"' in page and '<option value="2.0">×2 (128×128)</option>' in page
    token = csrf_token(signed_in, f"/images/{image_id}")
    with app.app_context():
        before_count = db.session.query(Generation).count()
    refused = signed_in.post(f"/images/{image_id}/hires", data={"hr_scale": "3", "hr_strength": "0.5",
                                                                 "csrf_token": token})
    assert refused.status_code == 303 and refused.headers["Location"].endswith(f"/images/{image_id}")
    with app.app_context():
        assert db.session.query(Generation).count() == before_count  # 192×192 is not a size it makes: nothing queued
    second = generation_id(signed_in.post(f"/images/{image_id}/hires", data={"hr_scale": "2", "hr_strength": "0.5",
                                                                             "csrf_token": token}))
    done = wait_status(signed_in, second, {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded", done
    refined = result_png(signed_in, done)
    assert refined.size == (128, 128)
    assert json.loads(refined.text["easel"])["lineage"][0] == {"image_id": image_id, "source": "hires"}
    page = signed_in.get(f"/images/{done['images'][0]['id']}").get_data(as_text=True)
    assert "Made from hires of" in page and f'href="/images/{image_id}" id="parent-link"' in page

    report = worker_report(app.config["REDIS_URL"], proc, generations=8)
    assert report["loads"] == 1 and report["control_loads"] == 1  # the twins share the weights

    # An inpainting checkpoint in the catalog inpaints with its 9-channel UNet (a plain pipeline cannot even run
    # it: its UNet wants the mask and the masked picture), keeps the outside, and makes pictures from words too
    # (here with the hires fix: both passes inpaint the whole picture)
    small_mask = centre_mask().resize((32, 32), PILImage.Resampling.NEAREST)
    small_start = start.resize((32, 32))
    nine = generation_id(post_edit(signed_in, model="tiny-inpainting", width="32", height="32", steps="2",
                                   strength="1.0", mask_blur="0", init_image=(png(small_start), "start.png"),
                                   mask=(png(small_mask), "mask.png")))
    done = wait_status(signed_in, nine, {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded", done
    kept = np.asarray(small_mask) == 0
    made, was = np.asarray(result_png(signed_in, done).convert("RGB"), np.int16), np.asarray(small_start, np.int16)
    assert np.abs(made[kept] - was[kept]).max() == 0 and np.abs(made[~kept] - was[~kept]).mean() > 10
    worded = generation_id(post_edit(signed_in, model="tiny-inpainting", width="32", height="32", steps="4",
                                     hires="y", hr_scale="2", hr_strength="0.5"))
    done = wait_status(signed_in, worded, {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded", done
    assert result_png(signed_in, done).size == (64, 64)
    assert worker_report(app.config["REDIS_URL"], proc, generations=10)["loads"] == 2

    # The mask lies with its generation's files and goes with it
    with app.app_context():
        key = db.session.get(Generation, whole).edit.mask_key
    assert (Path(app.config["MEDIA_DIR"]) / key).is_file()
    image_page = f"/images/{image_id}"
    signed_in.post(f"{image_page}/delete", data={"csrf_token": csrf_token(signed_in, image_page)})
    assert not (Path(app.config["MEDIA_DIR"]) / key).exists()


def test_an_inpainting_checkpoint_is_used_as_such():
    """A 9-channel UNet (an inpainting checkpoint) takes the masked picture itself through the same twin and call."""
    import torch
    from diffusers import UNet2DConditionModel

    from jobs.editing import Edit, inpaint_from
    from tests.support.tiny_pipelines import build_sd
    from webapp.tables import GenerationEdit

    torch.manual_seed(0)
    pipe = build_sd()
    pipe.unet = UNet2DConditionModel(**{**pipe.unet.config, "in_channels": 9})
    twin = inpaint_from(pipe)
    assert type(twin).__name__ == "StableDiffusionInpaintPipeline" and twin.unet is pipe.unet  # no second copy
    start = PILImage.new("RGB", (32, 32), (200, 30, 30))
    mask = PILImage.new("L", (32, 32), 0)
    mask.paste(255, (8, 8, 24, 24))
    edit = Edit(start=start, mask=mask, settings=GenerationEdit(kind="inpaint", mask_blur=2, inpaint_area="whole",
                                                                padding=32, fill="original"))
    result = twin("a blue square", image=edit.image(), strength=1.0, num_inference_steps=2,
                  generator=torch.Generator("cpu").manual_seed(1), **edit.call_kwargs()).images[0]
    out = np.asarray(edit.paste_back(result), np.int16)
    assert np.abs(out[:8] - np.asarray(start, np.int16)[:8]).max() == 0
    assert np.abs(out[12:20, 12:20] - np.asarray(start, np.int16)[12:20, 12:20]).mean() > 10  # repainted (random net)
