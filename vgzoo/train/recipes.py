"""Training recipes, one per task, with each family's published defaults.

=========================  =======================================================================================
task                       recipe
=========================  =======================================================================================
classification             DeiT (Touvron et al. 2021): AdamW (wd 0.05), lr 5e-4 x batch/512, 5 warm-up epochs then
                           cosine decay (timm's optimizer and scheduler factories), label smoothing 0.1, MixUp and
                           CutMix (vgzoo.augment), top-1 on the validation split.
paired_translation         pix2pix (Isola et al. 2017): D step then G step, Adam 2e-4 betas (0.5, 0.999), constant LR
                           for the first half then linear decay to 0; optional L1-only generator pre-training.
unpaired_translation       CycleGAN (Zhu et al. 2017): G step then D step (the model's image pools), Adam 2e-4 betas
                           (0.5, 0.999), constant LR for n_epochs then linear decay to 0 over n_epochs_decay.
conditional_generation     cGAN (Mirza & Osindero 2014) with DCGAN optimisation (Radford et al. 2016): alternating D
                           and G steps, Adam 2e-4 betas (0.5, 0.999); optional DiffAugment (Zhao et al. 2020).
generation, restoration    the same generic GAN recipe over the model's own losses.
=========================  =======================================================================================

Every GAN recipe works only through :class:`vgzoo.protocols.GANModel` (``generator_loss``, ``discriminator_loss``,
``generators()``, ``discriminators()``, ``training_state()``) and the capability classes (samplers, ``Translator``,
``Restorer``), so a plugin model of a known task trains unchanged. A recipe is a choice of parts (batch preparation,
the step functions of a step, evaluator, sample grid, diversity measure) rather than a chain of overrides. Recipe
options (``options=`` of :func:`vgzoo.train.fit`, ``-o key=value`` on the command line) are each recipe's ``schema``
(typed, documented :class:`~vgzoo.train.options.Option` records).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.label_map import label_values_checked, validate_labels
from ..protocols import ConditionalSampler, GANModel, LossLogs, Restorer, Translator, UnconditionalSampler
from ..tasks import BUILTIN_TASKS, get_task
from . import plots
from .options import ENGINE_DEFAULTS, Option, check_options


class LinearDecay:
    """LR factor of the pix2pix/CycleGAN reference: ``scale`` for ``n_constant`` steps, then linearly to 0 over
    ``n_decay`` (and 0 after). ``scale`` below 1 continues a schedule re-planned mid-decay from its current value."""

    def __init__(self, n_constant: int, n_decay: int, scale: float = 1.0) -> None:
        self.n_constant = int(n_constant)
        self.n_decay = int(n_decay)
        self.scale = float(scale)

    def __call__(self, step: int) -> float:
        return self.scale * max(0.0, 1.0 - max(0, step - self.n_constant) / float(self.n_decay + 1))


class Constant:
    """A constant LR factor (a LambdaLR rule, so every recipe's scheduler checkpoints alike)."""

    def __call__(self, step: int) -> float:
        return 1.0


def adapt_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey images for a colour model are repeated; colour images for a grey model become their mean."""
    if x.shape[1] == 1:
        return x.expand(-1, channels, -1, -1).contiguous()
    if channels == 1:
        return x.mean(1, keepdim=True)
    raise ValueError(f"the data has {x.shape[1]} channels, the model expects {channels}; convert the images, or "
                     "build the model with matching channels (e.g. -k in_chans=...).")


def grad_norm(params: Iterable[nn.Parameter]) -> torch.Tensor | float:
    """The total L2 norm of the gradients, as a tensor on their device (read back with the step's other logs)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    return torch.nn.utils.get_total_norm(grads)


def _set_requires_grad(params: Iterable[nn.Parameter], flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


def pairwise_diversity(images: torch.Tensor) -> float:
    """Mean per-pixel L2 distance between every pair of images (a measure of variety)."""
    flat = images.flatten(1).float()
    if flat.shape[0] < 2:
        return 0.0
    d = torch.cdist(flat, flat) / math.sqrt(flat.shape[1])
    n = flat.shape[0]
    return float(d.sum() / (n * (n - 1)))


CLIP_GRAD = Option("clip_grad", None, "float|none", "clip the gradient norm of each update to this value")
GAN_OPTIONS: tuple[Option, ...] = (
    Option("d_lr_mult", 1.0, "float", "the discriminator's LR relative to the generator's"),
    Option("beta1", 0.5, "float", "Adam's beta1"),
    Option("beta2", 0.999, "float", "Adam's beta2"),
    Option("diffaugment", None, "str|none", "a DiffAugment policy in front of every discriminator, e.g. "
           "color,translation,cutout"),
    CLIP_GRAD,
    Option("order", "DG", "str", "DG (D step then G step) or GD"),
    Option("lr_policy", "constant", "str", "constant, or linear: constant for n_epochs then linearly to 0 over "
           "n_epochs_decay"),
    Option("n_epochs", None, "int|none", "epochs at the full LR of the linear policy (default: half the "
           "schedule; fixed, the run can be extended exactly)"),
    Option("n_epochs_decay", None, "int|none", "epochs of linear decay (default: n_epochs)"),
)


POOL_PREFIX = "pool/"


def _with_defaults(options: tuple[Option, ...], **defaults: Any) -> tuple[Option, ...]:
    """``options`` with some defaults changed (a family's published setting)."""
    return tuple(replace(o, default=defaults[o.name]) if o.name in defaults else o for o in options)


class Recipe:
    """Base of the recipes: options, optimizers and schedulers, data preparation, the step and its parts.

    A recipe is a choice of parts, not a chain of overrides: ``batch`` (device + augmentation of a dataset batch),
    ``plan`` (the step functions of one training step, in order), ``evaluator`` (validation metrics), ``grid``
    (the sample picture) and ``variety`` (the mode-collapse measure). Each task's recipe below names its parts.

    Args:
        model: the unwrapped model.
        call: runs the model (possibly DDP-wrapped): ``call(*inputs)`` for classifiers, ``call(method, batch)`` for
            GAN loss methods.
        lr: the base learning rate (None: the recipe's default).
        batch_size: the per-process batch size (some defaults scale with it).
        options: recipe and engine options, checked against ``schema`` and the engine's table.
        device: where training runs.
        autocast: a context factory for mixed precision (``contextlib.nullcontext`` when off).
        scaler: a ``torch.amp.GradScaler`` (disabled unless fp16 on CUDA).
    """

    task = ""
    defaults: dict[str, Any] = {"batch_size": 64, "lr": 2e-4, "epochs": 10}
    schema: tuple[Option, ...] = (CLIP_GRAD,)
    option_defaults: dict[str, Any] = {"clip_grad": None}
    # engine options (vgzoo.train.options.ENGINE_OPTIONS) whose default this recipe's method changes, e.g. BigGAN's
    # G EMA: the engine reads them where it resolves the run's options; an explicit -o KEY=VALUE wins
    engine_defaults: dict[str, Any] = {}
    best_metric: tuple[str, str] | None = None  # (metric key, "min" | "max")
    own_precision = False  # True: the model's networks pick their dtypes; the engine adds no autocast or scaler
    batch: Callable = staticmethod(lambda recipe, batch, train: batch)
    evaluator: Callable | None = None
    grid: Callable | None = None
    variety: Callable | None = None
    real_batch: Callable | None = None  # dataset -> raw batch of real images for ``variety``

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.option_defaults = {o.name: o.default for o in cls.schema}
        unknown = sorted(set(cls.engine_defaults) - set(ENGINE_DEFAULTS))
        if unknown:
            raise TypeError(f"{cls.__name__}.engine_defaults names {unknown}, which are not engine options; the "
                            f"engine's are {sorted(ENGINE_DEFAULTS)} (a recipe's own defaults go in its schema).")

    def __init__(self, model: nn.Module, call: Callable, *, lr: float | None, batch_size: int, options: dict,
                 device: torch.device, autocast: Callable = contextlib.nullcontext, scaler=None) -> None:
        checked = check_options(options, self.schema, f"{type(self).__name__} (task {self.task!r})")
        self.options = {**self.option_defaults, **{k: v for k, v in checked.items() if k in self.option_defaults}}
        self.model, self.call, self.device = model, call, device
        self.batch_size = batch_size
        self.lr = float(lr) if lr is not None else self.default_lr(batch_size)
        self.autocast = autocast
        self.scaler = scaler if scaler is not None else torch.amp.GradScaler(device.type, enabled=False)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        cfg = getattr(model, "pretrained_cfg", {}) or {}
        self.mean = cfg.get("mean", (0.5, 0.5, 0.5))
        self.std = cfg.get("std", (0.5, 0.5, 0.5))
        self.train_transform = None
        self.eval_transform = None

    @classmethod
    def default_batch_size(cls, model: nn.Module, options: dict[str, Any], world_size: int) -> int:
        """The per-process batch when none is given (a family may derive it from the model, as StyleGAN2's
        configurations do from the resolution)."""
        return int(cls.defaults["batch_size"])

    def default_lr(self, batch_size: int) -> float:
        return float(self.defaults["lr"])

    # -- optimizers and the LR schedule
    def build(self, horizon: int, steps_per_epoch: int) -> None:
        """Create the optimizers and schedulers for an LR schedule planned over ``horizon`` steps."""
        raise NotImplementedError

    def fused(self, opt: str = "adam") -> dict[str, bool]:
        """``fused=True`` for torch's Adam and AdamW on CUDA: one kernel updates every parameter, where the default
        (foreach) path launches several per step and parameter group. Elsewhere torch's default is kept."""
        return {"fused": True} if self.device.type == "cuda" and opt.lower() in ("adam", "adamw") else {}

    def uses_horizon(self) -> bool:
        """Whether the LR schedule depends on the planned horizon (then a run cannot be extended past it exactly)."""
        return False

    def set_horizon(self, horizon: int, steps_per_epoch: int, step: int) -> None:
        """Re-plan the rest of the LR schedule to end at ``horizon`` (an explicit ``schedule_steps`` on resume)."""

    def scheduler_state(self) -> dict[str, Any]:
        return {name: s.state_dict() for name, s in self.schedulers.items()}

    def load_scheduler_state(self, state: dict[str, Any]) -> None:
        for name, s in self.schedulers.items():
            if name in state:
                s.load_state_dict(state[name])

    def step_schedulers(self, step: int) -> None:
        with warnings.catch_warnings():  # an optimizer that sat out a step (L1 pre-training) is fine
            warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*")
            for s in self.schedulers.values():
                s.step()

    def lr_now(self) -> float:
        first = next(iter(self.optimizers.values()))
        return float(first.param_groups[0]["lr"])

    # -- data
    def make_transforms(self, augment: dict[str, Any]) -> None:
        from ..augment import create_transform

        self.train_transform = create_transform(self.model, train=True, **augment)
        self.eval_transform = create_transform(self.model, train=False)

    def to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = {k: (v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
               for k, v in batch.items()}
        want = (getattr(self.model, "pretrained_cfg", {}) or {}).get("input_size", (None,))[0]
        for key in ("image", "A", "B"):
            x = out.get(key)
            if want and isinstance(x, torch.Tensor) and x.dim() == 4 and x.shape[1] != want:
                out[key] = adapt_channels(x, int(want))
        return out

    def prepare(self, batch: dict[str, Any], train: bool = True) -> dict[str, Any]:
        """Move a dataset batch to the device and augment/normalise it (the recipe's ``batch`` part).

        Class labels are checked here, on the host, before the copy (:meth:`train_step` then trusts them on the
        device). On an accelerator the training transform checks the value range of the first batch only: each
        check reads the batch's min and max back, a host synchronisation per step, and the data path that passed
        it once (vgzoo's datasets return [0, 1] floats) does not change during a run.
        """
        num_classes = getattr(self.model, "num_classes", None)
        if isinstance(batch.get("label"), torch.Tensor) and num_classes:
            validate_labels(batch["label"], int(num_classes), what="the dataset's labels")
        out = self.batch(self, self.to_device(batch), train)
        if train and self.device.type != "cpu" and getattr(self.train_transform, "check_range", False):
            self.train_transform.check_range = False
        return out

    # -- training
    def plan(self, step: int) -> tuple[Callable, ...]:
        """The step functions of training step ``step``, in order."""
        raise NotImplementedError

    def train_step(self, batch: dict[str, Any], step: int) -> LossLogs:
        """One training step on a prepared batch; its logs stay on the device (the engine reads them back)."""
        logs: LossLogs = {}
        with label_values_checked():  # prepare() checked them on the host
            for part in self.plan(step):
                logs.update(part(self, batch))
        self.scaler.update()
        return logs

    def backward_step(self, loss: torch.Tensor, opt: torch.optim.Optimizer,
                      params: list[nn.Parameter]) -> torch.Tensor | float:
        """Backward, optional clipping, optimizer step; returns the gradient norm of ``params``."""
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(opt)
        norm = grad_norm(params)
        if self.options.get("clip_grad"):
            torch.nn.utils.clip_grad_norm_(params, float(self.options["clip_grad"]))
        self.scaler.step(opt)
        return norm

    # -- training state beyond optimizers
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The model's training state (a GAN's image pools), saved with checkpoints under ``pool/``."""
        if not isinstance(self.model, GANModel):
            return {}
        return {f"{POOL_PREFIX}{k}": v for k, v in self.model.training_state().items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if isinstance(self.model, GANModel):
            n = len(POOL_PREFIX)
            self.model.load_training_state({k[n:]: v for k, v in tensors.items() if k.startswith(POOL_PREFIX)})

    def before_save(self, ema: nn.Module | None) -> None:
        """Called on the main process before a checkpoint or the final folders are written, with the weights'
        moving average (or None). A recipe whose model keeps inference state outside the gradient path brings it up
        to date here (BigGAN's standing statistics); training never reads that state, so resume stays exact."""

    # -- evaluation and pictures (the recipe's parts)
    def evaluate(self, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
        return self.evaluator(self, batches) if self.evaluator is not None else {}

    def save_samples(self, fixed: dict[str, Any], path, title: str | None = None) -> None:
        """Write a sample grid for the fixed (prepared) batch, titled (model, step, seed)."""
        if self.grid is not None:
            self.grid(self, fixed, path, title)

    def diversity(self, fixed: dict[str, Any], real: dict[str, torch.Tensor] | None) -> tuple[float, float] | None:
        """(fake diversity, real diversity) for the mode-collapse check, or None where it does not apply."""
        return self.variety(self, fixed, real) if self.variety is not None and real is not None else None

    def unit(self, x: torch.Tensor) -> torch.Tensor:
        return plots.to_unit(x, self.mean, self.std)


# ------------------------------------------------------------------------------- real-batch parts
def first_items(dataset, n: int) -> dict[str, Any]:
    """The first ``n`` items of ``dataset``, collated."""
    from torch.utils.data import default_collate

    return default_collate([dataset[i] for i in range(min(n, len(dataset)))])


def first_images(dataset) -> dict[str, Any] | None:
    """Real images for the samples' diversity check: the first 32."""
    return first_items(dataset, 32)


def images_per_class(dataset, per_class: int = 16) -> dict[str, Any] | None:
    """Real images for the within-class diversity check: up to 16 per class (None without ``dataset.labels``)."""
    from torch.utils.data import default_collate

    labels = getattr(dataset, "labels", None)
    if labels is None:
        return None
    idx = []
    for c in torch.unique(labels).tolist():
        idx += torch.nonzero(labels == c).flatten()[:per_class].tolist()
    return default_collate([dataset[i] for i in idx])


# ------------------------------------------------------------------------------------ batch parts
def classification_batch(recipe: Recipe, batch: dict[str, Any], train: bool) -> dict[str, Any]:
    x, y = batch["image"], batch["label"]
    if train:
        x, target = recipe.train_transform(x, y)
    else:
        x, target = recipe.eval_transform(x), y
    return {"image": x, "target": target, "label": y}


def images_batch(recipe: Recipe, batch: dict[str, Any], train: bool) -> dict[str, Any]:
    t = recipe.train_transform if train else recipe.eval_transform
    return {**batch, "image": t(batch["image"])}


def labelled_images_batch(recipe: Recipe, batch: dict[str, Any], train: bool) -> dict[str, Any]:
    t = recipe.train_transform if train else recipe.eval_transform
    return {"image": t(batch["image"]), "label": batch["label"]}


def pair_batch(recipe: Recipe, batch: dict[str, Any], train: bool) -> dict[str, Any]:
    t = recipe.train_transform if train else recipe.eval_transform
    a, b = t(batch["A"], batch["B"])
    return {"A": a, "B": b}


# ------------------------------------------------------------------------------------- step parts
def classifier_step(recipe: Recipe, batch: dict[str, Any]) -> LossLogs:
    opt = recipe.optimizers["model"]
    opt.zero_grad(set_to_none=True)
    with recipe.autocast():
        logits = recipe.call(batch["image"])
        loss = F.cross_entropy(logits.float(), batch["target"])
    norm = recipe.backward_step(loss, opt, [p for g in opt.param_groups for p in g["params"]])
    return {"loss": loss.detach(), "grad_norm": norm}


def d_step(recipe: Recipe, batch: dict[str, Any]) -> LossLogs:
    """One discriminator update through the model's ``discriminator_loss``."""
    opt = recipe.optimizers["D"]
    opt.zero_grad(set_to_none=True)
    with recipe.autocast():
        loss, logs = recipe.call("discriminator_loss", batch)
    norm = recipe.backward_step(loss, opt, list(recipe.model.discriminator_parameters()))
    return {"D_loss": loss.detach(), "D_grad_norm": norm, **logs}


def g_step(recipe: Recipe, batch: dict[str, Any]) -> LossLogs:
    """One generator update through the model's ``generator_loss``; D's parameters get no gradients."""
    opt = recipe.optimizers["G"]
    d_params = list(recipe.model.discriminator_parameters())
    _set_requires_grad(d_params, False)
    try:
        opt.zero_grad(set_to_none=True)
        with recipe.autocast():
            loss, logs = recipe.call("generator_loss", batch)
        norm = recipe.backward_step(loss, opt, list(recipe.model.generator_parameters()))
    finally:
        _set_requires_grad(d_params, True)
    return {"G_loss": loss.detach(), "G_grad_norm": norm, **logs}


def l1_pretrain_step(recipe: Recipe, batch: dict[str, Any]) -> LossLogs:
    """A generator-only L1 step (pix2pix's optional pre-training)."""
    opt = recipe.optimizers["G"]
    opt.zero_grad(set_to_none=True)
    with recipe.autocast():
        loss = F.l1_loss(recipe.call("forward", batch["A"]), batch["B"])
    norm = recipe.backward_step(loss, opt, list(recipe.model.generator_parameters()))
    return {"G_L1_pretrain": loss.detach(), "G_grad_norm": norm}


GAN_STEPS = {"D": d_step, "G": g_step}


# ------------------------------------------------------------------------------- evaluator parts
@torch.no_grad()
def top1(recipe: Recipe, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
    correct = total = 0
    loss_sum = 0.0
    for batch in batches:
        b = recipe.prepare(batch, train=False)
        with recipe.autocast():
            logits = recipe.model(b["image"]).float()
        loss_sum += float(F.cross_entropy(logits, b["label"], reduction="sum"))
        correct += int((logits.argmax(1) == b["label"]).sum())
        total += int(b["label"].numel())
    return {"top1": 100.0 * correct / total, "val_loss": loss_sum / total} if total else {}


@torch.no_grad()
def paired_l1_psnr_ssim(recipe: Recipe, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
    from kornia.metrics import psnr, ssim

    n, l1, p, s = 0, 0.0, 0.0, 0.0
    for batch in batches:
        b = recipe.prepare(batch, train=False)
        fake, real = recipe.unit(recipe.model(b["A"])), recipe.unit(b["B"])
        k = real.shape[0]
        l1 += float((fake - real).abs().mean()) * k
        p += float(psnr(fake, real, 1.0)) * k
        s += float(ssim(fake, real, 7).mean()) * k
        n += k
    return {"val_l1": l1 / n, "val_psnr": p / n, "val_ssim": s / n} if n else {}


@torch.no_grad()
def cycle_l1(recipe: Recipe, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
    model = recipe.model
    if not isinstance(model, Translator) or not {"AtoB", "BtoA"} <= set(model.directions):
        return {}
    g_ab, g_ba = model.inference_generator("AtoB"), model.inference_generator("BtoA")
    n, cyc = 0, 0.0
    for batch in batches:
        b = recipe.prepare(batch, train=False)
        a, bb = b["A"], b["B"]
        k = min(a.shape[0], bb.shape[0])
        cyc += float(0.5 * ((g_ba(g_ab(a)) - a).abs().mean() + (g_ab(g_ba(bb)) - bb).abs().mean())) * k
        n += k
    return {"val_cycle_l1": cyc / n} if n else {}


def _restore(recipe: Recipe, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    if not isinstance(recipe.model, Restorer):
        return None
    out = recipe.model.restore(clean, generator=torch.Generator(device="cpu").manual_seed(99))
    return out["degraded"], out["restored"]


@torch.no_grad()
def restoration_l1(recipe: Recipe, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
    total, l1 = 0, 0.0
    for batch in batches:
        clean = recipe.prepare(batch, train=False)["image"]
        out = _restore(recipe, clean)
        if out is None:
            return {}
        l1 += float((recipe.unit(out[1]) - recipe.unit(clean)).abs().mean()) * clean.shape[0]
        total += clean.shape[0]
    return {"val_l1": l1 / total} if total else {}


# ------------------------------------------------------------------------------------ grid parts
# Each grid part writes one picture a person reads: column headers, row labels and a title (model, step, seed).
@torch.no_grad()
def samples_grid(recipe: Recipe, fixed: dict[str, Any], path, title: str | None = None) -> None:
    """A row of real images above 4 rows of samples of an unconditional generator."""
    model = recipe.model
    if isinstance(model, UnconditionalSampler):
        fake = model.sample(32, generator=torch.Generator(device="cpu").manual_seed(1234))
    else:
        fake = model(*model.example_inputs(32))
    fake = recipe.unit(fake).view(4, 8, *fake.shape[1:])
    real = fixed.get("image") if isinstance(fixed, dict) else None
    rows, labels = list(fake), ["fake"] * 4
    if isinstance(real, torch.Tensor) and real.shape[0] >= 8 and real.shape[1:] == fake.shape[2:]:
        rows, labels = [recipe.unit(real[:8]), *rows], ["real", *labels]
    plots.save_grid([list(r) for r in rows], path, scale=2, row_labels=labels, title=title)


def _class_samples(recipe: Recipe, per_class: int, seed: int) -> torch.Tensor:
    k = int(recipe.model.num_classes)
    labels = torch.arange(k).repeat_interleave(per_class)
    g = torch.Generator(device="cpu").manual_seed(seed)
    fake = recipe.model.sample(labels, generator=g)
    return fake.view(k, per_class, *fake.shape[1:])


@torch.no_grad()
def class_grid(recipe: Recipe, fixed: dict[str, Any], path, title: str | None = None) -> None:
    """A row of 10 samples per class, each row labelled with its class."""
    if not isinstance(recipe.model, ConditionalSampler):
        return
    fake = _class_samples(recipe, 10, 1234)
    plots.save_grid(recipe.unit(fake.flatten(0, 1)).view(fake.shape), path, scale=2,
                    row_labels=[f"class {c}" for c in range(fake.shape[0])], title=title)


def _rows(recipe: Recipe, columns: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """One row per image of the columns, grey columns widened to the colour ones."""
    rows = []
    for i in range(columns[0].shape[0]):
        row = [recipe.unit(x[i:i + 1])[0] for x in columns]
        c = max(r.shape[0] for r in row)
        rows.append([r.expand(c, -1, -1) if r.shape[0] == 1 else r for r in row])
    return rows


@torch.no_grad()
def translation_grid(recipe: Recipe, fixed: dict[str, Any], path, title: str | None = None) -> None:
    """Rows of A | G(A) | B."""
    a, b = fixed["A"][:8], fixed["B"][:8]
    plots.save_grid(_rows(recipe, [a, recipe.model(a), b]), path, scale=2, headers=plots.PAIRED_HEADERS,
                    title=title)


@torch.no_grad()
def cycle_grid(recipe: Recipe, fixed: dict[str, Any], path, title: str | None = None) -> None:
    """Rows of A | G_AB(A) | G_BA(G_AB(A)) | B | G_BA(B) | G_AB(G_BA(B)): both directions and both cycles."""
    model = recipe.model
    a, b = fixed["A"][:4], fixed["B"][:4]
    fake_b, fake_a = model.G_AB(a), model.G_BA(b)
    plots.save_grid(_rows(recipe, [a, fake_b, model.G_BA(fake_b), b, fake_a, model.G_AB(fake_a)]), path, scale=2,
                    headers=plots.CYCLE_HEADERS, title=title)


@torch.no_grad()
def restoration_grid(recipe: Recipe, fixed: dict[str, Any], path, title: str | None = None) -> None:
    """Rows of degraded | restored | clean (the samples grid for a model without ``degrade``)."""
    clean = fixed["image"][:8]
    out = _restore(recipe, clean)
    if out is None:
        return samples_grid(recipe, fixed, path, title)
    degraded, restored = out
    c = clean.shape[1]
    shown = degraded[:, :c] if degraded.shape[1] >= c else degraded.expand(-1, c, -1, -1)
    plots.save_grid(_rows(recipe, [shown, restored, clean]), path, scale=2, headers=plots.RESTORATION_HEADERS,
                    title=title)


# --------------------------------------------------------------------------------- variety parts
@torch.no_grad()
def samples_variety(recipe: Recipe, fixed: dict[str, Any], real: dict[str, torch.Tensor]) -> tuple[float, float] | None:
    """Diversity of samples across z against the real images' diversity."""
    if not isinstance(recipe.model, UnconditionalSampler):
        return None
    images = real["image"]
    fake = recipe.model.sample(min(32, images.shape[0]), generator=torch.Generator(device="cpu").manual_seed(4321))
    return pairwise_diversity(recipe.unit(fake)), pairwise_diversity(recipe.unit(images[:32]))


@torch.no_grad()
def class_variety(recipe: Recipe, fixed: dict[str, Any], real: dict[str, torch.Tensor]) -> tuple[float, float] | None:
    """Mean within-class diversity across z, against the real images' within-class diversity."""
    if not isinstance(recipe.model, ConditionalSampler):
        return None
    fake = recipe.unit(_class_samples(recipe, 16, 4321))
    fake_div = sum(pairwise_diversity(f) for f in fake) / fake.shape[0]
    images, labels = recipe.unit(real["image"]), real["label"]
    per = [pairwise_diversity(images[labels == c][:16]) for c in range(fake.shape[0]) if int((labels == c).sum()) > 1]
    if not per:
        return None
    return fake_div, sum(per) / len(per)


# --------------------------------------------------------------------------------- classification
class ClassificationRecipe(Recipe):
    """DeiT's recipe for vision transformers trained from scratch (Touvron et al. 2021)."""

    task = "classification"
    defaults = {"batch_size": 64, "lr": 5e-4, "epochs": 30}
    schema = (
        Option("opt", "adamw", "str", "timm optimizer name"),
        Option("weight_decay", 0.05, "float", "weight decay"),
        Option("warmup_epochs", 5, "int|float", "LR warm-up epochs (at most a fifth of the schedule)"),
        Option("min_lr", 1e-5, "float", "the cosine schedule's final LR"),
        Option("warmup_lr", 1e-6, "float", "the warm-up's first LR"),
        Option("label_smoothing", 0.1, "float", "label smoothing of the targets"),
        Option("mixup", True, "bool", "MixUp (vgzoo.augment)"),
        Option("cutmix", True, "bool", "CutMix (vgzoo.augment)"),
        CLIP_GRAD,
    )
    best_metric = ("top1", "max")
    batch = staticmethod(classification_batch)
    evaluator = staticmethod(top1)

    def default_lr(self, batch_size: int) -> float:
        return 5e-4 * batch_size / 512  # DeiT's linear scaling rule

    def make_transforms(self, augment: dict[str, Any]) -> None:
        o = self.options
        mixing = {"mixup": bool(o["mixup"]), "cutmix": bool(o["cutmix"]),
                  "label_smoothing": float(o["label_smoothing"])}
        super().make_transforms({**mixing, **augment})

    def build(self, horizon: int, steps_per_epoch: int) -> None:
        from timm.optim import create_optimizer_v2
        from timm.scheduler import CosineLRScheduler

        o = self.options
        self.optimizers = {"model": create_optimizer_v2(self.model, o["opt"], lr=self.lr,
                                                        weight_decay=float(o["weight_decay"]), **self.fused(o["opt"]))}
        warmup = min(int(o["warmup_epochs"] * steps_per_epoch), max(0, horizon // 5))
        self.schedulers = {"model": CosineLRScheduler(
            self.optimizers["model"], t_initial=max(1, horizon - warmup), lr_min=float(o["min_lr"]),
            warmup_t=warmup, warmup_lr_init=float(o["warmup_lr"]), warmup_prefix=True, t_in_epochs=False)}

    def uses_horizon(self) -> bool:
        return True

    def set_horizon(self, horizon: int, steps_per_epoch: int, step: int) -> None:
        s = self.schedulers["model"]
        s.t_initial = max(1, horizon - s.warmup_t)
        s.step_update(step)

    def step_schedulers(self, step: int) -> None:
        self.schedulers["model"].step_update(num_updates=step)

    def plan(self, step: int) -> tuple[Callable, ...]:
        return (classifier_step,)


# ------------------------------------------------------------------------------------------- GANs
class GANRecipe(Recipe):
    """The generic adversarial recipe (generation): D step then G step, Adam 2e-4 (0.5, 0.999), sample grids."""

    task = "generation"
    defaults = {"batch_size": 64, "lr": 2e-4, "epochs": 20}
    schema = GAN_OPTIONS
    batch = staticmethod(images_batch)
    grid = staticmethod(samples_grid)
    variety = staticmethod(samples_variety)
    real_batch = staticmethod(first_images)

    def __init__(self, model: nn.Module, call: Callable, **kwargs: Any) -> None:
        if not isinstance(model, GANModel):
            raise TypeError(
                f"task {self.task!r} trains a GAN through vgzoo.protocols.GANModel, but {type(model).__name__} is not "
                "one: subclass GANModel and implement generators(), discriminators(), generator_loss(), "
                "discriminator_loss() and example_batch() (see docs/plugins.md)."
            )
        super().__init__(model, call, **kwargs)
        if self.options["order"] not in ("DG", "GD"):
            raise ValueError(f"option order={self.options['order']!r}: expected 'DG' or 'GD'.")
        if self.options["lr_policy"] not in ("constant", "linear"):
            raise ValueError(f"option lr_policy={self.options['lr_policy']!r}: expected 'constant' or 'linear'.")
        self._diffaugment_hooks = []
        if self.options["diffaugment"]:
            self._install_diffaugment(str(self.options["diffaugment"]))

    def _install_diffaugment(self, policy: str) -> None:
        """Augment every discriminator input with DiffAugment through a forward pre-hook (state dict unchanged)."""
        from ..augment import DiffAugment

        self.diffaugment = DiffAugment(policy)

        def hook(module, args):
            return (self.diffaugment(args[0]), *args[1:])

        for part in self.model.discriminators().values():
            self._diffaugment_hooks.append(part.register_forward_pre_hook(hook))
        if not self._diffaugment_hooks:
            raise ValueError(f"option diffaugment: {type(self.model).__name__}.discriminators() is empty; there is "
                             "no discriminator to augment in front of.")

    def build(self, horizon: int, steps_per_epoch: int) -> None:
        o = self.options
        betas = (float(o["beta1"]), float(o["beta2"]))
        self.optimizers = {
            "G": torch.optim.Adam(self.model.generator_parameters(), lr=self.lr, betas=betas, **self.fused()),
            "D": torch.optim.Adam(self.model.discriminator_parameters(), lr=self.lr * float(o["d_lr_mult"]),
                                  betas=betas, **self.fused()),
        }
        rule = LinearDecay(*self._split(horizon, steps_per_epoch)) if o["lr_policy"] == "linear" else Constant()
        self.schedulers = {k: torch.optim.lr_scheduler.LambdaLR(opt, rule) for k, opt in self.optimizers.items()}

    def _split(self, horizon: int, steps_per_epoch: int) -> tuple[int, int]:
        o = self.options
        if o["n_epochs"] is not None:
            n_const = int(o["n_epochs"]) * steps_per_epoch
            n_decay = int(o["n_epochs_decay"] if o["n_epochs_decay"] is not None else o["n_epochs"]) * steps_per_epoch
            return n_const, n_decay
        return horizon // 2, horizon - horizon // 2

    def uses_horizon(self) -> bool:
        return self.options["lr_policy"] == "linear" and self.options["n_epochs"] is None

    def set_horizon(self, horizon: int, steps_per_epoch: int, step: int) -> None:
        """Continue from the current LR: constant while the new plan is, then linearly to 0 at ``horizon``."""
        if not self.uses_horizon():
            return
        for s in self.schedulers.values():
            for rule in s.lr_lambdas:
                now = rule(step)
                n_const = max(self._split(horizon, steps_per_epoch)[0], step) if now >= 1.0 else step
                rule.n_constant, rule.n_decay, rule.scale = n_const, max(0, horizon - n_const), now

    def load_scheduler_state(self, state: dict[str, Any]) -> None:
        for name, s in self.schedulers.items():
            if name in state:
                rules = s.lr_lambdas
                s.load_state_dict(state[name])
                s.lr_lambdas = rules  # load_state_dict updated the rule objects' fields in place

    def plan(self, step: int) -> tuple[Callable, ...]:
        if step < int(self.options.get("pretrain_l1_steps") or 0):
            return (l1_pretrain_step,)
        return tuple(GAN_STEPS[part] for part in self.options["order"])


class RestorationRecipe(GANRecipe):
    """The generic GAN recipe for restoration; grids show degraded | restored | clean, val L1 is measured."""

    task = "restoration"
    best_metric = ("val_l1", "min")
    evaluator = staticmethod(restoration_l1)
    grid = staticmethod(restoration_grid)
    variety = None
    real_batch = None


class ConditionalGANRecipe(GANRecipe):
    """cGAN: alternating D and G steps, Adam 2e-4 (0.5, 0.999), optional DiffAugment; class-by-sample grids."""

    task = "conditional_generation"
    defaults = {"batch_size": 64, "lr": 2e-4, "epochs": 100}  # ~2200 steps on digits: past the quality targets
    batch = staticmethod(labelled_images_batch)
    grid = staticmethod(class_grid)
    variety = staticmethod(class_variety)
    real_batch = staticmethod(images_per_class)


class Pix2PixRecipe(GANRecipe):
    """pix2pix: D step then G step; optional L1-only generator pre-training (``pretrain_l1_steps``)."""

    task = "paired_translation"
    defaults = {"batch_size": 1, "lr": 2e-4, "epochs": 200}
    schema = (*_with_defaults(GAN_OPTIONS, lr_policy="linear"),
              Option("pretrain_l1_steps", 0, "int", "generator-only L1 steps before the adversarial ones"))
    best_metric = ("val_l1", "min")
    batch = staticmethod(pair_batch)
    evaluator = staticmethod(paired_l1_psnr_ssim)
    grid = staticmethod(translation_grid)
    variety = None
    real_batch = None


class CycleGANRecipe(GANRecipe):
    """CycleGAN: G step then D step with the model's image pools, constant LR then linear decay to 0."""

    task = "unpaired_translation"
    defaults = {"batch_size": 1, "lr": 2e-4, "epochs": 200}
    schema = _with_defaults(GAN_OPTIONS, lr_policy="linear", order="GD")
    best_metric = ("val_cycle_l1", "min")
    batch = staticmethod(pair_batch)
    evaluator = staticmethod(cycle_l1)
    grid = staticmethod(cycle_grid)
    variety = None
    real_batch = None


#: The recipes of the built-in tasks (the task registry, vgzoo.tasks, names them; plugin tasks name their own).
RECIPES: dict[str, type[Recipe]] = {name: globals()[t.recipe.partition(":")[2]] for name, t in BUILTIN_TASKS.items()}


def recipe_for(task: str) -> type[Recipe]:
    """The recipe class of ``task`` (from its record in :mod:`vgzoo.tasks`).

    Raises:
        ValueError: an unknown task (the message lists the known ones).
    """
    cls = get_task(task).recipe_class()
    if not (isinstance(cls, type) and issubclass(cls, Recipe)):
        raise TypeError(f"task {task!r}: its recipe {cls!r} is not a vgzoo.train.recipes.Recipe subclass.")
    return cls
