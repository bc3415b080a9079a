"""The training engine behind ``vgzoo train`` and :func:`vgzoo.train.fit`.

One loop for every task: the recipe of the model's registered task (see :mod:`vgzoo.train.recipes`)
supplies optimizers, schedulers and the step; the loop advances a :class:`~vgzoo.train.state.TrainState` and
calls the callbacks of :mod:`vgzoo.train.callbacks` (metrics, health monitor, progress, evaluation, pictures,
checkpoints); signals stop it after the current step; DistributedDataParallel wraps the model under torchrun.

Exact resume: the data order of an epoch is a function of (seed, epoch) (a DistributedSampler), the
position inside the epoch is checkpointed, and so are every RNG (torch CPU/CUDA, NumPy, Python), the
optimizers, schedulers, scaler, image pools and monitor. Everything done at an epoch's end (evaluation,
sample grids, diversity) draws on its own generators and restores the global RNG states, so a run
stopped and resumed sees the very numbers an uninterrupted run sees. The LR schedule's horizon is fixed when a run
starts: ``--resume`` past it is refused where the schedule depends on it (unless ``-o schedule_steps`` re-plans it),
so a resumed run is always the run it claims to be.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import random
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .._hub import atomic_write_json
from ..data.verify import verify_datasets
from ..errors import TrainingError
from ..precision import fast_cuda_kernels
from ..protocols import GANModel
from . import checkpoint as ckpt
from . import distributed as ddp
from . import rundir
from .callbacks import DEFAULT_CALLBACKS, Callback, MetricsLog, rng_preserved
from .monitor import GANHealthMonitor, MonitorConfig
from .options import FIT_KEYS, RUN_OPTIONS, SETTINGS, RunOptions, docstring, thawed
from .policy import deterministic_mode, resolve_log_every, resolve_threads, resolve_workers
from .recipes import Recipe, first_items, recipe_for
from .state import TrainState
from .view import RunView

logger = logging.getLogger("vgzoo.train")
__all__ = ["fit", "TrainResult", "TrainingError"]


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


class _EpochItems(Dataset):
    """``items[(epoch, index)]`` is ``dataset[index]`` as epoch ``epoch`` draws it.

    A dataset with ``set_epoch`` (the unaligned dataset's random A/B pairing) is told the epoch in the process that
    loads the item, so DataLoader workers that live for the whole run follow the epochs too.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.epoch: int | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        if epoch != self.epoch and hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        self.epoch = epoch
        return self.dataset[index]


class _RunBatches:
    """Every remaining batch of the run through one DataLoader, so worker processes start once per run.

    The batches of epoch ``e`` are a function of (seed, e) (a DistributedSampler), so a run resumed at (epoch,
    position) loads exactly the batches an uninterrupted run loads. On CUDA the batches come in pinned memory,
    which lets their copy to the device overlap the step.
    """

    def __init__(self, dataset: Dataset, batch_size: int, info: ddp.DistInfo, seed: int, num_workers: int,
                 pin_memory: bool = False) -> None:
        self.items, self.batch_size = _EpochItems(dataset), batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.sampler = DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True,
                                          seed=seed, drop_last=True)
        self.steps_per_epoch = len(self.sampler) // batch_size

    def epoch_batches(self, epoch: int) -> list[list[tuple[int, int]]]:
        """The batches of epoch ``epoch``, as ``(epoch, index)`` keys."""
        self.sampler.set_epoch(epoch)
        keys = [(epoch, i) for i in self.sampler]
        return [keys[k * self.batch_size:(k + 1) * self.batch_size] for k in range(self.steps_per_epoch)]

    def loader(self, epoch: int, start: int, count: int) -> DataLoader:
        """The next ``count`` batches from position ``start`` of epoch ``epoch`` on, across epoch ends."""
        plan = _BatchPlan(self, epoch, start, count)
        # A private generator: creating a loader iterator draws a base seed, which must not move the global RNG
        # (a resumed run creates its loader at another step than an uninterrupted one).
        g = torch.Generator().manual_seed(self.sampler.seed * 100003 + epoch)
        return DataLoader(self.items, batch_sampler=plan, num_workers=self.num_workers, generator=g,
                          pin_memory=self.pin_memory)


