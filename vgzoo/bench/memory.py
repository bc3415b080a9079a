"""Peak memory of one call, and where its time goes by operator class.

CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus what was allocated before.
CPU: torch keeps no allocator statistics for the CPU and the process RSS only ever rises, so the peak comes from the
PyTorch profiler's memory events (``profile_memory=True``): every allocation and free the call makes, in order; the
peak is the highest running sum. Both report the same thing: the peak of memory allocated *during* the call above
what was live before it (activations, workspaces, outputs; not the weights or the input).

The same profiled CPU pass also splits the call's operator time into attention (fused SDPA kernels), linear
(``linear``/``matmul``/``mm``-family) and convolution, which gives a measured attention time share beside the
analytic FLOP share.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["CPU_MEMORY_METHOD", "MemoryProfile", "profile_call"]

CPU_MEMORY_METHOD = "torch.profiler memory events (profile_memory=True): peak of the running allocation sum"
CUDA_MEMORY_METHOD = "torch.cuda.max_memory_allocated minus memory_allocated before the call"


@dataclass
class MemoryProfile:
    """Peak memory of a call and its operator-time split (CPU time on CPU, kernel time on CUDA).

    Attributes:
        peak_bytes: Peak allocated during the call, above what was live before it.
        method: How ``peak_bytes`` was measured.
        op_time_s: Seconds of operator time by class: ``attention``, ``linear``, ``conv``, ``total``.
    """

    peak_bytes: int
    method: str
    op_time_s: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def _quiet_stderr():
    """Silence kineto's C++ start/stop lines on fd 2 while the profiler runs."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # pytest capture, CliRunner, notebooks
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _category(name: str) -> str | None:
    if "scaled_dot_product" in name:
        return "attention"
    if name in ("aten::linear", "aten::addmm", "aten::mm", "aten::matmul", "aten::bmm", "aten::baddbmm"):
        return "linear"
    if name in ("aten::conv2d", "aten::convolution", "aten::_convolution", "aten::conv_transpose2d"):
        return "conv"
    return None


def _device_time(ev) -> float:
    for attr in ("device_time_total", "cuda_time_total"):  # the name changed in torch 2.4
        if hasattr(ev, attr):
            return float(getattr(ev, attr))
    return 0.0  # pragma: no cover


def _op_times(events, device: bool = False) -> dict[str, float]:
    """Operator time by class: CPU time of the outermost matching op on CPU; on CUDA the kernel time the op
    launched (``device_time_total``), since its CPU time is only the launch."""
    totals = {"attention": 0.0, "linear": 0.0, "conv": 0.0, "total": 0.0}
    for ev in events:
        if ev.name == "[memory]":
            continue
        if device and ev.device_type != torch.autograd.DeviceType.CPU:
            continue  # a kernel's own event: its time is already in the device time of the op that launched it
        spent = _device_time(ev) if device else ev.cpu_time_total
        parent = ev.cpu_parent
        if parent is None:
            totals["total"] += spent
        cat = _category(ev.name)
        if cat is None:
            continue
        covered = False
        while parent is not None:
            if _category(parent.name) is not None:
                covered = True
                break
            parent = parent.cpu_parent
        if not covered:
            totals[cat] += spent
    return {k: v * 1e-6 for k, v in totals.items()}


def profile_call(fn: Callable[[], Any], device: str | torch.device = "cpu") -> MemoryProfile:
    """Run ``fn()`` once and measure its peak memory and its operator-time split.

    Args:
        fn: Zero-argument callable.
        device: The device ``fn`` computes on.

    Returns:
        A :class:`MemoryProfile`.
    """
    device = torch.device(device)
    from torch.profiler import ProfilerActivity, profile

    if device.type == "cuda":
        # The allocator's peak and the kernels' times come from the same pass; profiling adds no allocations.
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize(device)
        peak = int(torch.cuda.max_memory_allocated(device) - base)
        return MemoryProfile(peak, CUDA_MEMORY_METHOD, _op_times(prof.events(), device=True))

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    running = peak = 0
    mem = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    for ev in sorted(mem, key=lambda e: e.start_ns()):
        if ev.device_type() != torch.autograd.DeviceType.CPU:
            continue
        running += ev.nbytes()
        peak = max(peak, running)
    return MemoryProfile(int(peak), CPU_MEMORY_METHOD, _op_times(prof.events()))
