"""The admin Models page: models, LoRAs and upscalers with availability, who serves and holds each model, jobs per model."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

from tests.support import ROOT, sign_in, submit_ok, wait_for

ADMIN = "root@example.com"


def test_models_page_shows_availability_workers_and_waiting_jobs(app, make_user, workers) -> None:
    make_user(ADMIN, is_admin=True)
    admin = sign_in(app, ADMIN)
    submit_ok(admin, model="easel-tiny-slow", steps=4)  # no worker serves it: it waits
    proc = workers.start(models="easel-tiny", extra_env={"EASEL_PRECISION": "fp32"})  # overrides the catalog's auto

    def page() -> str:
        return admin.get("/admin/models").get_data(as_text=True)

    html = wait_for(lambda: (text := page()) and proc.worker_name in text and text, timeout=120,
                    message="the worker on the Models page")
    tiny = html.split('id="model-easel-tiny"')[1].split("</tr>")[0]
    assert proc.worker_name in tiny.split('class="small text-break served-by"')[1]
    assert f"{proc.worker_name} (fp32)" in tiny.split('class="small text-break warm-on"')[1]
    assert '<td class="precision">auto</td>' in tiny  # the catalog's setting
    slow = html.split('id="model-easel-tiny-slow"')[1].split("</tr>")[0]
    assert '<td class="waiting">1</td>' in slow and "no worker" in slow
    missing = html.split('id="model-missing-model"')[1].split("</tr>")[0]
    assert "no diffusers folder" in missing and "model_index.json missing" in missing
    upscaler = html.split('id="upscaler-missing-upscaler"')[1].split("</tr>")[0]
    assert "weights file" in upscaler and "is missing" in upscaler
    assert "yes" in html.split('id="upscaler-lanczos"')[1].split("</tr>")[0]
    worker = html.split(f'id="worker-{proc.worker_name}"')[1].split("</tr>")[0]
    assert "easel-tiny (" in worker and " s) in fp32" in worker and "GiB RAM" in worker and ">cpu<" in worker
    # the worker's start line: the OpenVINO UNet that make run (and the test session) made for the bundled model
    assert "serving models: easel-tiny (fp32 on cpu, OpenVINO UNet)" in proc.log_path.read_text()
    # a CPU worker on glibc keeps freed memory for the next step (EASEL_KEEP_FREED_MEMORY, on by default)
    if platform.libc_ver()[0] == "glibc":
        assert "freed memory is kept for the next step" in proc.log_path.read_text()


def test_models_page_lists_control_models_with_availability(app, make_user) -> None:
    make_user(ADMIN, is_admin=True)
    html = sign_in(app, ADMIN).get("/admin/models").get_data(as_text=True)
    scribble = html.split('id="control-easel-scribble"')[1].split("</tr>")[0]
    assert '<td class="type">controlnet</td>' in scribble and '<td class="preprocessor">scribble</td>' in scribble
    assert "sd (easel-tiny, easel-tiny-slow, missing-model)" in scribble and '<td class="scale">1.0</td>' in scribble
    assert scribble.rstrip().endswith('<td class="small">yes</td>')
    missing = html.split('id="control-missing-control"')[1].split("</tr>")[0]
    assert '<td class="small base-kinds">sdxl</td>' in missing and "config.json missing" in missing
    assert '<td class="preprocessor">canny</td>' in missing
    assert "none installed (depth needs its weights" in html.split('id="estimators"')[1].split("</p>")[0]


def test_models_page_is_for_admins_only(app, make_user) -> None:
    make_user("ada@example.com")
    assert sign_in(app, "ada@example.com").get("/admin/models").status_code == 404


def test_web_pages_with_models_and_loras_never_import_torch(app_env, tmp_path) -> None:
    """The studio and the Models page read capabilities and LoRAs from the catalog alone."""
    catalog = tmp_path / "catalog.toml"
    catalog.write_text((ROOT / "tests" / "catalog.toml").read_text().replace('"../models/', f'"{ROOT}/models/') +
                       '\n[loras.ink]\npath = "ink.safetensors"\nbase_kinds = ["sd"]\ntrigger_words = ["ink"]\n')
    (tmp_path / "ink.safetensors").write_bytes(b"x")
    code = """
import sys
from webapp import create_app, config
from webapp.extensions import db
from webapp.tables import User
app = create_app({**config.from_environment(), "TESTING": True, "WTF_CSRF_ENABLED": False})
with app.app_context():  # the database is the migrated copy that app_env made
    user = User(email="root@example.com", is_admin=True)
    user.set_password("correct horse")
    db.session.add(user)
    db.session.commit()
client = app.test_client()
client.post("/auth/login", data={"email": "root@example.com", "password": "correct horse"})
studio = client.get("/").get_data(as_text=True)
assert "LoRAs (up to 3)" in studio, studio[:500]
assert client.get("/admin/models").status_code == 200
print(sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'diffusers', 'transformers'}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **app_env,
                         "EASEL_CATALOG": str(catalog)}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