class _BatchPlan:
    """The batch sampler of :meth:`_RunBatches.loader`: epochs drawn one at a time, as the run reaches them."""

    def __init__(self, batches: _RunBatches, epoch: int, start: int, count: int) -> None:
        self.batches, self.epoch, self.start, self.count = batches, epoch, start, count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, start, left = self.epoch, self.start, self.count
        while left > 0:
            part = self.batches.epoch_batches(epoch)[start:start + left]
            yield from part
            epoch, start, left = epoch + 1, 0, left - len(part)


def read_back(rows: list[dict[str, Any]]) -> None:
    """Replace the tensors in ``rows`` by floats, with one device-to-host copy per device (one host wait)."""
    by_device: dict[torch.device, list[tuple[dict[str, Any], str, torch.Tensor]]] = {}
    for row in rows:
        for key, value in row.items():
            if isinstance(value, torch.Tensor):
                by_device.setdefault(value.device, []).append((row, key, value))
    for entries in by_device.values():
        tensors = [t.detach().reshape(()) for _, _, t in entries]
        dtype = functools.reduce(torch.promote_types, (t.dtype for t in tensors), torch.float32)  # bf16 -> fp32
        for (row, key, _), value in zip(entries, torch.stack([t.to(dtype) for t in tensors]).tolist(), strict=True):
            row[key] = float(value)


def _log_row(st: TrainState, logs: dict[str, Any]) -> dict[str, Any]:
    """A metrics.jsonl row for the step just taken; its values are read back later (:func:`read_back`)."""
    for key, value in logs.items():
        if isinstance(value, torch.Tensor) and value.numel() != 1:
            raise TrainingError(f"training log {key!r} holds a tensor of shape {tuple(value.shape)}; a log value is "
                                "one number (a 0-dim tensor or a float): reduce it, e.g. with .mean().")
    return {"step": st.step, "epoch": st.epoch, "split": "train", "lr": st.recipe.lr_now(), **logs}


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
    overwrite: bool = False,
    device: str | torch.device | None = None,
    amp: bool | str | None = None,
    compile: bool | None = None,
    seed: int | None = None,
    config: str | os.PathLike | dict | None = None,
    model_kwargs: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    val_data: Dataset | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    callbacks: Iterable[Callback] = (),
) -> TrainResult:
    """Train a model with its task's recipe, writing everything into ``out`` (the run directory).

    The keywords are the run options of :mod:`vgzoo.train.options` (``vgzoo train``'s flags); ``options`` takes the
    engine options of that module and the recipe's own (``Recipe.schema``), both listed in docs/train.md. In Python,
    ``data`` may also be a dataset whose items follow the data contract, ``out`` and ``resume`` paths, ``device`` a
    ``torch.device``, ``config`` a dict; a keyword left at None takes the --config file's, a resumed run's or the
    recipe's value. The values are checked and frozen once, into a :class:`~vgzoo.train.options.RunOptions`.

    Args:
{run_options}
        log: where messages go (default: ``tqdm.write`` on rank 0).
        callbacks: further :class:`~vgzoo.train.callbacks.Callback` objects, called after the built-in ones with a
            read-only :class:`~vgzoo.train.view.RunView` of the run.

    Returns:
        A :class:`TrainResult`.

    Raises:
        RunDirError: ``out`` holds something else than a run of this model to resume, or another run is writing
            into it now (its folder lock is held); nothing is written.
        TrainingError: a loss became NaN/Inf (the last good checkpoint is kept), or the run cannot start.
        ValueError: an option's value has the wrong type.
    """
    given = locals()
    explicit = {k: given[k] for k in SETTINGS if given[k] is not None}
    file_cfg = _read_config(config)
    run_dir = Path(out if out is not None else file_cfg.get("out", "runs/train"))
    builder = _RunBuilder(model, data, val_data, run_dir, progress, log, list(callbacks))
    saved_cfg: dict[str, Any] = {}
    if resume and overwrite:
        raise TrainingError("pass resume (--resume) or overwrite (--overwrite), not both.")
    with rundir.RunLock(run_dir, enabled=builder.info.is_main, log=builder.log) as lock:
        if resume:
            builder.resume_from, saved_cfg = _resume_point(run_dir, resume, model, explicit, model_kwargs)
            if builder.resume_from is None and builder.info.is_main:  # its first save never completed: start over
                rundir.claim(run_dir, overwrite=True, log=builder.log, lock=lock)
        elif builder.info.is_main:
            rundir.claim(run_dir, overwrite=overwrite, log=builder.log, lock=lock)
        given_options = {**file_cfg.get("options", {}), **(options or {})}
        merged = _merge_config(saved_cfg, file_cfg, explicit, model_kwargs, given_options, run_dir)
        builder.configure(RunOptions.from_config(merged), replan="schedule_steps" in given_options)
        return builder.run()


