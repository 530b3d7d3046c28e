"""Keeping freed memory in a CPU worker (models/allocator.py): the second step's large blocks cost no page faults.

Each check runs in a fresh Python process, so the test process's own allocator is left as it was.
"""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the setting acts on glibc's malloc only")

# a 64 MiB tensor (above glibc's largest mmap threshold, like an SD 1.5 convolution's reordered fp32 weight)
# made, written and freed again and again: the page faults per step once the heap settled, printed, are what a
# worker pays on every denoising step
SECOND_STEP_FAULTS = """
import resource, sys, torch
STEPS = 6
from models import allocator
import contextlib
if sys.argv[1] != "default":
    assert allocator.keep_freed_memory() and allocator.keeping()
else:
    assert not allocator.keeping()
def step():
    block = torch.empty(64 << 20, dtype=torch.uint8)
    block.fill_(1)
    del block
with allocator.loading() if sys.argv[1] == "loading" else contextlib.nullcontext():
    for _ in range(12):  # the heap settles (small objects made meanwhile stay above the freed block for a while)
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(STEPS):
        step()
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // STEPS
assert allocator.keeping() == (sys.argv[1] != "default")
print(faults)
"""

WORKER_SETTING = """
import sys
from flask import Flask
from jobs.generate import configure_memory
from models import allocator
app = Flask("settings")
app.config.update(EASEL_KEEP_FREED_MEMORY=sys.argv[1] == "on", EASEL_DEVICE=sys.argv[2])
with app.app_context():
    print(configure_memory(), allocator.keeping())
"""


def run(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_freed_memory_is_reused_without_page_faults() -> None:
    given_back = int(run(SECOND_STEP_FAULTS, "default"))
    kept = int(run(SECOND_STEP_FAULTS, "keep"))
    assert given_back >= (64 << 20) // 4096 // 2, given_back  # glibc unmapped the block: every page faulted again
    assert kept <= given_back // 16, (kept, given_back)


def test_a_model_load_gives_freed_memory_back_and_steps_keep_it_again() -> None:
    """A load frees its read buffers as it goes: kept, they would stay resident beside the weights (a bf16 worker's
    peak memory rose to 0.98 of fp32's); during loading() glibc maps and unmaps them as by default."""
    while_loading = int(run(SECOND_STEP_FAULTS, "loading"))  # the script also checks that keeping resumes after
    assert while_loading >= (64 << 20) // 4096 // 2, while_loading


@pytest.mark.parametrize(("setting", "device", "expected"), [
    ("on", "cpu", "True True"),
    ("off", "cpu", "False False"),
])
def test_a_cpu_worker_keeps_freed_memory_unless_told_not_to(setting: str, device: str, expected: str) -> None:
    assert run(WORKER_SETTING, setting, device) == expected
