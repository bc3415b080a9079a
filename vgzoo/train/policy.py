"""The run policy of a training run: CPU threads, DataLoader workers, log read-back cadence, determinism.

Each ``"auto"`` option of the trainer resolves here, from the device, the dataset and the machine, so the rules sit
in one place. The thread count the load allows (:func:`threads_for_load`) is one rule with two readings: the
trainer's ``-o threads=auto`` takes the cores free now, the benchmarks' ``--threads auto`` (vgzoo.bench.timing) one
thread on a busy machine.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
from torch.utils.data import Dataset

from .._runtime import usable_cores
from . import distributed as ddp

__all__ = ["deterministic_mode", "load_average", "resolve_log_every", "resolve_threads", "resolve_workers",
           "threads_for_load", "usable_cores"]


def load_average() -> float:
    """The 1-minute load average (0.0 where the platform has none): how busy the machine is right now."""
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):  # not on every platform
        return 0.0


def threads_for_load(cores: int, rule: str = "free", load: float | None = None) -> int | None:
    """The intra-op threads the machine's load (``load``, default :func:`load_average`) leaves on ``cores`` cores.

    ``rule="free"`` (training's ``-o threads=auto``): the cores not busy now (cores minus the 1-minute load
    average), at least one. ``rule="one_when_busy"`` (the benchmarks' ``--threads auto``): one thread when the load
    is above half the cores, else None (torch's default, all of them): a timing wants either the whole machine or
    the steadiest single thread, not a count that drifts with the load between repeats.
    """
    load = load_average() if load is None else load
    if rule == "free":
        return max(1, int(cores - load))
    if rule == "one_when_busy":
        return 1 if load > 0.5 * cores else None
    raise ValueError(f"threads_for_load: rule {rule!r}; expected 'free' or 'one_when_busy'.")


def resolve_threads(value: int | str | None, device: torch.device,
                    info: ddp.DistInfo) -> tuple[int | None, str]:
    """The intra-op thread count of a CPU run (option ``threads``) and why; None leaves torch's setting alone.

    ``"cores"`` (the default) is the cores this process may use, capped at torch's own count: fixed for a
    machine, so a seeded run gives the same numbers whatever else is running (the count is saved with the run
    and reused on resume). ``"auto"``, on request only, caps it at the cores free right now (cores minus the
    1-minute load average): faster on a busy machine, but the count, and so the last bits of the results,
    then depend on the load. More busy threads than cores is ruinous for the small batches of these models:
    PyTorch's OpenMP workers wait for each other at every operator (benchmarks/RESULTS.md, "train").
    Distributed runs keep torchrun's setting (OMP_NUM_THREADS=1 per process).

    Raises:
        ValueError: ``value`` is neither ``"cores"``, ``"auto"``, ``None`` nor a positive integer.
    """
    if value is None or device.type != "cpu" or info.enabled:
        return None, ""
    n = torch.get_num_threads()
    if value == "cores":
        return min(n, usable_cores()), f"the {usable_cores()} core(s) this process may use"
    if value == "auto":
        load = load_average()
        threads = min(n, threads_for_load(usable_cores(), "free", load))
        return threads, f"load average {load:.1f} on {usable_cores()} cores (-o threads=auto)"
    try:
        threads = int(value)
    except (TypeError, ValueError):
        threads = 0
    if threads < 1 or str(threads) != str(value).strip():
        raise ValueError(f"option threads={value!r}: expected 'cores', 'auto' or a positive integer "
                         "(e.g. -o threads=1).")
    return threads, ""


def resolve_workers(value: int | str, device: torch.device, dataset: Dataset) -> int:
    """DataLoader worker processes of a run (option ``num_workers``).

    ``"auto"`` (the default): none on the CPU, where workers would take cores from the step's own threads, nor for
    a dataset held in memory (``in_memory = True``, as ``builtin:digits``: there is nothing to load); otherwise
    (a GPU computes while workers decode images) up to 8, the cores of this process shared with the other
    processes torchrun started on the node.

    Raises:
        ValueError: ``value`` is neither ``"auto"`` nor a whole number >= 0.
    """
    if value != "auto":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"option num_workers={value!r}: expected 'auto' or a whole number >= 0 (e.g. -o "
                             "num_workers=4).")
        return value
    if device.type == "cpu" or getattr(dataset, "in_memory", False):
        return 0
    per_node = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(8, usable_cores() // per_node))


def resolve_log_every(value: int | str, device: torch.device) -> int:
    """Steps between read-backs of the training logs (option ``log_every``).

    A step's losses and gradient norms stay on the device; reading them back makes the host wait for the GPU, so
    ``"auto"`` reads them every 25 steps on an accelerator (one copy for all of them) and every step on the CPU,
    where reading costs nothing. Checkpoints, epoch ends and the end of the run read them first, so no checkpoint
    is written past a NaN and metrics.jsonl always holds every row up to the newest checkpoint.

    Raises:
        ValueError: ``value`` is neither ``"auto"`` nor a whole number >= 1.
    """
    if value == "auto":
        return 1 if device.type == "cpu" else 25
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"option log_every={value!r}: expected 'auto' or a whole number >= 1 (e.g. -o log_every=50).")
    return value


@contextlib.contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    """torch's deterministic algorithms (and cuDNN's) for the run, restored afterwards.

    On the CPU vgzoo's runs are bitwise reproducible without it; on CUDA, atomics-based kernels (scatter-add,
    some convolution backward passes) vary from run to run, so exact resume there needs this mode. cuBLAS also
    needs ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` in the environment before CUDA starts (set here if unset, which is
    in time only when no CUDA work ran yet in the process).
    """
    if not enabled:
        yield
        return
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]
