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

Every GAN recipe works only through the model protocol (``generator_loss``, ``discriminator_loss``,
``generator_parameters``, ``discriminator_parameters``), so a plugin model of a known task trains unchanged.
Recipe options (``options=`` of :func:`vgzoo.train.fit`, ``-o key=value`` on the command line) are listed in each
recipe's ``option_defaults``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import TASKS
from . import plots

GAN_PARTS = ("generator", "discriminator", "G_AB", "G_BA", "D_A", "D_B")
DISCRIMINATORS = ("discriminator", "D_A", "D_B")


class LinearDecay:
    """LR factor of the pix2pix/CycleGAN reference: 1 for ``n_constant`` steps, then linearly to 0 over ``n_decay``."""

    def __init__(self, n_constant: int, n_decay: int) -> None:
        self.n_constant = int(n_constant)
        self.n_decay = int(n_decay)

    def __call__(self, step: int) -> float:
        return 1.0 - max(0, step - self.n_constant) / float(self.n_decay + 1)


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


def grad_norm(params: Iterable[nn.Parameter]) -> float:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.nn.utils.get_total_norm(grads))


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


class Recipe:
    """Base of the recipes: optimizers, schedulers, one training step, evaluation and pictures.

    Args:
        model: the unwrapped model.
        call: runs the model (possibly DDP-wrapped): ``call(*inputs)`` for classifiers, ``call(method, batch)`` for
            GAN loss methods.
        lr: the base learning rate (None: the recipe's default).
        batch_size: the per-process batch size (some defaults scale with it).
        options: recipe options; unknown names are refused with the list of known ones.
        device: where training runs.
        autocast: a context factory for mixed precision (``contextlib.nullcontext`` when off).
        scaler: a ``torch.amp.GradScaler`` (disabled unless fp16 on CUDA).
    """

    task = ""
    defaults: dict[str, Any] = {"batch_size": 64, "lr": 2e-4, "epochs": 10}
    option_defaults: dict[str, Any] = {"clip_grad": None}
    best_metric: tuple[str, str] | None = None  # (metric key, "min" | "max")

    def __init__(self, model: nn.Module, call: Callable, *, lr: float | None, batch_size: int, options: dict,
                 device: torch.device, autocast: Callable = contextlib.nullcontext, scaler=None) -> None:
        known = {**Recipe.option_defaults, **self.option_defaults}
        unknown = sorted(set(options) - set(known) - {"augment", "data", "monitor", "ema", "ema_decay",
                                                      "save_every", "keep_last", "num_workers", "schedule_steps",
                                                      "plot_every", "threads"})
        if unknown:
            raise ValueError(
                f"{type(self).__name__} (task {self.task!r}): unknown option(s) {', '.join(unknown)}. Known: "
                f"{', '.join(sorted(known))}, plus augment, data, monitor, ema, ema_decay, save_every, keep_last, "
                "num_workers, schedule_steps, plot_every, threads."
            )
        self.options = {**known, **{k: v for k, v in options.items() if k in known}}
        self.model, self.call, self.device = model, call, device
        self.batch_size = batch_size
        self.lr = float(lr) if lr is not None else self.default_lr(batch_size)
        self.autocast, self.scaler = autocast, scaler
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        cfg = getattr(model, "pretrained_cfg", {}) or {}
        self.mean = cfg.get("mean", (0.5, 0.5, 0.5))
        self.std = cfg.get("std", (0.5, 0.5, 0.5))
        self.train_transform = None
        self.eval_transform = None

    def default_lr(self, batch_size: int) -> float:
        return float(self.defaults["lr"])

    # -- building
    def build(self, total_steps: int, steps_per_epoch: int) -> None:
        """Create the optimizers and schedulers for a run of ``total_steps``."""
        raise NotImplementedError

    def set_horizon(self, total_steps: int, steps_per_epoch: int) -> None:
        """Stretch the LR schedule to a new total (``--resume --steps`` beyond the planned end)."""

    def scheduler_state(self) -> dict[str, Any]:
        return {name: s.state_dict() for name, s in self.schedulers.items()}

    def load_scheduler_state(self, state: dict[str, Any]) -> None:
        for name, s in self.schedulers.items():
            if name in state:
                s.load_state_dict(state[name])

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
        """Move a dataset batch to the device and augment/normalise it."""
        raise NotImplementedError

    # -- training
    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        raise NotImplementedError

    def _backward_step(self, loss: torch.Tensor, opt: torch.optim.Optimizer, params: list[nn.Parameter]) -> float:
        """Backward, optional clipping, optimizer step; returns the gradient norm of ``params``."""
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(opt)
        norm = grad_norm(params)
        if self.options.get("clip_grad"):
            torch.nn.utils.clip_grad_norm_(params, float(self.options["clip_grad"]))
        self.scaler.step(opt)
        return norm

    def step_schedulers(self, step: int) -> None:
        with warnings.catch_warnings():  # an optimizer that sat out a step (L1 pre-training) is fine
            warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*")
            for s in self.schedulers.values():
                s.step()

    # -- training state beyond optimizers
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Image pools and other tensors of the model's training state."""
        out = {}
        for name, module in self.model.named_modules():
            if hasattr(module, "state_tensors") and hasattr(module, "load_state_tensors"):
                for k, v in module.state_tensors().items():
                    out[f"pool/{name}/{k}"] = v
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        for name, module in self.model.named_modules():
            if hasattr(module, "state_tensors") and hasattr(module, "load_state_tensors"):
                prefix = f"pool/{name}/"
                module.load_state_tensors({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)},
                                          device=self.device)

    # -- evaluation and pictures
    def evaluate(self, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
        return {}

    def save_samples(self, fixed: dict[str, Any], path) -> None:
        """Write a sample grid for the fixed (prepared) batch."""

    def diversity(self, fixed: dict[str, Any], real: dict[str, torch.Tensor] | None) -> tuple[float, float] | None:
        """(fake diversity, real diversity) for the mode-collapse check, or None where it does not apply."""
        return None

    def unit(self, x: torch.Tensor) -> torch.Tensor:
        return plots.to_unit(x, self.mean, self.std)


# --------------------------------------------------------------------------------- classification
class ClassificationRecipe(Recipe):
    """DeiT's recipe for vision transformers trained from scratch (Touvron et al. 2021)."""

    task = "classification"
    defaults = {"batch_size": 64, "lr": 5e-4, "epochs": 30}
    option_defaults = {
        "opt": "adamw", "weight_decay": 0.05, "warmup_epochs": 5, "min_lr": 1e-5, "warmup_lr": 1e-6,
        "label_smoothing": 0.1, "mixup": True, "cutmix": True, "clip_grad": None,
    }
    best_metric = ("top1", "max")

    def default_lr(self, batch_size: int) -> float:
        return 5e-4 * batch_size / 512  # DeiT's linear scaling rule

    def make_transforms(self, augment: dict[str, Any]) -> None:
        from ..augment import create_transform

        o = self.options
        mixing = {"mixup": bool(o["mixup"]), "cutmix": bool(o["cutmix"]), "label_smoothing": float(o["label_smoothing"])}
        self.train_transform = create_transform(self.model, train=True, **{**mixing, **augment})
        self.eval_transform = create_transform(self.model, train=False)

    def build(self, total_steps: int, steps_per_epoch: int) -> None:
        from timm.optim import create_optimizer_v2
        from timm.scheduler import CosineLRScheduler

        o = self.options
        self.optimizers = {"model": create_optimizer_v2(self.model, o["opt"], lr=self.lr,
                                                        weight_decay=float(o["weight_decay"]))}
        warmup = min(int(o["warmup_epochs"] * steps_per_epoch), max(0, total_steps // 5))
        self.schedulers = {"model": CosineLRScheduler(
            self.optimizers["model"], t_initial=max(1, total_steps - warmup), lr_min=float(o["min_lr"]),
            warmup_t=warmup, warmup_lr_init=float(o["warmup_lr"]), warmup_prefix=True, t_in_epochs=False)}

    def set_horizon(self, total_steps: int, steps_per_epoch: int) -> None:
        s = self.schedulers["model"]
        s.t_initial = max(1, total_steps - s.warmup_t)
        s.step_update(getattr(self, "_last_step", 0))

    def step_schedulers(self, step: int) -> None:
        self._last_step = step
        self.schedulers["model"].step_update(num_updates=step)

    def prepare(self, batch: dict[str, Any], train: bool = True) -> dict[str, Any]:
        batch = self.to_device(batch)
        x, y = batch["image"], batch["label"]
        if train:
            x, target = self.train_transform(x, y)
        else:
            x, target = self.eval_transform(x), y
        return {"image": x, "target": target, "label": y}

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        with self.autocast():
            logits = self.call(batch["image"])
            loss = F.cross_entropy(logits.float(), batch["target"])
        norm = self._backward_step(loss, opt, [p for g in opt.param_groups for p in g["params"]])
        self.scaler.update()
        return {"loss": float(loss.detach()), "grad_norm": norm}

    @torch.no_grad()
    def evaluate(self, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
        correct = total = 0
        loss_sum = 0.0
        for batch in batches:
            b = self.prepare(batch, train=False)
            with self.autocast():
                logits = self.model(b["image"]).float()
            loss_sum += float(F.cross_entropy(logits, b["label"], reduction="sum"))
            correct += int((logits.argmax(1) == b["label"]).sum())
            total += int(b["label"].numel())
        if not total:
            return {}
        return {"top1": 100.0 * correct / total, "val_loss": loss_sum / total}


# ------------------------------------------------------------------------------------------- GANs
class GANRecipe(Recipe):
    """The generic adversarial recipe (generation and restoration): D step then G step, Adam 2e-4 (0.5, 0.999).

    Options: ``d_lr_mult`` (D's LR relative to G's), ``beta1``/``beta2``, ``diffaugment`` (a DiffAugment policy put in
    front of every discriminator, e.g. ``"color,translation,cutout"``), ``clip_grad``, ``order`` ("DG" or "GD"),
    ``lr_policy`` ("constant" or "linear": constant for ``n_epochs`` then linear decay over ``n_epochs_decay``).
    """

    task = "generation"
    defaults = {"batch_size": 64, "lr": 2e-4, "epochs": 20}
    option_defaults = {
        "d_lr_mult": 1.0, "beta1": 0.5, "beta2": 0.999, "diffaugment": None, "clip_grad": None, "order": "DG",
        "lr_policy": "constant", "n_epochs": None, "n_epochs_decay": None,
    }

    def __init__(self, model: nn.Module, call: Callable, **kwargs: Any) -> None:
        super().__init__(model, call, **kwargs)
        for method in ("generator_loss", "discriminator_loss", "generator_parameters", "discriminator_parameters"):
            if not callable(getattr(model, method, None)):
                raise TypeError(
                    f"task {self.task!r} trains a GAN through the model protocol, but {type(model).__name__} has no "
                    f"{method}(); see ARCHITECTURE.md 'Model protocol'."
                )
        if self.options["order"] not in ("DG", "GD"):
            raise ValueError(f"option order={self.options['order']!r}: expected 'DG' or 'GD'.")
        self._diffaugment_hooks = []
        if self.options["diffaugment"]:
            self._install_diffaugment(str(self.options["diffaugment"]))

    def _install_diffaugment(self, policy: str) -> None:
        """Augment every discriminator input with DiffAugment through a forward pre-hook (state dict unchanged)."""
        from ..augment import DiffAugment

        self.diffaugment = DiffAugment(policy)

        def hook(module, args):
            return (self.diffaugment(args[0]), *args[1:])

        for name in DISCRIMINATORS:
            part = getattr(self.model, name, None)
            if isinstance(part, nn.Module):
                self._diffaugment_hooks.append(part.register_forward_pre_hook(hook))
        if not self._diffaugment_hooks:
            raise ValueError(f"option diffaugment: {type(self.model).__name__} has none of the discriminator "
                             f"attributes {DISCRIMINATORS} to augment in front of.")

    def build(self, total_steps: int, steps_per_epoch: int) -> None:
        o = self.options
        betas = (float(o["beta1"]), float(o["beta2"]))
        self.optimizers = {
            "G": torch.optim.Adam(self.model.generator_parameters(), lr=self.lr, betas=betas),
            "D": torch.optim.Adam(self.model.discriminator_parameters(), lr=self.lr * float(o["d_lr_mult"]),
                                  betas=betas),
        }
        rule = self._rule(total_steps, steps_per_epoch)
        self.schedulers = {k: torch.optim.lr_scheduler.LambdaLR(opt, rule) for k, opt in self.optimizers.items()}

    def _split(self, total_steps: int, steps_per_epoch: int) -> tuple[int, int]:
        o = self.options
        if o["n_epochs"] is not None:
            n_const = int(o["n_epochs"]) * steps_per_epoch
            n_decay = int(o["n_epochs_decay"] if o["n_epochs_decay"] is not None else o["n_epochs"]) * steps_per_epoch
        else:
            n_const = total_steps // 2
            n_decay = total_steps - n_const
        return n_const, n_decay

    def _rule(self, total_steps: int, steps_per_epoch: int):
        if self.options["lr_policy"] == "constant":
            return Constant()
        if self.options["lr_policy"] != "linear":
            raise ValueError(f"option lr_policy={self.options['lr_policy']!r}: expected 'constant' or 'linear'.")
        return LinearDecay(*self._split(total_steps, steps_per_epoch))

    def set_horizon(self, total_steps: int, steps_per_epoch: int) -> None:
        if self.options["lr_policy"] != "linear":
            return
        n_const, n_decay = self._split(total_steps, steps_per_epoch)
        for s in self.schedulers.values():
            for rule in s.lr_lambdas:
                rule.n_constant, rule.n_decay = n_const, n_decay

    def load_scheduler_state(self, state: dict[str, Any]) -> None:
        for name, s in self.schedulers.items():
            if name in state:
                rules = s.lr_lambdas
                s.load_state_dict(state[name])
                s.lr_lambdas = rules  # load_state_dict updated the rule objects' fields in place

    def prepare(self, batch: dict[str, Any], train: bool = True) -> dict[str, Any]:
        batch = self.to_device(batch)
        t = self.train_transform if train else self.eval_transform
        out = dict(batch)
        out["image"] = t(batch["image"])
        return out

    def d_step(self, batch: dict[str, Any]) -> dict[str, float]:
        opt = self.optimizers["D"]
        opt.zero_grad(set_to_none=True)
        with self.autocast():
            loss, logs = self.call("discriminator_loss", batch)
        norm = self._backward_step(loss, opt, list(self.model.discriminator_parameters()))
        return {"D_loss": float(loss.detach()), "D_grad_norm": norm, **logs}

    def g_step(self, batch: dict[str, Any], method: str = "generator_loss") -> dict[str, float]:
        opt = self.optimizers["G"]
        d_params = list(self.model.discriminator_parameters())
        _set_requires_grad(d_params, False)  # D gets no gradients while G learns
        try:
            opt.zero_grad(set_to_none=True)
            with self.autocast():
                loss, logs = self.call(method, batch)
            norm = self._backward_step(loss, opt, list(self.model.generator_parameters()))
        finally:
            _set_requires_grad(d_params, True)
        return {"G_loss": float(loss.detach()), "G_grad_norm": norm, **logs}

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        logs: dict[str, float] = {}
        for part in self.options["order"]:
            logs.update(self.d_step(batch) if part == "D" else self.g_step(batch))
        self.scaler.update()
        return logs

    def _real_key(self) -> str:
        return "image"

    @torch.no_grad()
    def save_samples(self, fixed: dict[str, Any], path) -> None:
        model = self.model
        n = 32
        g = torch.Generator(device="cpu").manual_seed(1234)
        if hasattr(model, "sample"):
            try:
                fake = model.sample(n, generator=g)
            except TypeError:
                fake = model(*model.example_inputs(n))
        else:
            fake = model(*model.example_inputs(n))
        fake = self.unit(fake)
        plots.save_grid(fake.view(4, 8, *fake.shape[1:]), path, scale=2)

    @torch.no_grad()
    def diversity(self, fixed: dict[str, Any], real: dict[str, torch.Tensor] | None) -> tuple[float, float] | None:
        """Diversity of samples across z against the real images' diversity."""
        if real is None or not hasattr(self.model, "sample"):
            return None
        images = real["image"]
        g = torch.Generator(device="cpu").manual_seed(4321)
        try:
            fake = self.model.sample(min(32, images.shape[0]), generator=g)
        except TypeError:
            return None
        return pairwise_diversity(self.unit(fake)), pairwise_diversity(self.unit(images[:32]))


class RestorationRecipe(GANRecipe):
    """The generic GAN recipe for restoration; grids show degraded | restored | clean, val L1 is measured."""

    task = "restoration"
    best_metric = ("val_l1", "min")

    def _restore(self, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        if not hasattr(self.model, "degrade"):
            return None
        g = torch.Generator(device="cpu").manual_seed(99)
        try:
            degraded = self.model.degrade(clean, generator=g)
        except TypeError:
            return None
        return degraded, self.model(degraded)

    @torch.no_grad()
    def evaluate(self, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
        total, l1 = 0, 0.0
        for batch in batches:
            clean = self.prepare(batch, train=False)["image"]
            out = self._restore(clean)
            if out is None:
                return {}
            l1 += float((self.unit(out[1]) - self.unit(clean)).abs().mean()) * clean.shape[0]
            total += clean.shape[0]
        return {"val_l1": l1 / total} if total else {}

    @torch.no_grad()
    def save_samples(self, fixed: dict[str, Any], path) -> None:
        clean = fixed["image"][:8]
        out = self._restore(clean)
        if out is None:
            return super().save_samples(fixed, path)
        degraded, restored = out
        c = clean.shape[1]
        shown = degraded[:, :c] if degraded.shape[1] >= c else degraded.expand(-1, c, -1, -1)
        rows = [[self.unit(shown[i:i + 1])[0], self.unit(restored[i:i + 1])[0], self.unit(clean[i:i + 1])[0]]
                for i in range(clean.shape[0])]
        plots.save_grid(rows, path, scale=2)

    def diversity(self, fixed, real):
        return None


class ConditionalGANRecipe(GANRecipe):
    """cGAN: alternating D and G steps, Adam 2e-4 (0.5, 0.999), optional DiffAugment; class-by-sample grids."""

    task = "conditional_generation"
    defaults = {"batch_size": 64, "lr": 2e-4, "epochs": 100}  # ~2200 steps on digits: past the quality targets

    def prepare(self, batch: dict[str, Any], train: bool = True) -> dict[str, Any]:
        batch = self.to_device(batch)
        t = self.train_transform if train else self.eval_transform
        return {"image": t(batch["image"]), "label": batch["label"]}

    def _num_classes(self) -> int:
        cfg = getattr(self.model, "pretrained_cfg", {}) or {}
        return int(getattr(self.model, "num_classes", cfg.get("num_classes", 10)))

    def _class_samples(self, per_class: int, seed: int) -> torch.Tensor:
        k = self._num_classes()
        labels = torch.arange(k).repeat_interleave(per_class)
        g = torch.Generator(device="cpu").manual_seed(seed)
        fake = self.model.sample(labels, generator=g)
        return fake.view(k, per_class, *fake.shape[1:])

    @torch.no_grad()
    def save_samples(self, fixed: dict[str, Any], path) -> None:
        if not hasattr(self.model, "sample"):
            return
        fake = self._class_samples(10, 1234)
        plots.save_grid(self.unit(fake.flatten(0, 1)).view(fake.shape), path, scale=2)

    @torch.no_grad()
    def diversity(self, fixed: dict[str, Any], real: dict[str, torch.Tensor] | None) -> tuple[float, float] | None:
        """Mean within-class diversity across z, against the real images' within-class diversity."""
        if real is None or not hasattr(self.model, "sample"):
            return None
        fake = self.unit(self._class_samples(16, 4321))
        fake_div = sum(pairwise_diversity(f) for f in fake) / fake.shape[0]
        images, labels = self.unit(real["image"]), real["label"]
        per = [pairwise_diversity(images[labels == c][:16]) for c in range(fake.shape[0]) if int((labels == c).sum()) > 1]
        if not per:
            return None
        return fake_div, sum(per) / len(per)


class Pix2PixRecipe(GANRecipe):
    """pix2pix: D step then G step; optional L1-only generator pre-training (``pretrain_l1_steps``)."""

    task = "paired_translation"
    defaults = {"batch_size": 1, "lr": 2e-4, "epochs": 200}
    option_defaults = {**GANRecipe.option_defaults, "lr_policy": "linear", "pretrain_l1_steps": 0}
    best_metric = ("val_l1", "min")

    def prepare(self, batch: dict[str, Any], train: bool = True) -> dict[str, Any]:
        batch = self.to_device(batch)
        t = self.train_transform if train else self.eval_transform
        a, b = t(batch["A"], batch["B"])
        return {"A": a, "B": b}

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        if step < int(self.options["pretrain_l1_steps"]):
            opt = self.optimizers["G"]
            opt.zero_grad(set_to_none=True)
            with self.autocast():
                if hasattr(self.model, "reconstruction_loss"):
                    loss = self.call("reconstruction_loss", batch)[0]
                else:
                    loss = F.l1_loss(self.call("forward", batch["A"]), batch["B"])
            norm = self._backward_step(loss, opt, list(self.model.generator_parameters()))
            self.scaler.update()
            return {"G_L1_pretrain": float(loss.detach()), "G_grad_norm": norm}
        return super().train_step(batch, step)

    @torch.no_grad()
    def evaluate(self, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
        from kornia.metrics import psnr, ssim

        n, l1, p, s = 0, 0.0, 0.0, 0.0
        for batch in batches:
            b = self.prepare(batch, train=False)
            fake, real = self.unit(self.model(b["A"])), self.unit(b["B"])
            k = real.shape[0]
            l1 += float((fake - real).abs().mean()) * k
            p += float(psnr(fake, real, 1.0)) * k
            s += float(ssim(fake, real, 7).mean()) * k
            n += k
        return {"val_l1": l1 / n, "val_psnr": p / n, "val_ssim": s / n} if n else {}

    @torch.no_grad()
    def save_samples(self, fixed: dict[str, Any], path) -> None:
        a, b = fixed["A"][:8], fixed["B"][:8]
        fake = self.model(a)
        rows = []
        for i in range(a.shape[0]):
            row = [self.unit(x[i:i + 1])[0] for x in (a, fake, b)]
            c = max(r.shape[0] for r in row)
            rows.append([r.expand(c, -1, -1) if r.shape[0] == 1 else r for r in row])
        plots.save_grid(rows, path, scale=2)

    def diversity(self, fixed, real):
        return None


class CycleGANRecipe(Pix2PixRecipe):
    """CycleGAN: G step then D step with the model's image pools, constant LR then linear decay to 0."""

    task = "unpaired_translation"
    defaults = {"batch_size": 1, "lr": 2e-4, "epochs": 200}
    option_defaults = {**GANRecipe.option_defaults, "lr_policy": "linear", "order": "GD"}
    best_metric = ("val_cycle_l1", "min")

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        return GANRecipe.train_step(self, batch, step)

    @torch.no_grad()
    def evaluate(self, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
        g_ab, g_ba = getattr(self.model, "G_AB", None), getattr(self.model, "G_BA", None)
        if g_ab is None or g_ba is None:
            return {}
        n, cyc = 0, 0.0
        for batch in batches:
            b = self.prepare(batch, train=False)
            a, bb = b["A"], b["B"]
            k = min(a.shape[0], bb.shape[0])
            cyc += float(0.5 * ((g_ba(g_ab(a)) - a).abs().mean() + (g_ab(g_ba(bb)) - bb).abs().mean())) * k
            n += k
        return {"val_cycle_l1": cyc / n} if n else {}


RECIPES: dict[str, type[Recipe]] = {
    "classification": ClassificationRecipe,
    "paired_translation": Pix2PixRecipe,
    "unpaired_translation": CycleGANRecipe,
    "conditional_generation": ConditionalGANRecipe,
    "generation": GANRecipe,
    "restoration": RestorationRecipe,
}
assert set(RECIPES) == set(TASKS), "every registered task needs a recipe"


def recipe_for(task: str) -> type[Recipe]:
    """The recipe class of ``task``."""
    if task not in RECIPES:
        raise ValueError(f"no training recipe for task {task!r}; known tasks: {', '.join(RECIPES)}.")
    return RECIPES[task]
