"""What a callback sees of a training run: :class:`RunView`, read-only.

The engine builds a run (device, model, data, recipe) and then hands each callback hook this view with the
:class:`~vgzoo.train.state.TrainState` (``on_step(run, st)``, ``on_log(run, st, row)``, ...). The view holds what a
callback may read (the typed run options, the run's saved config, paths, device, datasets, the fixed batches) and
the few things it may do (log a line, read the pending rows back, record a row); setting an attribute on it raises.
The engine and the callbacks both import this module, and neither imports the other for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import Dataset

from .distributed import DistInfo
from .options import RunOptions

__all__ = ["RowLog", "RunView"]


class RowLog(Protocol):
    """Where metrics rows go (the built-in :class:`~vgzoo.train.callbacks.MetricsLog`)."""

    def record(self, st: Any, row: dict[str, Any]) -> None: ...
    def sync(self) -> None: ...


class RunView:
    """A read-only view of one run for callbacks.

    Attributes:
        options: the run's :class:`~vgzoo.train.options.RunOptions` as settled (device, precision, learning rate and
            batch size as they ran); ``options.engine`` holds the typed engine options (``save_every``, ...).
        config: what a checkpoint records of the run (``options.to_config()`` with ``total_steps``,
            ``steps_per_epoch`` and ``world_size``), a read-only mapping.
        model: the model being trained (the unwrapped module).
        run_dir: the run folder; ``metrics_path`` its ``metrics.jsonl``.
        info: the process's place in a distributed run (``info.is_main`` on rank 0).
        device: where the run computes.
        progress: whether a progress bar is wanted.
        val_ds: the validation dataset, or None; ``batch_size`` the per-process batch.
        fixed, real: prepared batches for pictures and the mode-collapse check (``real`` may be None).
        metrics: the metrics log (``metrics.record(st, row)`` adds a row, ``metrics.sync()`` flushes it to disk).
    """

    __slots__ = ("options", "config", "model", "run_dir", "metrics_path", "info", "device", "progress", "val_ds",
                 "batch_size", "fixed", "real", "metrics", "_log", "_flush")

    def __init__(self, *, options: RunOptions, config: Mapping[str, Any], model: nn.Module, run_dir: Path,
                 info: DistInfo, device: torch.device, progress: bool, val_ds: Dataset | None, batch_size: int,
                 fixed: dict[str, Any], real: dict[str, Any] | None, metrics: RowLog,
                 log: Callable[[str], None], flush_logs: Callable[[Any], None]) -> None:
        values = dict(options=options, config=MappingProxyType(dict(config)), model=model, run_dir=run_dir,
                      metrics_path=run_dir / "metrics.jsonl", info=info, device=device, progress=progress,
                      val_ds=val_ds, batch_size=batch_size, fixed=fixed, real=real, metrics=metrics, _log=log,
                      _flush=flush_logs)
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def log(self, msg: str) -> None:
        """A line for the person running it (rank 0 only; ``fit(log=...)`` or above the progress bar)."""
        self._log(msg)

    def flush_logs(self, st: Any) -> None:
        """Read the pending steps' logs back from the device now; each row goes to every ``on_log`` first."""
        self._flush(st)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(
            f"cannot set {name!r} on the run: callbacks get a read-only view of it (vgzoo.train.view.RunView). Keep "
            "a callback's own state on the callback itself; the loop's state is the TrainState (st) it is handed.")

    def __delattr__(self, name: str) -> None:
        self.__setattr__(name, None)

    def __repr__(self) -> str:
        return f"RunView({str(self.run_dir)!r}, model={self.options.model!r}, device={str(self.device)!r})"
