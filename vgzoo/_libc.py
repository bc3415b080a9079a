"""The process's C library through ctypes, loaded in one place: the calls Python's ``os`` module lacks (glibc's
malloc settings for :mod:`vgzoo._heap`, ``syncfs`` for :mod:`vgzoo._atomic`)."""

from __future__ import annotations

import ctypes
import functools


@functools.cache
def c_library() -> ctypes.CDLL | None:
    """The C library linked into this process, keeping ``errno`` for ``ctypes.get_errno``; None where no library
    loads by the name None (Windows)."""
    try:
        return ctypes.CDLL(None, use_errno=True)
    except (OSError, TypeError):
        return None