if fit.__doc__:  # (python -OO strips docstrings)
    fit.__doc__ = fit.__doc__.replace("{run_options}", docstring(o for o in RUN_OPTIONS if o.name != "nproc"))


def _merge_config(saved: dict, file_cfg: dict, explicit: dict, model_kwargs: dict | None, options: dict,
                  run_dir: Path) -> dict[str, Any]:
    """The run's configuration: a resumed run's saved one, then a --config file, then explicit keywords."""
    cfg: dict[str, Any] = {**saved, **file_cfg, **explicit}
    if model_kwargs is not None:
        cfg["model_kwargs"] = dict(model_kwargs)
    cfg["options"] = {**saved.get("options", {}), **options}
    if "steps" in explicit:
        cfg.pop("epochs", None)
    cfg["out"] = str(run_dir)
    return cfg


def _names_published_weights(name: str) -> bool:
    """Whether ``name`` is ``NAME.TAG`` with a tag that publishes weights: training then starts from them
    (fine-tuning, transfer learning); a bare ``NAME`` (its default tag) starts from a random initialisation."""
    from .._registry import load_spec, resolve_name, split_name
    from ..errors import VgzooError

    if ":" in name or split_name(name)[1] is None:
        return False
    try:
        arch, tag = split_name(resolve_name(name))  # an alias (stylegan2.cifar10) names weights too
        return tag is not None and load_spec(arch).cfg_for(tag)[1].has_weights
    except VgzooError:  # an unknown name or tag: create() reports it
        return False


def _model_name(model: str | nn.Module) -> str:
    if isinstance(model, str):
        return model
    return (getattr(model, "pretrained_cfg", {}) or {}).get("architecture", type(model).__name__)


