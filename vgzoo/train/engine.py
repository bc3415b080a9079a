"""The training engine behind ``vgzoo train`` and :func:`vgzoo.train.fit`.

One loop for every task: the recipe of the model's registered task (see :mod:`vgzoo.train.recipes`)
supplies optimizers, schedulers and the step; the engine supplies data order, logging, pictures, the
GAN health monitor, checkpoints that resume bit for bit, signal handling and DistributedDataParallel.

Exact resume: the data order of an epoch is a function of (seed, epoch) (a DistributedSampler), the
position inside the epoch is checkpointed, and so are every RNG (torch CPU/CUDA, NumPy, Python), the
optimizers, schedulers, scaler, image pools and monitor. Everything done at an epoch's end (evaluation,
sample grids, diversity) draws on its own generators and restores the global RNG states, so a run
stopped and resumed sees the very numbers an uninterrupted run sees.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .._hub import atomic_write_json
from ..data.verify import verify_datasets
from ..errors import VgzooError
from . import checkpoint as ckpt
from . import distributed as ddp
from . import plots
from .monitor import GANHealthMonitor, MonitorConfig
from .recipes import Recipe, recipe_for

logger = logging.getLogger("vgzoo.train")
PLOT_INTERVAL_S = 20.0
PICTURE_INTERVAL_S = 5.0

FIT_KEYS = ("model", "data", "val_data", "out", "task", "epochs", "steps", "batch_size", "lr", "device", "amp",
            "compile", "seed", "model_kwargs", "options")


class TrainingError(VgzooError, RuntimeError):
    """Training stopped on purpose: NaN/Inf losses, a configuration that cannot train, a broken resume."""


@dataclass
class TrainResult:
    """What a finished (or interrupted) run left behind."""

    run_dir: Path
    step: int
    epoch: int
    total_steps: int
    checkpoint: Path | None
    metrics: dict[str, float] = field(default_factory=dict)
    health: str = "healthy"
    interrupted: str | None = None
    model: nn.Module | None = None

    @property
    def finished(self) -> bool:
        return self.interrupted is None and self.step >= self.total_steps


class _Signals:
    """SIGINT/SIGTERM set a flag the loop checks after each step (installed in the main thread only)."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def _rng_preserved(device: torch.device) -> Iterator[None]:
    """Run side work (evaluation, pictures) without moving any global RNG."""
    py, npy = __import__("random").getstate(), np.random.get_state()
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield
    __import__("random").setstate(py)
    np.random.set_state(npy)


class _Batches:
    """The batches of one epoch from position ``start`` on; the order is a function of (seed, epoch)."""

    def __init__(self, dataset: Dataset, batch_size: int, info: ddp.DistInfo, seed: int, num_workers: int) -> None:
        self.dataset, self.batch_size, self.num_workers = dataset, batch_size, num_workers
        self.sampler = DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True,
                                          seed=seed, drop_last=True)
        self.steps_per_epoch = len(self.sampler) // batch_size

    def epoch(self, epoch: int, start: int) -> DataLoader:
        self.sampler.set_epoch(epoch)
        indices = list(self.sampler)
        batches = [indices[i * self.batch_size:(i + 1) * self.batch_size] for i in range(self.steps_per_epoch)]
        # A private generator: creating a loader iterator draws a base seed, which must not move the global RNG
        # (a resumed run creates one more iterator than an uninterrupted one).
        g = torch.Generator().manual_seed(self.sampler.seed * 100003 + epoch)
        return DataLoader(self.dataset, batch_sampler=batches[start:], num_workers=self.num_workers, generator=g)


def _read_config(config: str | os.PathLike | dict | None) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, dict):
        return dict(config)
    path = Path(config)
    if not path.is_file():
        raise TrainingError(f"config file {str(path)!r} does not exist; pass a JSON file with keys of fit().")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TrainingError(f"config file {str(path)!r} is not valid JSON ({exc}).") from exc
    unknown = sorted(set(data) - set(FIT_KEYS))
    if unknown:
        raise TrainingError(f"config file {str(path)!r}: unknown key(s) {', '.join(unknown)}; known: "
                            f"{', '.join(FIT_KEYS)}.")
    return data


