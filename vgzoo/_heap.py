"""Keep the memory a CPU inference run frees for its next forward pass, and give it back when the run ends.

glibc's malloc hands a block above its mmap threshold back to the kernel when it is freed, and trims the top of
the heap once enough is free there. A network's activations are such blocks: each forward pass frees them and the
next one maps the same sizes again, and the kernel zeroes and faults them in page by page. Within a run
(:func:`kept_freed_memory`, entered by :class:`vgzoo.inference.GuardedRunner` for a CPU model) the mmap threshold
is glibc's largest and trimming is off, so the next pass reuses the memory; on leaving, trimming is back at the
level glibc's own dynamic threshold sets after freeing its largest mapping, and ``malloc_trim`` returns what the
run freed. Elsewhere (another C library, another OS) nothing changes.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ._libc import c_library

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
#: glibc's ``DEFAULT_MMAP_THRESHOLD_MAX``: the highest mmap threshold mallopt takes, and the ceiling its dynamic
#: threshold rises to. Blocks above it are mapped and unmapped whatever is set.
MMAP_THRESHOLD_MAX = 4 * 1024 * 1024 * ctypes.sizeof(ctypes.c_long)
#: The trim threshold within a run: as high as mallopt's int takes (trimming off).
RUN_TRIM_THRESHOLD = 2**31 - 1
#: The trim threshold after a run: what glibc's dynamic threshold sets once a block of the largest mmapped size is
#: freed (twice the mmap threshold), so a process leaves the run as glibc alone could have left it.
AFTER_RUN_TRIM_THRESHOLD = 2 * MMAP_THRESHOLD_MAX

_lock = threading.Lock()
_runs = 0  # runs open in this process (nested or in several threads): the last to leave restores


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc (``mallopt`` with these parameters), else None."""
    libc = c_library()
    try:
        libc.gnu_get_libc_version  # noqa: B018 - present in glibc only
        libc.mallopt, libc.malloc_trim  # noqa: B018
    except AttributeError:  # not glibc, or no C library at all (None)
        return None
    return libc


@contextmanager
def kept_freed_memory() -> Iterator[bool]:
    """Within the ``with``, glibc keeps freed memory in the process; yields whether it does (False elsewhere)."""
    global _runs
    libc = _glibc()
    if libc is None:
        yield False
        return
    with _lock:
        _runs += 1
        if _runs == 1:
            libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)
            libc.mallopt(M_TRIM_THRESHOLD, RUN_TRIM_THRESHOLD)
    try:
        yield True
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0:
                libc.mallopt(M_TRIM_THRESHOLD, AFTER_RUN_TRIM_THRESHOLD)
                libc.malloc_trim(0)