def _resume_point(run_dir: Path, resume, model, explicit: dict,
                  model_kwargs: dict | None = None) -> tuple[Path | None, dict[str, Any]]:
    """The checkpoint folder to resume from and the run's saved config (``fit`` keys only).

    A run killed before its first checkpoint was complete (``--out`` holds its config.json, no checkpoint) has
    nothing to continue from: the folder to resume is ``None`` and the run starts over from step 0 with its saved
    config, what it left being moved aside. A fresh run into that folder is refused and points here, so both
    commands give the same answer.
    """
    where = run_dir if resume is True else Path(resume)
    resume_from = where if (where / ckpt.STATE_JSON).is_file() else ckpt.latest_checkpoint(where)
    if resume_from is None and where == run_dir and rundir.run_model(run_dir) is not None:
        saved = rundir.read_json(run_dir / "config.json")
    elif resume_from is None:
        raise TrainingError(
            f"--resume: {str(where)!r} holds no complete checkpoint (expected {ckpt.CHECKPOINTS}/step_<N>/). "
            "Start a fresh run without --resume, or point --out at the run to continue."
        )
    else:
        saved = ckpt.read_trainer_state(resume_from).get("config", {})
    held, name = saved.get("model"), _model_name(model)
    if held is not None and held != name:
        raise TrainingError(
            f"--resume: {str(where)!r} holds a run of {held}, not {name}. Continue it with `vgzoo train {held} "
            f"--resume --out {where}`, or train {name} into another --out."
        )
    built = saved.get("model_kwargs") or {}
    changed = {k: v for k, v in (model_kwargs or {}).items() if k in built and built[k] != v}
    if changed:
        was = ", ".join(f"{k}={built[k]!r}" for k in changed)
        asked = " ".join(f"-k {k}={v!r}" for k, v in changed.items())
        raise TrainingError(
            f"--resume: this run was built with {was}; its checkpoint holds weights of that shape, and {asked} asks "
            f"for another model. Resume without {asked} (the run keeps its own model arguments), or train the new "
            "model into another --out."
        )
    saved_cfg = {k: v for k, v in saved.items() if k in FIT_KEYS}
    if "steps" in explicit or "epochs" in explicit:
        saved_cfg.pop("steps", None)
        saved_cfg.pop("epochs", None)
    return resume_from, saved_cfg