def _load_average() -> float:
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):  # not on every platform
        return 0.0


def resolve_threads(value: int | str | None, device: torch.device, info: ddp.DistInfo) -> int | None:
    """The intra-op thread count of a CPU run (option ``threads``), or None to leave torch's setting alone.

    ``"auto"`` (the default) caps torch's count at the cores the machine has free (cores minus the 1-minute load
    average, at least 1). More busy threads than cores is ruinous for the small batches of these models: PyTorch's
    OpenMP workers wait for each other at every operator, and one of them descheduled stalls the rest (measured on
    a loaded 2-core machine: 2 threads ran a cGAN step ~30x slower than 1 thread; see benchmarks/RESULTS.md
    "train"). Distributed runs keep torchrun's setting (OMP_NUM_THREADS=1 per process).

    Raises:
        ValueError: ``value`` is neither ``"auto"``, ``None`` nor a positive integer.
    """
    if value is None or device.type != "cpu":
        return None
    if value == "auto":
        n = torch.get_num_threads()
        if info.enabled or n <= 1:
            return None
        free = (os.cpu_count() or n) - _load_average()
        return max(1, min(n, int(free)))
    try:
        threads = int(value)
    except (TypeError, ValueError):
        threads = 0
    if threads < 1 or str(threads) != str(value).strip():
        raise ValueError(f"option threads={value!r}: expected 'auto' or a positive integer (e.g. -o threads=1).")
    return threads


def _build_data(spec, task: str, split: str, data_kwargs: dict) -> Dataset | None:
    from ..data import create_dataset
    from ..errors import DataError

    try:
        return create_dataset(spec, task, split=split, **data_kwargs)
    except (DataError, FileNotFoundError) as exc:
        if split == "train":
            raise
        logger.info("no %s split for %s (%s): no validation", split, spec, exc)
        return None


def _first_items(dataset: Dataset, n: int) -> dict[str, Any]:
    from torch.utils.data import default_collate

    return default_collate([dataset[i] for i in range(min(n, len(dataset)))])


def _cgan_real_batch(dataset: Dataset, per_class: int = 16) -> dict[str, Any] | None:
    labels = getattr(dataset, "labels", None)
    if labels is None:
        return None
    idx = []
    for c in torch.unique(labels).tolist():
        idx += torch.nonzero(labels == c).flatten()[:per_class].tolist()
    from torch.utils.data import default_collate

    return default_collate([dataset[i] for i in idx])


