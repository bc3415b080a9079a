"""The state of a training run: what a checkpoint saves and a resume restores, in one object the loop advances."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from . import checkpoint as ckpt
from .monitor import GANHealthMonitor
from .recipes import Recipe


@dataclass
class TrainState:
    """Counters, the model with its recipe (optimizers, schedulers, scaler, pools), EMA, monitor and history.

    ``step`` counts finished training steps; ``pos`` is the position inside epoch ``epoch``. The global RNGs are
    part of the state too: a checkpoint captures them and :meth:`restore` puts them back last.
    """

    model: nn.Module
    recipe: Recipe
    monitor: GANHealthMonitor
    total: int
    horizon: int
    steps_per_epoch: int
    ema: nn.Module | None = None
    step: int = 0
    epoch: int = 0
    pos: int = 0
    best: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    last_val: dict[str, float] = field(default_factory=dict)
    is_best: bool = False
    interrupted: str | None = None
    saved_step: int = -1
    checkpoint: Path | None = None

    @property
    def epoch_done(self) -> bool:
        return self.pos >= self.steps_per_epoch

    @property
    def done(self) -> bool:
        return self.step >= self.total or self.interrupted is not None

    def trainer_state(self, config: dict[str, Any]) -> dict[str, Any]:
        """The JSON half of a checkpoint (RNG states and the step are added by :func:`checkpoint.save_checkpoint`)."""
        return {"epoch": self.epoch, "pos": self.pos, "horizon": self.horizon, "best": self.best,
                "schedulers": self.recipe.scheduler_state(), "scaler": self.recipe.scaler.state_dict(),
                "monitor": self.monitor.state_dict(), "config": config}

    def save(self, run_dir: Path, config: dict[str, Any], keep_last: int, is_best: bool = False) -> Path:
        self.recipe.before_save(self.ema)
        self.checkpoint = ckpt.save_checkpoint(
            run_dir, self.step, model=self.model, optimizers=self.recipe.optimizers,
            trainer_state=self.trainer_state(config), tensors=self.recipe.state_tensors(), ema=self.ema,
            keep_last=keep_last, is_best=is_best)
        self.saved_step = self.step
        return self.checkpoint

    def restore(self, folder: Path, metrics_path: Path) -> None:
        """Load a checkpoint folder into this state (the recipe's optimizers and schedulers are built already)."""
        data = ckpt.load_checkpoint(folder)
        state = data["state"]
        self.model.load_state_dict(data["model"])
        ckpt.restore_optimizers(self.recipe.optimizers, data["optim"], state["optimizers"])
        self.recipe.load_scheduler_state(state.get("schedulers", {}))
        if state.get("scaler"):
            self.recipe.scaler.load_state_dict(state["scaler"])
        self.recipe.load_state_tensors(data["tensors"])
        if self.ema is not None and data["ema"] is not None:
            self.ema.module.load_state_dict(data["ema"])
            self.ema.n_averaged.fill_(int(state.get("ema_n_averaged", 0)))
        self.monitor.load_state_dict(state["monitor"])
        self.step, self.epoch, self.pos = int(state["step"]), int(state["epoch"]), int(state["pos"])
        self.best, self.saved_step, self.checkpoint = state.get("best"), int(state["step"]), folder
        # rows past the checkpoint belong to steps that will be run again
        self.history = [row for row in read_metrics(metrics_path) if row["step"] <= self.step]
        ckpt.restore_rng(data["tensors"], state["rng"])


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl; a line cut short by a killed process is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "step" in row:
            rows.append(row)
    return rows