class _RunBuilder:
    """Builds one run from its options (device, threads, model, data, recipe, state), then hands it to the loop.

    The options are a frozen :class:`~vgzoo.train.options.RunOptions`; each value the build settles (the device and
    precision that ran, the recipe's learning rate and batch size, the thread count) replaces it with a new object,
    so what the loop, the callbacks and the run folder see is the run as it ran.
    """

    def __init__(self, model, data, val_data, run_dir: Path, progress: bool, log, callbacks: list) -> None:
        self.model_arg, self.data_arg, self.val_arg = model, data, val_data
        self.run_dir, self.progress, self._log, self.extra_callbacks = run_dir, progress, log, callbacks
        self.metrics_path = run_dir / "metrics.jsonl"
        self.info = ddp.env_info()
        self.resume_from: Path | None = None
        self.replan = False
        self.options = RunOptions()
        self.config: dict[str, Any] = {}  # what checkpoints record: the options as JSON, with the run's length
        self.device = torch.device("cpu")
        self.val_ds: Dataset | None = None
        self.batch_size = 0
        self.fixed: dict[str, Any] = {}
        self.real: dict[str, Any] | None = None

    def configure(self, options: RunOptions, replan: bool) -> None:
        self.options, self.replan = options, replan
        if self.data_arg is None:
            self.data_arg = options.data

    def settle(self, **values: Any) -> None:
        """Record settled run options (a new frozen object)."""
        self.options = dataclasses.replace(self.options, **values)

    def log(self, msg: str) -> None:
        if not self.info.is_main:
            return
        if self._log is not None:
            self._log(msg)
        else:
            from tqdm.auto import tqdm

            tqdm.write(msg)

    # --------------------------------------------------------------------------------------- setup
    def run(self) -> TrainResult:
        self.device = ddp.resolve_device(self.options.device, self.info)
        self.settle(device=str(self.device))
        self.info = ddp.init(self.device)
        threads_before = torch.get_num_threads()
        try:
            threads, why = resolve_threads(self.options.engine.threads, self.device, self.info)
            if threads is not None:
                # saved with the run: a resumed run computes with the same count
                self.options = self.options.with_options(threads=threads)
                if threads != threads_before:
                    torch.set_num_threads(threads)
                if why.startswith("load"):  # load-based on request: say so, the results now depend on it
                    self.log(f"CPU: {threads} intra-op thread(s) ({why}); runs with another count differ in "
                             "the last bits")
            deterministic = bool(self.options.engine.deterministic)
            with deterministic_mode(deterministic), fast_cuda_kernels(self.device, enabled=not deterministic):
                if self.device.type == "cuda":
                    self.log("CUDA: TF32 matmuls and cuDNN autotuning " + (
                        "off (-o deterministic=true)" if deterministic
                        else "on (-o deterministic=true turns them off)"))
                return self.train()
        finally:
            if torch.get_num_threads() != threads_before:
                torch.set_num_threads(threads_before)
            ddp.shutdown()

    def _build_model(self) -> tuple[nn.Module, str]:
        torch.manual_seed(int(self.options.seed))
        if isinstance(self.model_arg, str):
            from .._factory import create

            model = create(self.model_arg, **{"pretrained": _names_published_weights(self.model_arg),
                                              **thawed(self.options.model_kwargs)})
        else:
            model = self.model_arg
        self.settle(model=_model_name(self.model_arg))
        cfg = getattr(model, "pretrained_cfg", {}) or {}
        # a family whose training differs from its task's generic recipe names its own training task
        task = self.options.task or cfg.get("train_task") or cfg.get("task")
        if task is None:
            from ..tasks import list_tasks

            raise TrainingError(f"cannot tell the task of {type(model).__name__}: its pretrained_cfg has no 'task'. "
                                f"Pass task= (one of {', '.join(list_tasks())}).")
        self.settle(task=task)
        return model, task

    def _native_size(self, model: nn.Module, task: str, data_kwargs: dict) -> dict:
        """A folder of labelled images is read at the model's input size unless ``-o data=...`` says otherwise:
        images of mixed sizes then batch together (as ``load_size`` does for translation folders), and a picture
        is resized once, on loading, to what the model takes."""
        from ..data import LabelledImageFolder, is_reference_spec
        from ..tasks import get_task

        size = (getattr(model, "pretrained_cfg", None) or {}).get("input_size")
        if (not issubclass(get_task(task).dataset_class(), LabelledImageFolder) or "load_size" in data_kwargs
                or str(self.data_arg).startswith("builtin:") or is_reference_spec(str(self.data_arg))
                or not (isinstance(size, list | tuple) and len(size) == 3)):
            return data_kwargs
        self.log(f"data: every image is resized to {size[1]}x{size[2]} (the model's input size) on loading; "
                 "-o data='{\"load_size\": null}' keeps the native sizes")
        return {**data_kwargs, "load_size": (int(size[1]), int(size[2]))}

    def _datasets(self, task: str, model: nn.Module) -> tuple[Dataset, Dataset | None]:
        from ..data import data_options

        options = thawed(self.options.options)
        data_kwargs = data_options(options)  # -o direction=AtoB joins the dataset keywords (saved so, with the run)
        self.settle(options=options)
        verify = data_kwargs.pop("verify", "headers")  # every file is checked before step 1 (vgzoo.data.verify)
        if isinstance(self.data_arg, Dataset):
            self.settle(data=type(self.data_arg).__name__)
            return self.data_arg, self.val_arg
        if self.data_arg is None:
            raise TrainingError("no training data: pass data= (e.g. 'builtin:digits' or a folder in the task's "
                                "format).")
        self.settle(data=str(self.data_arg))
        data_kwargs = self._native_size(model, task, data_kwargs)
        train = _build_data(self.data_arg, task, "train", data_kwargs)
        val = self.val_arg if self.val_arg is not None else _build_data(self.data_arg, task, "val", data_kwargs)
        verify_datasets({"train": train, "val": val}, verify, progress=self.progress and self.info.is_main)
        return train, val

    def _place(self, model: nn.Module) -> nn.Module:
        """Move the model to the device; SyncBatchNorm under DDP; ``torch.compile`` its networks.

        Static shapes (``dynamic=False``): a run's batches all have one shape (the loader drops the last partial
        batch), so each network compiles once for it with kernels specialised to its sizes; another shape (an
        evaluation batch) compiles a graph of its own. A classifier (the ViT) is compiled whole; a GAN's
        generators and discriminators are compiled one by one (a DiffAugment pre-hook with its discriminator), not
        the loss code between them (image pools and label checks stay eager, outside the graphs).
        """
        model.to(self.device)
        if self.info.enabled:
            model = ddp.convert_sync_batchnorm(model, self.device, self.log)
        if self.options.compile:
            parts = [*model.generators().values(), *model.discriminators().values()] \
                if isinstance(model, GANModel) else [model]
            for part in parts:
                part.compile(dynamic=False)
        return model

    def _recipe(self, recipe_cls: type[Recipe], model: nn.Module) -> Recipe:
        """The recipe with mixed precision and the (possibly DDP-wrapped) way to call the model."""
        from ..precision import cpu_bf16_hint, resolve_amp, training_amp

        dev = self.device.type
        asked = self.options.amp
        if recipe_cls.own_precision:  # the networks choose their own dtypes (StyleGAN2's fp16 blocks on CUDA)
            if asked not in (None, False, "off"):
                raise TrainingError(f"--amp {asked}: {recipe_cls.__name__} keeps its own mixed precision (its "
                                    "networks pick their dtypes); train without --amp.")
            asked = "off"
        precision = resolve_amp(training_amp(asked, self.device), self.device)
        self.settle(amp=precision.mode)  # what ran, so a resumed run computes at the same precision
        if precision.dtype is not None:
            autocast = lambda: torch.autocast(dev, dtype=precision.dtype)  # noqa: E731
            self.log(f"precision: {precision.reason}")
        else:
            autocast = contextlib.nullcontext
            hint = cpu_bf16_hint(self.device, precision) if asked is None else None
            if hint:  # once, at the start of a run that left the precision to vgzoo
                self.log(hint)
        scaler = torch.amp.GradScaler(dev, enabled=precision.scaler)
        if not isinstance(model, GANModel):
            call = ddp.wrap(model, self.info, self.device, find_unused=False)
        else:
            wrapped = ddp.wrap(ddp.LossCall(model), self.info, self.device, find_unused=True)
            call = wrapped if self.info.enabled else (lambda method, *a: getattr(model, method)(*a))
        recipe = recipe_cls(model, call, lr=self.options.lr, batch_size=self.batch_size,
                            options=thawed(self.options.options), device=self.device, autocast=autocast,
                            scaler=scaler)
        self.settle(lr=recipe.lr)
        # transform overrides; a recipe may own the name (StyleGAN2's ADA)
        recipe.make_transforms(thawed(self.options.engine.augment))
        return recipe

    def _length(self, recipe_cls: type[Recipe], spe: int) -> int:
        if self.options.steps is not None:
            return int(self.options.steps)
        self.settle(epochs=int(self.options.epochs or recipe_cls.defaults["epochs"]))
        return self.options.epochs * spe

    def _horizon(self, total: int) -> int:
        """The LR schedule's horizon: fixed when the run starts, kept on resume unless re-planned explicitly."""
        if self.resume_from is None:
            return int(self.options.engine.schedule_steps or total)
        return int(ckpt.read_trainer_state(self.resume_from).get("horizon") or total)

    def _state(self, model: nn.Module, recipe: Recipe, total: int, horizon: int, spe: int) -> TrainState:
        engine = self.options.engine
        ema = None
        if engine.ema:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(engine.ema_decay), use_buffers=True)
        monitor = GANHealthMonitor(MonitorConfig(**engine.monitor),
                                   path=self.run_dir / "health.json" if self.info.is_main else None, log=self.log,
                                   grad_scaler=recipe.scaler.is_enabled())
        return TrainState(model=model, recipe=recipe, monitor=monitor, total=total, horizon=horizon,
                          steps_per_epoch=spe, ema=ema)

    def _restore_or_seed(self, st: TrainState) -> None:
        if self.resume_from is None:
            seed = int(self.options.seed) + self.info.rank
            torch.manual_seed(seed)
            np.random.seed(seed)
            random.seed(seed)
            return
        st.restore(self.resume_from, self.metrics_path)
        wanted = int(self.options.engine.schedule_steps or st.horizon) if self.replan else st.horizon
        if wanted != st.horizon:
            before = st.recipe.lr_now()
            st.recipe.set_horizon(wanted, st.steps_per_epoch, st.step)
            st.horizon = wanted
            self.log(f"LR schedule re-planned to end at step {wanted} (-o schedule_steps); LR now {before:.3g}")
        if st.total > st.horizon and st.recipe.uses_horizon():
            raise TrainingError(
                f"--steps {st.total} goes past the end of this run's LR schedule ({type(st.recipe).__name__}, planned "
                f"for {st.horizon} steps); training on would not be the {st.total}-step run it claims, and nothing "
                f"was written. Re-plan the rest explicitly with -o schedule_steps={st.total} (the run is then no "
                "longer a run done in one go), or plan runs you mean to extend from their start (-o "
                "schedule_steps=<longest>, or -o n_epochs=... for a GAN's linear decay); see docs/train.md."
            )
        self.log(f"resumed from {self.resume_from} at step {st.step} (epoch {st.epoch}, batch {st.pos})")

    def _write_config(self, st: TrainState) -> None:
        self.config = {**self.options.to_config(), "total_steps": st.total, "steps_per_epoch": st.steps_per_epoch,
                       "world_size": self.info.world_size}
        if not self.info.is_main:
            return
        (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.run_dir / "config.json", {**self.config, "recipe": type(st.recipe).__name__,
                                                         "recipe_options": st.recipe.options,
                                                         "torch": torch.__version__})
        if self.info.enabled and self.device.type == "cpu":
            self.log("distributed: gloo backend on CPU")

    def _fixed_batches(self, recipe: Recipe, train_ds: Dataset) -> None:
        """Batches for pictures and the mode-collapse check, drawn without moving the global RNGs."""
        with rng_preserved(self.device):
            source = self.val_ds if self.val_ds is not None and len(self.val_ds) else train_ds
            self.fixed = recipe.prepare(first_items(source, 8), train=False)
            raw = recipe.real_batch(train_ds) if recipe.real_batch is not None else None
            self.real = recipe.prepare(raw, train=False) if raw is not None else None

    def train(self) -> TrainResult:
        model, task = self._build_model()
        recipe_cls = recipe_for(task)
        # the recipe's engine defaults, unless given: recorded in config.json, so a resume reads them back
        defaults = {k: v for k, v in recipe_cls.engine_defaults.items() if k not in self.options.options}
        if defaults:
            self.options = self.options.with_options(**defaults)
        train_ds, self.val_ds = self._datasets(task, model)
        self.batch_size = int(self.options.batch_size or recipe_cls.default_batch_size(
            model, thawed(self.options.options), self.info.world_size))
        self.settle(batch_size=self.batch_size)
        model = self._place(model)
        workers = resolve_workers(self.options.engine.num_workers, self.device, train_ds)
        batches = _RunBatches(train_ds, self.batch_size, self.info, int(self.options.seed), workers,
                              pin_memory=self.device.type == "cuda")
        log_every = resolve_log_every(self.options.engine.log_every, self.device)
        spe = batches.steps_per_epoch
        if spe == 0:
            raise TrainingError(
                f"the training set has {len(train_ds)} items, fewer than one batch of {self.batch_size} per process "
                f"({self.info.world_size} process(es)); lower --batch-size or add data."
            )
        total = self._length(recipe_cls, spe)
        horizon = self._horizon(total)
        recipe = self._recipe(recipe_cls, model)
        recipe.build(horizon, spe)
        st = self._state(model, recipe, total, horizon, spe)
        self._restore_or_seed(st)
        self._write_config(st)
        self._fixed_batches(recipe, train_ds)
        return _Loop(self, st, log_every).run(batches)


