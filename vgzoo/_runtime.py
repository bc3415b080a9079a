"""Where a command runs and what it loads: device checks, the cores it may use and training-run folders.

Shared by ``vgzoo translate``, ``vgzoo generate`` and the trainer, so a device that does not exist and a
run folder given where a model folder is expected get the same clear answer everywhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .errors import DeviceError, WeightsNotFoundError

RUN_FINAL = "final"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), which do not change with the machine's load."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def auto_device() -> str:
    """What ``--device auto`` means: ``$VGZOO_DEVICE`` when set, else CUDA when a GPU is visible, else the CPU."""
    return os.environ.get("VGZOO_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")


def check_device(device: str | torch.device | None, default: str = "cpu") -> torch.device:
    """``device`` as a ``torch.device`` that exists on this machine (``None`` gives ``default``, ``"auto"``
    :func:`auto_device`).

    torch accepts ``torch.device("cuda")`` on a machine without CUDA and fails later, deep inside ``.to()``
    with "Torch not compiled with CUDA enabled"; this fails first, saying what to pass instead.

    Raises:
        DeviceError: an unknown device string, CUDA/MPS asked for where there is none, or a CUDA index
            beyond the visible devices.
    """
    if device is None:
        device = default
    if device == "auto":
        device = auto_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"--device {device!r} is not a device torch knows ({exc}); expected cpu, cuda, "
                          "cuda:N or mps.") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise DeviceError(f"--device {device}: CUDA is not available on this machine ({why}); use --device cpu.")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise DeviceError(f"--device {device}: this machine has {count} CUDA device(s) (cuda:0 to "
                              f"cuda:{count - 1}); pick one of them or use --device cpu.")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError(f"--device {device}: Apple's MPS is not available on this machine; use --device cpu.")
    return dev


def run_model_folder(path: str | os.PathLike) -> Path | None:
    """The model folder to load when ``path`` is a ``vgzoo train`` run directory (its ``final/``), else ``None``.

    A run directory holds the run's ``config.json`` (no ``architecture``, so it is not a saved model) and
    ``checkpoints/``; the trained model is in ``final/`` once the run has finished.

    Raises:
        WeightsNotFoundError: a run directory without a finished ``final/`` (the run stopped early).
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return None
    config = folder / "config.json"
    try:
        cfg = json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}
    except (OSError, ValueError):
        cfg = {}
    if not isinstance(cfg, dict) or "architecture" in cfg:
        return None  # a saved model (or something else): not a run
    if "recipe" not in cfg and not (folder / "checkpoints").is_dir():
        return None
    final = folder / RUN_FINAL
    if (final / "config.json").is_file():
        return final
    model = cfg.get("model", "MODEL")
    raise WeightsNotFoundError(
        f"{str(folder)!r} is a training run directory without {RUN_FINAL}/ (the run has not finished). Finish it "
        f"with `vgzoo train {model} --resume --out {folder}`, or point at a folder written by vgzoo.save_pretrained."
    )
