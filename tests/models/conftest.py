"""Fixtures for the model tests: the bundled pipeline, and tiny random-weight pipelines of each architecture."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def tiny_pipe() -> Iterator[object]:
    """The bundled easel-tiny pipeline, loaded offline on the CPU."""
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from models.loader import get_pipeline

    yield get_pipeline("easel-tiny", device="cpu")
    if old is None:
        os.environ.pop("HF_HUB_OFFLINE", None)
    else:
        os.environ["HF_HUB_OFFLINE"] = old


@pytest.fixture(scope="session")
def tiny_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random-weight diffusers folders of each architecture (sd, sdxl, sd3), built once per session."""
    from tests.support.tiny_pipelines import ARCHITECTURES, save_tiny

    root = tmp_path_factory.mktemp("tiny-pipelines")
    return {kind: save_tiny(kind, root / kind) for kind in ARCHITECTURES}


@pytest.fixture(scope="session")
def tiny_catalog(tiny_folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalog of the tiny folders under explicit kinds (tiny-<kind>) and kind auto (auto-<kind>)."""
    from tests.support.tiny_pipelines import catalog_entry

    root = tmp_path_factory.mktemp("tiny-catalog")
    (root / "pickled.ckpt").write_bytes(b"not loaded")
    tables = [catalog_entry(f"tiny-{kind}", kind, folder) for kind, folder in tiny_folders.items()]
    tables += [catalog_entry(f"auto-{kind}", "auto", folder) for kind, folder in tiny_folders.items()]
    tables.append(catalog_entry("pickled", "sd-single-file", "pickled.ckpt", config=str(tiny_folders["sd"])))
    path = root / "catalog.toml"
    path.write_text("\n".join(tables), encoding="utf-8")
    return path


@pytest.fixture
def fresh_loader() -> Iterator[object]:
    """The loader with no warm pipelines before and after the test (the module read afresh: an empty cache)."""
    import importlib

    from models import loader

    yield importlib.reload(loader)
    importlib.reload(loader)
