"""What the training loop does besides training: one callback per concern, called in order at fixed points.

Hooks (each gets a read-only view of the run, :class:`~vgzoo.train.view.RunView`, and the
:class:`~vgzoo.train.state.TrainState`): ``on_start`` before the first
step, ``on_step`` after every step, ``on_log`` with the metrics row of each step, in order, once its logs are read back
from the device (every ``log_every`` steps, and always before a checkpoint, an epoch's end and the run's end),
``on_epoch_end`` after an epoch's last step, ``on_train_end`` when the loop ends normally or on a signal, ``on_close``
always (also on errors), ``on_finish`` after a complete run (every rank has finished). Side work that could draw
random numbers (evaluation, pictures) runs with the global RNGs preserved, so a resumed run sees the very numbers an
uninterrupted one sees.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from .._hub import atomic_write
from ..errors import TrainingError
from . import checkpoint as ckpt
from . import plots
from .state import TrainState
from .view import RunView

PLOT_INTERVAL_S = 20.0
PICTURE_INTERVAL_S = 5.0
SHOWN_IN_BAR = ("loss", "D_loss", "G_loss", "G_L1_pretrain", "top1")
ROW_KEYS = ("step", "epoch", "split", "lr")  # what a metrics row holds besides the logged values


@contextlib.contextmanager
def rng_preserved(device: torch.device) -> Iterator[None]:
    """Run side work (evaluation, pictures) without moving any global RNG."""
    py, npy = random.getstate(), np.random.get_state()
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield
    random.setstate(py)
    np.random.set_state(npy)


class Callback:
    """Base: every hook does nothing."""

    def on_start(self, run: RunView, st: TrainState) -> None: ...
    def on_step(self, run: RunView, st: TrainState) -> None: ...
    def on_log(self, run: RunView, st: TrainState, row: dict[str, Any]) -> None: ...
    def on_epoch_end(self, run: RunView, st: TrainState) -> None: ...
    def on_train_end(self, run: RunView, st: TrainState) -> None: ...
    def on_close(self, run: RunView, st: TrainState) -> None: ...
    def on_finish(self, run: RunView, st: TrainState) -> None: ...


class HealthCheck(Callback):
    """Feed each step's logs to the GAN health monitor; a fatal finding (NaN/Inf) stops the run."""

    def on_log(self, run, st, row):
        step = row["step"]
        findings = st.monitor.update(step, {k: v for k, v in row.items() if k not in ROW_KEYS})
        if any(f.severity == "fatal" for f in findings):
            st.monitor.write()
            good = ckpt.latest_checkpoint(run.run_dir)
            raise TrainingError(
                f"training diverged at step {step}: {findings[0].message} The last good checkpoint is "
                f"{good if good else '(none yet)'}; resume from it with --resume and a lower --lr (or options "
                f"clip_grad=1.0). Details in {run.run_dir / 'health.json'}."
            )

    def on_close(self, run, st):
        if run.info.is_main:
            st.monitor.write()


class MetricsLog(Callback):
    """``metrics.jsonl`` (and TensorBoard when installed): a row per step, a row per validation.

    Rows are buffered; :meth:`sync` flushes and fsyncs them, and runs before every checkpoint, so after a SIGKILL the
    file holds every row up to the newest checkpoint.
    """

    def __init__(self) -> None:
        self.file = None
        self.writer = None

    def on_start(self, run, st):
        if not run.info.is_main:
            return
        text = "".join(json.dumps(row) + "\n" for row in st.history)  # drops rows past a resumed step
        atomic_write(run.metrics_path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        self.file = open(run.metrics_path, "a", encoding="utf-8")
        self.writer = _tensorboard(run.run_dir)

    def record(self, st: TrainState, row: dict[str, Any]) -> None:
        st.history.append(row)
        if self.file is not None:
            self.file.write(json.dumps(row) + "\n")
        if self.writer is not None:
            for k, v in row.items():
                if k not in ROW_KEYS:
                    self.writer.add_scalar(f"{row['split']}/{k}", v, row["step"])

    def sync(self) -> None:
        if self.file is not None:
            self.file.flush()
            os.fsync(self.file.fileno())

    def on_log(self, run, st, row):
        self.record(st, row)

    def on_close(self, run, st):
        if self.file is not None:
            self.sync()
            self.file.close()
        if self.writer is not None:
            self.writer.close()


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(run_dir / "tensorboard"))
    except Exception:  # not installed, or no writable folder: TensorBoard is optional
        return None


