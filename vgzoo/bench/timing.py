"""Wall-clock timing with warm-up, device synchronisation, medians and interquartile ranges.

The measurement discipline of timm's benchmark.py and of "Scientific Benchmarking of Parallel Computing Systems"
(Hoefler & Belli, 2015): warm up, synchronise the device around each call, report the median and IQR rather than a
mean that a noisy neighbour can drag.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..train.policy import load_average, threads_for_load

__all__ = ["Timing", "load_note", "resolve_threads", "synchronize", "threads", "time_fn"]


def resolve_threads(spec: int | str | None) -> int | None:
    """``"auto"``: one thread when the machine is already busy (1-minute load average above half its logical
    cores), else ``None`` (torch's default, all cores); an int is taken as is; ``None`` stays ``None``.

    The load rule is the trainer's (:func:`vgzoo.train.policy.threads_for_load`), read for timings: the trainer's
    ``auto`` takes the cores free now, a benchmark either all of them or one steady thread.
    """
    if spec != "auto":
        return None if spec is None else int(spec)
    return threads_for_load(os.cpu_count() or 1, "one_when_busy")


@contextlib.contextmanager
def threads(n: int | str | None):
    """Run the block with ``torch.set_num_threads(n)`` (``None``: leave torch's setting), restoring it after.

    On a shared machine, intra-op parallelism suffers badly from contention (every parallel region waits for all its
    threads to be scheduled); one thread per process gives far steadier numbers there. ``"auto"``: see
    :func:`resolve_threads`.
    """
    n = resolve_threads(n)
    if n is None:
        yield
        return
    if n < 1:
        raise ValueError(f"threads={n}; expected a positive integer or None (torch's default)")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_note() -> str | None:
    """A warning when the machine is busier than its cores (timings then measure contention), else ``None``."""
    load = load_average()
    cores = os.cpu_count() or 1
    if load <= cores:
        return None
    return (f"load average {load:.1f} on {cores} cores at the start: other processes compete for the CPU, timings "
            f"are inflated and noisy (--threads auto then uses one thread; a quiet machine gives cleaner numbers; "
            f"min_s "
            f"is the least affected)")


def synchronize(device: str | torch.device | None) -> None:
    """Wait for queued work on ``device`` (a no-op on CPU)."""
    if device is None:
        return
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":  # pragma: no cover - no MPS here
        torch.mps.synchronize()


@dataclass
class Timing:
    """Repeated timings of one callable, in seconds."""

    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median seconds per call."""
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def min(self) -> float:
        """Fastest call in seconds: on a shared machine, the estimate least inflated by other processes."""
        return min(self.times) if self.times else float("nan")

    @property
    def iqr(self) -> float:
        """Interquartile range (Q3 - Q1) in seconds; 0 for a single repeat."""
        if len(self.times) < 2:
            return 0.0
        q = statistics.quantiles(self.times, n=4, method="inclusive")
        return q[2] - q[0]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"median_s": self.median, "iqr_s": self.iqr, "min_s": self.min, "repeats": len(self.times)}


def time_fn(fn: Callable[[], Any], *, repeats: int = 5, warmup: int = 1, device: str | torch.device | None = None,
            budget_s: float | None = None, min_repeats: int = 3) -> Timing:
    """Time ``fn()`` ``repeats`` times after ``warmup`` untimed calls.

    Args:
        fn: Zero-argument callable.
        repeats: Most timed calls.
        warmup: Untimed calls first (allocator, caches, lazy init, cudnn autotune).
        device: Synchronised before and after every timed call.
        budget_s: Stop early once this many seconds have been spent timing, after at least ``min_repeats`` calls.
        min_repeats: Lower bound on timed calls when ``budget_s`` cuts the run short.

    Returns:
        A :class:`Timing`.
    """
    for _ in range(max(0, warmup)):
        fn()
    synchronize(device)
    timing = Timing()
    spent = 0.0
    for i in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        synchronize(device)
        elapsed = time.perf_counter() - start
        timing.times.append(elapsed)
        spent += elapsed
        if budget_s is not None and i + 1 >= min_repeats and spent >= budget_s:
            break
    return timing
