"""Web and GPU worker share nothing but Redis, the database and an S3-compatible server (moto over HTTP)."""
from __future__ import annotations

import io
from pathlib import Path

import requests
from PIL import Image as PILImage
from sqlalchemy import func, select

from tests.support import body, bucket_keys, links_in, submit_ok, wait_for_mail, wait_status
from webapp.extensions import db
from webapp.tables import Image

FAST = {"steps": 2, "prompt": "a lighthouse at dusk"}


def files_under(folder: str | Path) -> list[Path]:
    root = Path(folder)
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def test_generation_completes_on_another_machine_and_is_emailed(app, app_env, client, auth, make_user, s3_bucket,
                                                                 workers, tmp_path):
    make_user("ada@example.com")
    auth.login()
    worker_disk = tmp_path / "worker-machine"
    workers.start(queues="generate,default", extra_env={"MEDIA_DIR": str(worker_disk / "media"),
                                                        "EASEL_INSTANCE_DIR": str(worker_disk)})
    generation_id = submit_ok(client, **FAST)
    final = wait_status(client, generation_id, {"succeeded", "failed"})
    assert final["status"] == "succeeded", final
    [image] = final["images"]

    # The web app checks access, then redirects to a short-lived presigned URL on the S3 server.
    redirect = client.get(image["url"])
    assert redirect.status_code == 302 and redirect.headers["Cache-Control"] == "private, no-store"
    presigned = redirect.headers["Location"]
    assert presigned.startswith(f"{s3_bucket.endpoint}/{s3_bucket.name}/easel/users/")
    assert "X-Amz-Signature" in presigned
    png = requests.get(presigned, timeout=10)
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    assert PILImage.open(io.BytesIO(png.content)).size == (64, 64)
    thumb = requests.get(client.get(image["thumbnail_url"]).headers["Location"], timeout=10)
    assert thumb.headers["Content-Type"] == "image/webp"
    download = requests.get(client.get(image["url"] + "?download=1").headers["Location"], timeout=10)
    assert download.headers["Content-Disposition"].startswith("attachment; filename=\"easel-")

    assert sorted(key.rsplit("/", 1)[-1] for key in bucket_keys(s3_bucket)) == ["0.png", "0.thumb.webp"]
    assert files_under(app_env["MEDIA_DIR"]) == [] and files_under(worker_disk / "media") == []

    # The chore queue emailed the result; its link opens the image for someone not signed in.
    [message] = wait_for_mail(app_env)
    assert message["To"] == "ada@example.com" and message["Subject"] == "Your art is ready: a lighthouse at dusk"
    text, html = body(message), body(message, "html")
    assert "a lighthouse at dusk" in text and "a lighthouse at dusk" in html
    [link] = links_in(text, "/s/")
    assert link.startswith("http://127.0.0.1:5000/s/")  # built from PUBLIC_BASE_URL, not from a request
    assert f'src="{link}/thumbnail"' in html
    [unsubscribe] = links_in(text, "/email/unsubscribe/")
    assert message["List-Unsubscribe"] == f"<{unsubscribe}>"
    stranger = app.test_client()
    path = link.removeprefix("http://127.0.0.1:5000")
    assert "a lighthouse at dusk" in stranger.get(path).get_data(as_text=True)
    via_link = stranger.get(path + "/file")
    assert via_link.status_code == 302
    assert requests.get(via_link.headers["Location"], timeout=10).content == png.content


def test_a_failed_upload_fails_the_generation_cleanly(app, app_env, client, auth, make_user, s3_bucket, workers):
    make_user("ada@example.com")
    auth.login()
    workers.start(queues="generate,default", extra_env={"S3_BUCKET": "no-such-bucket-anywhere"})
    generation_id = submit_ok(client, **FAST)
    final = wait_status(client, generation_id, {"succeeded", "failed"})
    assert final["status"] == "failed" and final["images"] == []
    assert final["error"] == "The finished images could not be saved. Please try again later."
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Image)) == 0
    assert bucket_keys(s3_bucket) == []

    [message] = wait_for_mail(app_env)
    assert message["Subject"] == "Your generation failed: a lighthouse at dusk"
    assert "The finished images could not be saved." in body(message)