def fit(
    model: str | nn.Module,
    data: str | os.PathLike | Dataset | None = None,
    out: str | os.PathLike = "runs/train",
    *,
    task: str | None = None,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    resume: bool | str | os.PathLike = False,
    device: str | torch.device | None = None,
    amp: bool | None = None,
    compile: bool | None = None,
    seed: int | None = None,
    config: str | os.PathLike | dict | None = None,
    model_kwargs: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    val_data: Dataset | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a model with its task's recipe, writing everything into ``out`` (the run directory).

    Args:
        model: a registered model name (built with ``model_kwargs``) or a model instance (its ``pretrained_cfg``
            must name the ``task``, or pass ``task=``).
        data: ``"builtin:digits"``, a folder in the task's format (see :func:`vgzoo.data.create_dataset`), or a
            dataset whose items follow the data contract.
        out: the run directory (metrics.jsonl, loss_curves.png, samples/, checkpoints/, health.json, config.json).
        task: the task, when ``model`` is an instance without one in its config.
        epochs: epochs to train (default: the recipe's).
        steps: total steps of the run (overrides ``epochs``); with ``resume`` the run continues up to this total.
        batch_size: per-process batch size (default: the recipe's).
        lr: base learning rate (default: the recipe's).
        resume: continue from the newest checkpoint in ``out`` (or in the given run directory / checkpoint folder).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... (default: CUDA when available).
        amp: mixed precision (fp16 + GradScaler on CUDA, bfloat16 autocast on CPU).
        compile: ``torch.compile`` the model's networks (state-dict keys are unchanged).
        seed: the seed of initialisation, data order and augmentation (default 0).
        config: a JSON file (or dict) with any of these keyword arguments; explicit arguments win.
        model_kwargs: keyword arguments of the model factory.
        options: recipe options (see :mod:`vgzoo.train.recipes`) and engine options: ``save_every`` (steps),
            ``keep_last`` (3), ``ema`` (False), ``ema_decay`` (0.999), ``num_workers`` (0), ``augment`` (dict of
            create_transform overrides), ``data`` (dict of create_dataset kwargs), ``monitor`` (dict of
            :class:`MonitorConfig` fields), ``schedule_steps`` (LR-schedule horizon, default: the run's total),
            ``threads`` (CPU intra-op threads: ``"auto"``, the default, caps them at the free cores, see
            :func:`resolve_threads`; bitwise comparisons between separate runs need the same count).
        val_data: a validation dataset, when ``data`` is a dataset.
        progress: show a tqdm bar.
        log: where messages go (default: ``tqdm.write`` on rank 0).

    Returns:
        A :class:`TrainResult`.

    Raises:
        TrainingError: a loss became NaN/Inf (the last good checkpoint is kept), or the run cannot start.
    """
    explicit = {k: v for k, v in dict(task=task, epochs=epochs, steps=steps, batch_size=batch_size, lr=lr,
                                      device=device, amp=amp, compile=compile, seed=seed).items() if v is not None}
    file_cfg = _read_config(config)
    run_dir = Path(out if out is not None else file_cfg.get("out", "runs/train"))
    saved_cfg: dict[str, Any] = {}
    resume_from: Path | None = None
    if resume:
        where = run_dir if resume is True else Path(resume)
        resume_from = where if (where / ckpt.STATE_JSON).is_file() else ckpt.latest_checkpoint(where)
        if resume_from is None:
            raise TrainingError(
                f"--resume: {str(where)!r} holds no complete checkpoint (expected {ckpt.CHECKPOINTS}/step_<N>/). "
                "Start a fresh run without --resume, or point --out at the run to continue."
            )
        saved = ckpt.read_trainer_state(resume_from).get("config", {})
        saved_cfg = {k: v for k, v in saved.items() if k in FIT_KEYS}
        if "steps" in explicit or "epochs" in explicit:
            saved_cfg.pop("steps", None)
            saved_cfg.pop("epochs", None)
    cfg: dict[str, Any] = {**saved_cfg, **file_cfg, **explicit}
    if model_kwargs is not None:
        cfg["model_kwargs"] = dict(model_kwargs)
    cfg["options"] = {**saved_cfg.get("options", {}), **file_cfg.get("options", {}), **(options or {})}
    if "steps" in explicit:
        cfg.pop("epochs", None)
    cfg.setdefault("seed", 0)
    cfg.setdefault("amp", False)
    cfg.setdefault("compile", False)
    cfg.setdefault("model_kwargs", {})
    cfg["out"] = str(run_dir)
    return _Run(model, data if data is not None else cfg.get("data"), val_data, cfg, resume_from, progress, log).run()


class _Run:
    def __init__(self, model, data, val_data, cfg, resume_from, progress, log) -> None:
        self.cfg, self.resume_from, self.progress = cfg, resume_from, progress
        self.model_arg, self.data_arg, self.val_arg = model, data, val_data
        self.run_dir = Path(cfg["out"])
        self.info = ddp.env_info()
        self._log = log
        self._last_plot = -math.inf
        self._last_pictures = -math.inf
        self._plot_cost = 0.0

    # ------------------------------------------------------------------------------------ messages
    def log(self, msg: str) -> None:
        if not self.info.is_main:
            return
        if self._log is not None:
            self._log(msg)
        else:
            from tqdm.auto import tqdm

            tqdm.write(msg)

    # --------------------------------------------------------------------------------------- setup
    def _build_model(self) -> tuple[nn.Module, str]:
        from .._factory import create

        torch.manual_seed(int(self.cfg["seed"]))
        if isinstance(self.model_arg, str):
            model = create(self.model_arg, **self.cfg["model_kwargs"])
            self.cfg["model"] = self.model_arg
        else:
            model = self.model_arg
            self.cfg["model"] = (getattr(model, "pretrained_cfg", {}) or {}).get("architecture", type(model).__name__)
        task = self.cfg.get("task") or (getattr(model, "pretrained_cfg", {}) or {}).get("task")
        if task is None:
            raise TrainingError(
                f"cannot tell the task of {type(model).__name__}: its pretrained_cfg has no 'task'. Pass task= "
                "(one of classification, paired_translation, unpaired_translation, conditional_generation, "
                "generation, restoration)."
            )
        self.cfg["task"] = task
        return model, task

    def _datasets(self, task: str) -> tuple[Dataset, Dataset | None]:
        from ..data import data_options

        data_kwargs = data_options(self.cfg["options"])  # -o direction=AtoB joins the dataset keywords
        verify = data_kwargs.pop("verify", "headers")  # every file is checked before step 1 (vgzoo.data.verify)
        if isinstance(self.data_arg, Dataset):
            self.cfg["data"] = type(self.data_arg).__name__
            return self.data_arg, self.val_arg
        if self.data_arg is None:
            raise TrainingError("no training data: pass data= (e.g. 'builtin:digits' or a folder in the task's format).")
        self.cfg["data"] = str(self.data_arg)
        train = _build_data(self.data_arg, task, "train", data_kwargs)
        val = self.val_arg if self.val_arg is not None else _build_data(self.data_arg, task, "val", data_kwargs)
        verify_datasets({"train": train, "val": val}, verify, progress=self.progress and self.info.is_main)
        return train, val

    def run(self) -> TrainResult:
        cfg, opts = self.cfg, self.cfg["options"]
        device = ddp.resolve_device(cfg.get("device"), self.info)
        cfg["device"] = str(device)
        self.info = ddp.init(device)
        threads_before = torch.get_num_threads()
        try:
            threads = resolve_threads(opts.get("threads", "auto"), device, self.info)
            if threads is not None:
                opts["threads"] = threads  # saved with the run: a resumed run computes with the same count
                if threads != threads_before:
                    torch.set_num_threads(threads)
                    self.log(f"CPU: {threads} intra-op thread(s) instead of {threads_before} (load average "
                             f"{_load_average():.1f} on {os.cpu_count()} cores; -o threads=N chooses)")
            return self._run(device, cfg, opts)
        finally:
            if torch.get_num_threads() != threads_before:
                torch.set_num_threads(threads_before)
            ddp.shutdown()

    def _run(self, device: torch.device, cfg: dict, opts: dict) -> TrainResult:
        info = self.info
        model, task = self._build_model()
        recipe_cls = recipe_for(task)
        train_ds, val_ds = self._datasets(task)
        batch_size = int(cfg.get("batch_size") or recipe_cls.defaults["batch_size"])
        cfg["batch_size"] = batch_size
        model.to(device)
        if info.enabled:
            model = ddp.convert_sync_batchnorm(model, device, self.log)
        if cfg["compile"]:
            for name in ("generator", "discriminator", "G_AB", "G_BA", "D_A", "D_B"):
                part = getattr(model, name, None)
                if isinstance(part, nn.Module):
                    part.compile()
            if task == "classification":
                model.compile()

        batches = _Batches(train_ds, batch_size, info, int(cfg["seed"]), int(opts.get("num_workers", 0)))
        spe = batches.steps_per_epoch
        if spe == 0:
            raise TrainingError(
                f"the training set has {len(train_ds)} items, fewer than one batch of {batch_size} per process "
                f"({info.world_size} process(es)); lower --batch-size or add data."
            )
        if cfg.get("steps") is not None:
            total = int(cfg["steps"])
        else:
            cfg["epochs"] = int(cfg.get("epochs") or recipe_cls.defaults["epochs"])
            total = cfg["epochs"] * spe
        horizon = int(opts.get("schedule_steps") or total)

        # mixed precision
        amp_on = bool(cfg["amp"])
        if amp_on and device.type == "cuda":
            autocast = lambda: torch.autocast("cuda", dtype=torch.float16)  # noqa: E731
        elif amp_on:
            autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
        else:
            autocast = contextlib.nullcontext
        scaler = torch.amp.GradScaler(device.type, enabled=amp_on and device.type == "cuda")

        if task == "classification":
            wrapped = ddp.wrap(model, info, device, find_unused=False)
            call = wrapped
        else:
            wrapped = ddp.wrap(ddp.LossCall(model), info, device, find_unused=True)
            call = wrapped if info.enabled else (lambda method, *a: getattr(model, method)(*a))
        recipe: Recipe = recipe_cls(model, call, lr=cfg.get("lr"), batch_size=batch_size, options=opts,
                                    device=device, autocast=autocast, scaler=scaler)
        cfg["lr"] = recipe.lr
        recipe.make_transforms(dict(opts.get("augment", {})))
        recipe.build(horizon, spe)

        ema = None
        if opts.get("ema"):
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(float(opts.get("ema_decay", 0.999))),
                                use_buffers=True)

        monitor = GANHealthMonitor(MonitorConfig(**opts.get("monitor", {})),
                                   path=self.run_dir / "health.json" if info.is_main else None, log=self.log)

        # ------------------------------------------------------------------------------- resume
        step, epoch, pos = 0, 0, 0
        best = None
        history: list[dict] = []
        metrics_path = self.run_dir / "metrics.jsonl"
        if self.resume_from is not None:
            data = ckpt.load_checkpoint(self.resume_from)
            state = data["state"]
            model.load_state_dict(data["model"])
            ckpt.restore_optimizers(recipe.optimizers, data["optim"], state["optimizers"])
            recipe.load_scheduler_state(state.get("schedulers", {}))
            if state.get("horizon") != horizon and not opts.get("schedule_steps"):
                recipe.set_horizon(horizon, spe)
            if state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            recipe.load_state_tensors(data["tensors"])
            if ema is not None and data["ema"] is not None:
                ema.module.load_state_dict(data["ema"])
                ema.n_averaged.fill_(int(state.get("ema_n_averaged", 0)))
            monitor.load_state_dict(state["monitor"])
            step, epoch, pos, best = int(state["step"]), int(state["epoch"]), int(state["pos"]), state.get("best")
            ckpt.restore_rng(data["tensors"], state["rng"])
            if metrics_path.is_file():
                for line in metrics_path.read_text(encoding="utf-8").splitlines():
                    row = json.loads(line)
                    if row["step"] <= step:
                        history.append(row)
            self.log(f"resumed from {self.resume_from} at step {step} (epoch {epoch}, batch {pos})")
        else:
            torch.manual_seed(int(cfg["seed"]) + info.rank)
            np.random.seed(int(cfg["seed"]) + info.rank)
            __import__("random").seed(int(cfg["seed"]) + info.rank)

        cfg["total_steps"] = total
        cfg["steps_per_epoch"] = spe
        cfg["world_size"] = info.world_size
        if info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "samples").mkdir(exist_ok=True)
            atomic_write_json(self.run_dir / "config.json", {**cfg, "recipe": type(recipe).__name__,
                                                             "recipe_options": recipe.options,
                                                             "torch": torch.__version__})
            with open(metrics_path, "w", encoding="utf-8") as f:  # drop rows past the resumed step
                for row in history:
                    f.write(json.dumps(row) + "\n")
            if info.enabled and device.type == "cpu":
                self.log("distributed: gloo backend on CPU")
        writer = self._tensorboard() if info.is_main else None

        # fixed batches for pictures and the mode-collapse check
        with _rng_preserved(device):
            fixed_src = val_ds if val_ds is not None and len(val_ds) else train_ds
            fixed = recipe.prepare(_first_items(fixed_src, 8), train=False)
            real = None
            if task == "conditional_generation":
                raw = _cgan_real_batch(train_ds)
                real = recipe.prepare(raw, train=False) if raw is not None else None
            elif task == "generation":
                real = recipe.prepare(_first_items(train_ds, 32), train=False)

        def save(is_best: bool = False) -> Path | None:
            if not info.is_main:
                return None
            state = {"epoch": epoch, "pos": pos, "horizon": horizon, "best": best,
                     "schedulers": recipe.scheduler_state(), "scaler": scaler.state_dict(),
                     "monitor": monitor.state_dict(), "config": cfg}
            return ckpt.save_checkpoint(self.run_dir, step, model=model, optimizers=recipe.optimizers,
                                        trainer_state=state, tensors=recipe.state_tensors(), ema=ema,
                                        keep_last=int(opts.get("keep_last", 3)), is_best=is_best)

        metrics_file = open(metrics_path, "a", encoding="utf-8") if info.is_main else None
        last_val: dict[str, float] = {}
        interrupted = None
        last_ckpt = self.resume_from
        save_every = int(opts.get("save_every") or 0)
        bar = None
        if info.is_main and self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=step, desc=f"train {cfg['model']}", unit="step", dynamic_ncols=True)
        model.train()
        saved_step = step if self.resume_from is not None else -1
        try:
            with _Signals() as signals:
                while step < total and interrupted is None:
                    stop = False
                    for raw in batches.epoch(epoch, pos):
                        batch = recipe.prepare(raw, train=True)
                        logs = recipe.train_step(batch, step)
                        step += 1
                        pos += 1
                        recipe.step_schedulers(step)
                        if ema is not None:
                            ema.update_parameters(model)
                        logs = {k: float(v) for k, v in logs.items()}
                        self._check(monitor, step, logs)
                        row = {"step": step, "epoch": epoch, "split": "train", "lr": recipe.lr_now(), **logs}
                        history.append(row)
                        if metrics_file is not None:
                            metrics_file.write(json.dumps(row) + "\n")
                        if writer is not None:
                            for k, v in logs.items():
                                writer.add_scalar(f"train/{k}", v, step)
                        if bar is not None:
                            bar.update(1)
                            if step % 5 == 0 or step == total:
                                shown = {k: f"{v:.3g}" for k, v in logs.items()
                                         if k in ("loss", "D_loss", "G_loss", "G_L1_pretrain", "top1")}
                                bar.set_postfix(shown, refresh=False)
                        if save_every and step % save_every == 0 and pos < spe and step < total:
                            last_ckpt, saved_step = save() or last_ckpt, step
                        stop = ddp.any_flag(signals.received is not None, info, device)
                        if stop or step >= total:
                            break
                    if pos >= spe:  # the epoch is complete
                        epoch, pos = epoch + 1, 0
                        last_val, is_best, best = self._epoch_end(recipe, model, device, val_ds, batch_size,
                                                                  fixed, real, monitor, history, metrics_file,
                                                                  writer, step, epoch, best)
                        last_ckpt, saved_step = save(is_best) or last_ckpt, step
                    if stop:
                        interrupted = signals.received or "SIGTERM"
                        self.log(f"{interrupted} received: checkpoint at step {step}, stopping; continue with "
                                 f"--resume --out {self.run_dir}")
                if saved_step != step:
                    if interrupted is None and info.is_main:
                        with _rng_preserved(device):
                            last_val = self._evaluate(recipe, model, device, val_ds, batch_size) or last_val
                    is_best, best = self._is_best(recipe, last_val, best)
                    last_ckpt, saved_step = save(is_best) or last_ckpt, step
        finally:
            if bar is not None:
                bar.close()
            if metrics_file is not None:
                metrics_file.close()
            if info.is_main:
                monitor.write()
                plots.plot_loss_curves(history, self.run_dir / "loss_curves.png", title=str(cfg["model"]))
            if writer is not None:
                writer.close()
        ddp.barrier(info)
        if info.is_main and interrupted is None:
            with _rng_preserved(device):
                self._pictures(recipe, model, fixed, "final")
            self._save_final(model, ema)
        if info.is_main:
            self.log(f"{'stopped' if interrupted else 'finished'} at step {step}/{total}; run directory "
                     f"{self.run_dir} (health: {monitor.status})")
        return TrainResult(run_dir=self.run_dir, step=step, epoch=epoch, total_steps=total,
                           checkpoint=ckpt.latest_checkpoint(self.run_dir), metrics=last_val, health=monitor.status,
                           interrupted=interrupted, model=model)

    def _check(self, monitor: GANHealthMonitor, step: int, logs: dict[str, float]) -> None:
        findings = monitor.update(step, logs)
        if any(f.severity == "fatal" for f in findings):
            monitor.write()
            good = ckpt.latest_checkpoint(self.run_dir)
            raise TrainingError(
                f"training diverged at step {step}: {findings[0].message} The last good checkpoint is "
                f"{good if good else '(none yet)'}; resume from it with --resume and a lower --lr (or options "
                f"clip_grad=1.0). Details in {self.run_dir / 'health.json'}."
            )

    # --------------------------------------------------------------------------------- epoch end
    def _epoch_end(self, recipe, model, device, val_ds, batch_size, fixed, real, monitor, history, metrics_file,
                   writer, step, epoch, best):
        with _rng_preserved(device):
            val = self._evaluate(recipe, model, device, val_ds, batch_size) if self.info.is_main else {}
            if self.info.is_main:
                model.eval()
                try:
                    div = recipe.diversity(fixed, real)
                finally:
                    model.train()
                if div is not None:
                    monitor.check_diversity(step, *div)
                    val = {**val, "diversity_ratio": div[0] / div[1] if div[1] > 0 else float("nan")}
                if val:
                    row = {"step": step, "epoch": epoch, "split": "val", **val}
                    history.append(row)
                    metrics_file.write(json.dumps(row) + "\n")
                    metrics_file.flush()
                    if writer is not None:
                        for k, v in val.items():
                            writer.add_scalar(f"val/{k}", v, step)
                    self.log(f"epoch {epoch} step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in val.items()))
                every = int(self.cfg["options"].get("plot_every", 1) or 1)
                if epoch % every == 0:
                    # Pictures are for people, not for the run: with epochs of a second or two (builtin:digits)
                    # drawing them every epoch cost more than a tenth of the training time, so a grid is drawn at
                    # most every PICTURE_INTERVAL_S and the loss curves (matplotlib, ~1 s) at most every
                    # PLOT_INTERVAL_S or 25x their drawing time. The first epoch's and the final ones are always drawn.
                    now = time.monotonic()
                    if now - self._last_pictures >= PICTURE_INTERVAL_S:
                        self._pictures(recipe, model, fixed, f"epoch_{epoch:04d}")
                        self._last_pictures = now
                    if now - self._last_plot >= max(PLOT_INTERVAL_S, 25 * self._plot_cost):
                        plots.plot_loss_curves(history, self.run_dir / "loss_curves.png",
                                               title=str(self.cfg["model"]))
                        self._last_plot = time.monotonic()
                        self._plot_cost = self._last_plot - now
        is_best, best = self._is_best(recipe, val, best)
        return val, is_best, best

    def _is_best(self, recipe, val, best):
        if recipe.best_metric is None or recipe.best_metric[0] not in val:
            return False, best
        key, mode = recipe.best_metric
        v = float(val[key])
        if best is None or (v > best if mode == "max" else v < best):
            return True, v
        return False, best

    def _evaluate(self, recipe, model, device, val_ds, batch_size) -> dict[str, float]:
        if val_ds is None or not len(val_ds):
            return {}
        model.eval()
        try:
            loader = DataLoader(val_ds, batch_size=max(batch_size, 32), shuffle=False)
            return recipe.evaluate(loader)
        finally:
            model.train()

    def _pictures(self, recipe, model, fixed, tag: str) -> None:
        model.eval()
        try:
            recipe.save_samples(fixed, self.run_dir / "samples" / f"{tag}.png")
        except Exception as exc:  # a picture must never stop training
            self.log(f"warning: sample grid {tag} failed: {exc!r}")
        finally:
            model.train()

    def _save_final(self, model, ema) -> None:
        from .._factory import save_pretrained
        from ..protocols import ZooModel

        if not isinstance(model, ZooModel) or "architecture" not in (getattr(model, "pretrained_cfg", None) or {}):
            return
        try:
            save_pretrained(model, self.run_dir / "final")
            if ema is not None:
                ema.module.pretrained_cfg = model.pretrained_cfg
                save_pretrained(ema.module, self.run_dir / "final_ema")
        except Exception as exc:
            self.log(f"warning: could not save the final model folder: {exc!r}")

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:
            return None
        try:
            return SummaryWriter(str(self.run_dir / "tensorboard"))
        except Exception:
            return None


def format_time(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(max(0.0, seconds))) if math.isfinite(seconds) else "?"