class _Loop:
    """The training loop of a built run: steps, log read-backs, the callbacks' hooks, signals.

    Callbacks get a read-only :class:`~vgzoo.train.view.RunView` of the run, built once the run is settled.
    """

    def __init__(self, built: _RunBuilder, st: TrainState, log_every: int) -> None:
        self.st, self.log_every, self.log = st, log_every, built.log
        self.info, self.device, self.run_dir = built.info, built.device, built.run_dir
        self.pending: list[dict[str, Any]] = []  # rows of steps whose logs are still on the device
        metrics = MetricsLog()
        self.callbacks: list[Callback] = [metrics if cls is MetricsLog else cls() for cls in DEFAULT_CALLBACKS]
        self.callbacks += built.extra_callbacks
        self.view = RunView(options=built.options, config=built.config, model=st.model, run_dir=built.run_dir,
                            info=built.info, device=built.device, progress=built.progress, val_ds=built.val_ds,
                            batch_size=built.batch_size, fixed=built.fixed, real=built.real, metrics=metrics,
                            log=built.log, flush_logs=self.flush_logs)

    def emit(self, hook: str, st: TrainState, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self.view, st, *args)

    def flush_logs(self, st: TrainState) -> None:
        """Read the pending steps' logs back from the device in one copy; each row goes to ``on_log``, in order."""
        if not self.pending:
            return
        rows, self.pending = self.pending, []
        read_back(rows)
        for row in rows:
            self.emit("on_log", st, row)

    def run(self, batches: _RunBatches) -> TrainResult:
        st = self.st
        st.model.train()
        try:
            self.emit("on_start", st)
            with _Signals() as signals:
                # started inside _Signals: the forked workers inherit its handlers, so a Ctrl-C sent to the whole
                # process group leaves the stop (after the step, with a checkpoint) to this process
                loader = iter(batches.loader(st.epoch, st.pos, st.total - st.step))
                while not st.done:
                    self._epoch(st, loader, signals)
                self.flush_logs(st)
                self.emit("on_train_end", st)
        finally:
            with contextlib.suppress(Exception):  # on an error, keep the rows of the steps that did run
                self.flush_logs(st)
            self.emit("on_close", st)
        ddp.barrier(self.info)
        if st.interrupted is None:
            self.emit("on_finish", st)
            ddp.barrier(self.info)  # every rank returns once rank 0 has written final/, and leaves the group together
        self.log(f"{'stopped' if st.interrupted else 'finished'} at step {st.step}/{st.total}; run directory "
                 f"{self.run_dir} (health: {st.monitor.status})")
        return TrainResult(run_dir=self.run_dir, step=st.step, epoch=st.epoch, total_steps=st.total,
                           checkpoint=ckpt.latest_checkpoint(self.run_dir), metrics=st.last_val,
                           health=st.monitor.status, interrupted=st.interrupted, model=st.model)

    def _epoch(self, st: TrainState, loader: Iterator[dict[str, Any]], signals: _Signals) -> None:
        """Steps of the current epoch from ``st.pos`` on, until its end, the run's end or a signal."""
        stop = False
        while not st.epoch_done and st.step < st.total and not stop:
            batch = st.recipe.prepare(next(loader), train=True)
            logs = st.recipe.train_step(batch, st.step)
            st.step += 1
            st.pos += 1
            st.recipe.step_schedulers(st.step)
            if st.ema is not None:
                if st.step <= self.view.options.engine.ema_start:
                    st.ema.n_averaged.zero_()  # an average of nothing yet: update_parameters copies the weights
                st.ema.update_parameters(st.model)
            self.pending.append(_log_row(st, logs))
            every = st.step % self.log_every == 0
            if every:
                self.flush_logs(st)
            self.emit("on_step", st)
            if every or st.epoch_done or not self.info.enabled:  # a collective: every rank decides at one step
                stop = ddp.any_flag(signals.received is not None, self.info, self.device)
        if st.epoch_done:
            self.flush_logs(st)
            st.epoch, st.pos = st.epoch + 1, 0
            self.emit("on_epoch_end", st)
        if stop:
            st.interrupted = signals.received or "SIGTERM"
            self.log(f"{st.interrupted} received: checkpoint at step {st.step}, stopping; continue with "
                     f"--resume --out {self.run_dir}")
