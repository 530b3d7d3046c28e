"""Keep the memory a CPU worker frees for its next step, instead of giving it back to the kernel after each use.

glibc's malloc serves large blocks (above its mmap threshold, 32 MiB at most) with fresh pages from ``mmap``
and unmaps them on ``free``. A diffusion step allocates such blocks every time: oneDNN's reordered copy of
each large convolution weight, the VAE decoder's full-size activations. The kernel then faults in and zeroes
every page again. Measured on an SD 1.5-size UNet step at 256×256 with guidance, one thread: 460,000 page faults
and 0.9 s of system time per fp32 step (a sixth of the step), 0.15 s per bf16 step; the VAE decode at 256×256,
0.9 s of its 7 s. With ``mmap`` off for malloc and no trimming of the heap, freed blocks stay in the process
and the next step reuses them: no faults, no zeroing (docs/precision.md, *CPU variants*).

Loading a model is the exception: ``loading()`` gives glibc its defaults back for the load. Kept, the fp32 buffers
a bf16 load reads and frees tensor by tensor stayed resident as holes between the converted weights, and the bf16
worker's peak memory rose to 0.98 of fp32's (from 0.63).

Where the C library is not glibc (musl, macOS) nothing is changed.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import platform

# mallopt parameters, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
DEFAULT_MMAP_MAX = 65536  # glibc's defaults, for loading()
DEFAULT_TRIM = 128 * 1024
KEEP_TOP = 2**31 - 1  # bytes of free heap top kept before trimming: the most mallopt's int takes (2 GiB)

_KEPT = False


def _glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc, else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory in this process (no mmap, no trimming); True where it did.

    Call it once, early in a worker, before the model loads. Other C libraries: nothing changes, False.
    """
    global _KEPT
    libc = _glibc()
    if libc is None:
        return False
    # mallopt returns 1 on success; mmap_max first, so that no block allocated from here on is unmapped on free
    _KEPT = bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_TOP))
    return _KEPT


@contextlib.contextmanager
def loading():
    """While a model loads, glibc's defaults (large blocks mapped and unmapped); after it, the free heap handed back
    to the system and freed memory kept again. Nothing changes where keep_freed_memory was not called."""
    global _KEPT
    libc = _glibc() if _KEPT else None
    if libc is None:
        yield
        return
    libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
    libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM)
    _KEPT = False
    try:
        yield
    finally:
        libc.malloc_trim(0)  # the heap's free pages (the previous steps' kept blocks) go back before steps resume
        keep_freed_memory()


def keeping() -> bool:
    """Whether keep_freed_memory took effect in this process."""
    return _KEPT