class Progress(Callback):
    """A tqdm bar on rank 0 with the main losses."""

    def __init__(self) -> None:
        self.bar = None

    def on_start(self, run, st):
        if run.info.is_main and run.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=st.total, initial=st.step, desc=f"train {run.options.model}", unit="step",
                            dynamic_ncols=True)

    def on_step(self, run, st):
        if self.bar is not None:
            self.bar.update(1)

    def on_log(self, run, st, row):
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k in SHOWN_IN_BAR}, refresh=False)

    def on_close(self, run, st):
        if self.bar is not None:
            self.bar.close()


class Evaluation(Callback):
    """Validation metrics and the mode-collapse check at epoch ends and at the end of a run; tracks the best."""

    def on_epoch_end(self, run, st):
        val: dict[str, float] = {}
        if run.info.is_main:
            with rng_preserved(run.device):
                val = self.evaluate(run, st)
                div = _in_eval(st.model, lambda: st.recipe.diversity(run.fixed, run.real))
            if div is not None:
                st.monitor.check_diversity(st.step, *div)
                val = {**val, "diversity_ratio": div[0] / div[1] if div[1] > 0 else float("nan")}
            if val:
                run.metrics.record(st, {"step": st.step, "epoch": st.epoch, "split": "val", **val})
                run.log(f"epoch {st.epoch} step {st.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in val.items()))
        st.last_val = val
        self.track_best(st, val)

    def on_train_end(self, run, st):
        if st.saved_step == st.step:
            return
        if st.interrupted is None and run.info.is_main:
            with rng_preserved(run.device):
                val = self.evaluate(run, st)
            if val:  # the end-of-run validation is a row like every other (metrics.jsonl and the curves)
                run.metrics.record(st, {"step": st.step, "epoch": st.epoch, "split": "val", **val})
                st.last_val = val
        self.track_best(st, st.last_val)

    @staticmethod
    def evaluate(run: RunView, st: TrainState) -> dict[str, float]:
        if run.val_ds is None or not len(run.val_ds):
            return {}
        loader = DataLoader(run.val_ds, batch_size=max(run.batch_size, 32), shuffle=False)
        return _in_eval(st.model, lambda: st.recipe.evaluate(loader))

    @staticmethod
    def track_best(st: TrainState, val: dict[str, float]) -> None:
        st.is_best = False
        metric = st.recipe.best_metric
        if metric is None or metric[0] not in val:
            return
        v = float(val[metric[0]])
        if st.best is None or (v > st.best if metric[1] == "max" else v < st.best):
            st.is_best, st.best = True, v


def _in_eval(model: torch.nn.Module, work):
    model.eval()
    try:
        return work()
    finally:
        model.train()


class GeneratorScores(Callback):
    """FID and KID of the generator's samples against real images every ``eval_every`` steps (vgzoo.metrics).

    The real set's features are extracted once, at the start (and cached); each evaluation samples with a fixed
    seed, so successive rows differ only in the weights. Rows go to ``metrics.jsonl`` with ``split`` ``"val"``, so
    the loss-curve plot draws them on their own axes.
    """

    def __init__(self) -> None:
        self.real = None
        self.every = 0

    def on_start(self, run, st):
        self.every = run.options.engine.eval_every
        if not self.every or not run.info.is_main:
            return
        from ..metrics.training import prepare_real_features
        from ..protocols import ConditionalSampler, UnconditionalSampler

        if not isinstance(st.model, (ConditionalSampler, UnconditionalSampler)):
            raise TrainingError(
                f"-o eval_every={self.every}: FID/KID during training scores generators (tasks generation and "
                f"conditional_generation); this is a {run.options.task} model. Use `vgzoo eval` on its outputs."
            )
        data = run.options.engine.eval_data or run.options.data
        if not isinstance(data, str):
            raise TrainingError(f"-o eval_every={self.every}: name the real images with -o eval_data=DATASET_OR_FOLDER "
                                "(the training data is an in-memory dataset).")
        self.real = prepare_real_features(data, run.options.engine.eval_features or "digits", split="val",
                                          device=run.device)

    def on_step(self, run, st):
        if self.real is None or st.step % self.every:
            return
        from ..metrics.training import evaluate_generator

        run.flush_logs(st)  # the train rows before this val row

        with rng_preserved(run.device):
            scores = _in_eval(st.model, lambda: evaluate_generator(st.model, self.real, seed=int(run.options.seed)))
        run.metrics.record(st, {"step": st.step, "epoch": st.epoch, "split": "val", **scores})
        run.log(f"step {st.step}: FID {scores['fid']:.4g}, KID {scores['kid']:.4g}")


class Pictures(Callback):
    """Sample grids and loss curves, drawn at most every few seconds (they are for people, not for the run).

    With epochs of a second or two (builtin:digits) drawing at every epoch would take a visible share of the
    training time, so a grid is drawn at most every PICTURE_INTERVAL_S and the loss curves (matplotlib) at most every
    PLOT_INTERVAL_S or 25 times their drawing time. The first epoch's and the final ones are always drawn.
    """

    def __init__(self) -> None:
        self.last_plot = self.last_pictures = -math.inf
        self.plot_cost = 0.0
        self.plotted: tuple[int, int] | None = None  # (rows, findings) when the curves were last drawn

    def on_epoch_end(self, run, st):
        every = run.options.engine.plot_every or 1
        if not run.info.is_main or st.epoch % every:
            return
        now = time.monotonic()
        if now - self.last_pictures >= PICTURE_INTERVAL_S:
            self.grid(run, st, f"epoch_{st.epoch:04d}")
            self.last_pictures = now
        if now - self.last_plot >= max(PLOT_INTERVAL_S, 25 * self.plot_cost):
            with rng_preserved(run.device):
                self.curves(run, st)
            self.last_plot = time.monotonic()
            self.plot_cost = self.last_plot - now

    def on_close(self, run, st):
        if run.info.is_main and self.plotted != (len(st.history), len(st.monitor.findings)):  # unless unchanged
            self.curves(run, st)

    def curves(self, run: RunView, st: TrainState) -> None:
        plots.plot_loss_curves(st.history, run.run_dir / "loss_curves.png", title=str(run.options.model),
                               seed=int(run.options.seed), findings=st.monitor.findings)
        self.plotted = (len(st.history), len(st.monitor.findings))

    def on_finish(self, run, st):
        if run.info.is_main:
            self.grid(run, st, "final")

    @staticmethod
    def grid(run: RunView, st: TrainState, tag: str) -> None:
        with rng_preserved(run.device):
            try:
                title = plots.run_title(str(run.options.model), st.step, int(run.options.seed), "samples")
                _in_eval(st.model, lambda: st.recipe.save_samples(run.fixed, run.run_dir / "samples" / f"{tag}.png",
                                                                  title))
            except Exception as exc:  # a picture must never stop training
                run.log(f"warning: sample grid {tag} failed: {exc!r}")


class Checkpoints(Callback):
    """Checkpoints every ``save_every`` steps, every ``save_epochs`` epochs (and at a new best) and at the end
    (metrics synced first); final/ folders."""

    def save(self, run: RunView, st: TrainState, is_best: bool = False) -> None:
        run.flush_logs(st)  # the health check sees every step first: no checkpoint is written past a NaN
        if run.info.is_main:
            run.metrics.sync()
            st.save(run.run_dir, dict(run.config), run.options.engine.keep_last, is_best=is_best)
        st.saved_step = st.step

    def on_step(self, run, st):
        every = run.options.engine.save_every
        if every and st.step % every == 0 and not st.epoch_done and st.step < st.total:
            self.save(run, st)

    def on_epoch_end(self, run, st):
        epochs, steps = run.options.engine.save_epochs, run.options.engine.save_every
        if ((epochs and st.epoch % epochs == 0) or st.is_best  # a new best is kept whatever the cadence
                or (steps and st.step % steps == 0)):  # save_every's step, left by on_step to the epoch's end
            self.save(run, st, st.is_best)

    def on_train_end(self, run, st):
        if st.saved_step != st.step:
            self.save(run, st, st.is_best)

    def on_finish(self, run, st):
        if run.info.is_main:
            save_final(run, st)


def save_final(run: RunView, st: TrainState) -> None:
    """``final/`` (and ``final_ema/``): ``local-dir:`` folders of the trained model."""
    from ..protocols import ZooModel
    from ..share.card import save_pretrained

    model = st.model
    if not isinstance(model, ZooModel) or "architecture" not in (getattr(model, "pretrained_cfg", None) or {}):
        return
    try:
        if st.saved_step != st.step:  # the last checkpoint was written from these weights: before_save ran then
            st.recipe.before_save(st.ema)
        save_pretrained(model, run.run_dir / "final")
        if st.ema is not None:
            st.ema.module.pretrained_cfg = model.pretrained_cfg
            save_pretrained(st.ema.module, run.run_dir / "final_ema")
    except Exception as exc:
        run.log(f"warning: could not save the final model folder: {exc!r}")


DEFAULT_CALLBACKS = (HealthCheck, MetricsLog, Progress, Evaluation, GeneratorScores, Pictures, Checkpoints)
