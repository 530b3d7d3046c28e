"""Upscaling with the bundled network (easel-compact-x4) through the real worker; a pickled entry is refused."""
from __future__ import annotations

import io
from pathlib import Path

from PIL import Image as PILImage

from tests.jobs.test_derived import generation_from
from tests.jobs.test_generate import fetch
from tests.support import TEST_CATALOG, post, submit_ok, wait_status


def compact_catalog(tmp_path: Path) -> Path:
    """The test catalog (with the bundled easel-compact-x4) plus a pickled entry that must never be opened."""
    (tmp_path / "pickled.pth").write_bytes(b"not loaded")
    text = TEST_CATALOG.read_text().replace('path = "../', f'path = "{TEST_CATALOG.parent.parent}/')
    text += f'\n[upscalers.pickled]\nlabel = "Pickled"\npath = "{tmp_path}/pickled.pth"\nscale = 4\n'
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(text)
    return catalog


def test_x4_and_x2_with_a_network_through_the_worker(app, signed_in, workers, tmp_path):
    catalog = compact_catalog(tmp_path)
    app.config.update(EASEL_CATALOG=str(catalog), MAX_ACTIVE_PER_USER=3)
    first = submit_ok(signed_in, steps=4)
    workers.start(extra_env={"EASEL_CATALOG": str(catalog)})
    source = wait_status(signed_in, first, {"succeeded", "failed"}, timeout=240)
    assert source["status"] == "succeeded", source
    parent = source["images"][0]["id"]
    page = signed_in.get(f"/images/{parent}").get_data(as_text=True)
    assert "Easel Compact x4" in page and "Pickled (unavailable:" in page and "CVE-2024-12029" in page
    refused = post(signed_in, f"/images/{parent}/upscale", token_page="/", factor="4", upscaler="pickled")
    assert refused.headers["Location"] == f"/images/{parent}"

    x4 = generation_from(post(signed_in, f"/images/{parent}/upscale", token_page="/", factor="4",
                              upscaler="easel-compact-x4"))
    x2 = generation_from(post(signed_in, f"/images/{parent}/upscale", token_page="/", factor="2",
                              upscaler="easel-compact-x4"))
    for generation_id, side in ((x4, 256), (x2, 128)):
        state = wait_status(signed_in, generation_id, {"succeeded", "failed"}, timeout=240)
        assert state["status"] == "succeeded", state
        assert (state["width"], state["height"]) == (side, side)
        png = PILImage.open(io.BytesIO(fetch(signed_in, state["images"][0]["url"]).data))
        assert png.size == (side, side)
