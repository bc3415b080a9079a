"""StyleGAN2-ADA's training recipe (Karras et al. 2020), as NVlabs/stylegan2-ada-pytorch's ``training/loss.py``,
``training_loop.py`` and ``train.py`` define it, on vgzoo's trainer.

One training step is the reference's four phases, each with its own optimizer step:

=========  ==========================  ===========================================================================
phase      when                        what
=========  ==========================  ===========================================================================
G main     every step                  non-saturating logistic loss ``softplus(-D(G(z)))``, with style mixing
G reg      every ``pl_interval`` (4)   path-length regularisation on half the batch (``pl_batch_shrink``):
                                       ``pl_weight * (|J_w^T y| - a)^2``, ``a`` the running mean (decay 0.01),
                                       scaled by the interval (lazy regularisation)
D main     every step                  ``softplus(D(G(z))) + softplus(-D(x))``
D reg      every ``r1_interval`` (16)  R1: ``r1_gamma / 2 * |grad_x D(x)|^2`` on reals, scaled by the interval
=========  ==========================  ===========================================================================

Every image D sees, real or generated, first goes through ADA's pipe (:mod:`vgzoo_stylegan2.augment`); the sign of D
on reals drives ``p`` every 4 steps. After the phases ``G_ema`` follows ``G`` with the half-life ``ema_kimg``
thousand images (ramped up over the first images with ``ema_rampup``). Adam (0, 0.99) takes the lazy-regularisation
correction: with regularisation every ``k`` steps, ``lr * k / (k + 1)`` and ``beta ** (k / (k + 1))``.

The defaults are those of the reference's ``--cfg`` (``-o cfg=...``): ``auto`` (its default) derives the learning
rate, R1 weight and EMA half-life from the resolution and batch size; ``stylegan2``, ``paper256``, ``paper512``,
``paper1024`` and ``cifar`` are the published configurations. A model built from a published tag trains on from
its weights (transfer learning as MetFaces was made from FFHQ): ADA reacts faster (``ada_kimg`` 100) and the EMA
ramp-up is off, as the reference's ``--resume`` sets them.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vgzoo.protocols import LossLogs, SeededSampler
from vgzoo.tasks import Task
from vgzoo.train import plots
from vgzoo.train.options import Option
from vgzoo.train.recipes import (
    Constant,
    Recipe,
    first_images,
    grad_norm,
    images_batch,
    labelled_images_batch,
    samples_variety,
)

from .augment import AUGMENT_MODES, PIPES, create_augment

__all__ = ["StyleGAN2Recipe", "ConditionalStyleGAN2Recipe", "CONFIGS", "training_spec", "per_process_batch",
           "ema_beta", "r1_penalty", "PathLengthPenalty", "stylegan2_generation", "stylegan2_conditional_generation"]

#: The reference's ``--cfg`` presets (train.py), their optimisation half: batch over all GPUs, learning rate, G_ema
#: half-life in kimg and ramp-up. The other half (channels, mapping depth, mbstd group, R1 gamma, path length, style
#: mixing) is the model's config, set by the variant named after the preset.
CONFIGS: dict[str, dict[str, Any]] = {
    "stylegan2": {"mb": 32, "ref_gpus": 8, "lrate": 0.002, "ema": 10.0, "ramp": None},
    "paper256": {"mb": 64, "ref_gpus": 8, "lrate": 0.0025, "ema": 20.0, "ramp": None},
    "paper512": {"mb": 64, "ref_gpus": 8, "lrate": 0.0025, "ema": 20.0, "ramp": None},
    "paper1024": {"mb": 32, "ref_gpus": 8, "lrate": 0.002, "ema": 10.0, "ramp": None},
    "cifar": {"mb": 64, "ref_gpus": 2, "lrate": 0.0025, "ema": 500.0, "ramp": 0.05},
}
TRAINING_CONFIGS = ("auto", *CONFIGS)


def _check_config(cfg: str) -> None:
    if cfg not in TRAINING_CONFIGS:
        raise ValueError(f"option cfg={cfg!r}: expected one of {', '.join(TRAINING_CONFIGS)} (the reference's --cfg).")


def training_spec(cfg: str, resolution: int, batch: int) -> dict[str, Any]:
    """The optimisation hyperparameters of a reference ``--cfg`` for ``resolution`` px and a global ``batch``.

    ``auto`` is the reference's formula: lr 0.002 at 1024 px and above, else 0.0025; G_ema half-life
    ``batch * 10 / 32`` kimg; ramp-up 0.05 (its R1 heuristic, ``0.0002 * resolution^2 / batch``, is given as
    ``auto_r1_gamma`` for ``-k r1_gamma=...``).
    """
    _check_config(cfg)
    if cfg != "auto":
        return dict(CONFIGS[cfg])
    return {"mb": batch, "lrate": 0.002 if resolution >= 1024 else 0.0025, "ema": batch * 10 / 32, "ramp": 0.05,
            "auto_r1_gamma": 0.0002 * resolution ** 2 / batch}


def config_name(model: nn.Module, cfg: str | None = None) -> str:
    """``cfg`` if given, else the configuration the model's variant is named after (``stylegan2_paper256`` ->
    ``paper256``), else ``auto``."""
    if cfg:
        return cfg
    arch = str((getattr(model, "pretrained_cfg", {}) or {}).get("architecture") or "")
    named = "stylegan2" if arch == "stylegan2" else arch.removeprefix("stylegan2_")
    return named if named in CONFIGS else "auto"


def per_process_batch(cfg: str, resolution: int, world_size: int) -> int:
    """The reference's batch per GPU: its configuration's batch over the GPUs it was made for, or for ``auto``
    ``max(min(gpus * min(4096 // resolution, 32), 64), gpus) / gpus``."""
    _check_config(cfg)
    if cfg == "auto":
        return max(min(world_size * min(4096 // resolution, 32), 64), world_size) // world_size
    return max(1, CONFIGS[cfg]["mb"] // CONFIGS[cfg]["ref_gpus"])


def ema_beta(batch: int, ema_kimg: float, cur_nimg: int, rampup: float | None) -> float:
    """The G_ema decay of a step: half-life ``ema_kimg`` thousand images, capped at ``cur_nimg * rampup`` early on."""
    ema_nimg = ema_kimg * 1000
    if rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(g_ema: nn.Module, g: nn.Module, beta: float) -> None:
    """``p_ema = p + beta * (p_ema - p)`` for every parameter; buffers (``w_avg``) are copied."""
    for p_ema, p in zip(g_ema.parameters(), g.parameters(), strict=True):
        p_ema.copy_(p.lerp(p_ema, beta))
    for b_ema, b in zip(g_ema.buffers(), g.buffers(), strict=True):
        b_ema.copy_(b)


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """``|grad_x D(x)|^2`` per image (R1, Mescheder et al. 2018), differentiable for D's update."""
    (grads,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True, only_inputs=True)
    return grads.square().sum(dim=[1, 2, 3])


class PathLengthPenalty:
    """Path-length regularisation: ``(|J_w^T y| - a)^2`` with ``y`` Gaussian image-space noise scaled by
    ``1 / sqrt(H * W)`` and ``a`` the running mean of the lengths (``a <- a + decay * (mean length - a)``)."""

    def __init__(self, decay: float = 0.01, device: torch.device | str = "cpu") -> None:
        self.decay = float(decay)
        self.mean = torch.zeros((), device=device)

    def __call__(self, images: torch.Tensor, ws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(penalty per sample, lengths) for generated ``images`` and the ``ws`` they came from."""
        noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
        (grads,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True, only_inputs=True)
        lengths = grads.square().sum(2).mean(1).sqrt()
        mean = self.mean.lerp(lengths.mean(), self.decay)
        self.mean.copy_(mean.detach())
        return (lengths - mean).square(), lengths


def _networks(model: nn.Module) -> tuple[nn.Module, nn.Module, nn.Module]:
    missing = [n for n in ("G", "D", "G_ema") if not isinstance(getattr(model, n, None), nn.Module)]
    if missing:
        raise TypeError(f"the StyleGAN2 recipe trains a model holding G, D and G_ema (vgzoo_stylegan2's); "
                        f"{type(model).__name__} lacks {', '.join(missing)}.")
    return model.G, model.D, model.G_ema


# ------------------------------------------------------------------------------------------ pictures
@torch.no_grad()
def seed_grid(recipe: StyleGAN2Recipe, fixed: dict[str, Any], path, title: str | None = None) -> None:
    """G_ema's images of seeds 0-31 (the reference's seed semantics, constant noise, psi 1): the same latents at
    every checkpoint, so successive grids show the weights changing; a row of reals above them."""
    model = recipe.model
    g_ema = recipe.g_ema
    seeds = list(range(32))
    if isinstance(model, SeededSampler):
        z = model.latents_for_seeds(seeds, 1.0)
    else:
        z = torch.randn(32, g_ema.z_dim, generator=torch.Generator().manual_seed(0))
    c = recipe.grid_labels(32)
    fake = g_ema(z.to(recipe.device), c, noise_mode="const")
    fake = recipe.unit(fake).view(4, 8, *fake.shape[1:])
    rows, labels = list(fake), [f"seeds {8 * i}-{8 * i + 7}" for i in range(4)]
    real = fixed.get("image") if isinstance(fixed, dict) else None
    if isinstance(real, torch.Tensor) and real.shape[0] >= 8 and real.shape[1:] == fake.shape[2:]:
        rows, labels = [recipe.unit(real[:8]), *rows], ["real", *labels]
    plots.save_grid([list(r) for r in rows], path, scale=2, row_labels=labels, title=title)


# ------------------------------------------------------------------------------------------ the recipe
STYLEGAN2_OPTIONS: tuple[Option, ...] = (
    Option("cfg", None, "str|none", "the reference's --cfg whose lr and G_ema defaults apply: auto (from resolution "
           "and batch), stylegan2, paper256, paper512, paper1024, cifar (default: the one the variant is named "
           "after, else auto)"),
    Option("augment", "ada", "str", "discriminator augmentation: ada (p adapted toward ada_target), fixed (p = "
           "augment_p) or none"),
    Option("augpipe", "bgc", "str", f"the augmentations: {', '.join(PIPES)} (the reference's sets)"),
    Option("augment_p", 0.0, "float", "p of augment=fixed (and the starting p of ada)"),
    Option("ada_target", 0.6, "float", "the target of r_t = E[sign(D(reals))]"),
    Option("ada_interval", 4, "int", "steps between adjustments of p"),
    Option("ada_kimg", None, "float|none", "thousands of images for p to move by 1 (default 500; 100 when "
           "training on from published weights)"),
    Option("r1_interval", 16, "int", "steps between R1 steps (lazy regularisation)"),
    Option("pl_interval", 4, "int", "steps between path-length steps"),
    Option("ema_kimg", None, "float|none", "G_ema half-life in thousands of images (default: the cfg's)"),
    Option("ema_rampup", None, "float|none", "G_ema ramp-up: half-life at most images seen x this (default: the "
           "cfg's; 0 turns it off)"),
    Option("beta1", 0.0, "float", "Adam's beta1"),
    Option("beta2", 0.99, "float", "Adam's beta2"),
)


class StyleGAN2Recipe(Recipe):
    """StyleGAN2 + ADA (Karras et al. 2020): the reference's phases, lazy regularisation, G_ema and ADA."""

    task = "stylegan2_generation"
    defaults = {"batch_size": 32, "lr": 0.0025, "epochs": 100}  # batch and lr: per configuration, see below
    own_precision = True  # fp16 in the num_fp16_res highest-resolution blocks on CUDA, with conv_clamp
    schema = STYLEGAN2_OPTIONS
    batch = staticmethod(images_batch)
    grid = staticmethod(seed_grid)
    variety = staticmethod(samples_variety)
    real_batch = staticmethod(first_images)

    def __init__(self, model: nn.Module, call: Callable, **kwargs: Any) -> None:
        self.G, self.D, self.g_ema = _networks(model)
        import torch.distributed as dist

        self.world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        super().__init__(model, call, **kwargs)
        o = self.options
        if o["augment"] not in AUGMENT_MODES:
            raise ValueError(f"option augment={o['augment']!r}: expected one of {', '.join(AUGMENT_MODES)} (e.g. "
                             "-o augment=ada).")
        for name in ("r1_interval", "pl_interval", "ada_interval"):
            if int(o[name]) < 1:
                raise ValueError(f"option {name}={o[name]}: expected a whole number >= 1.")
        self.global_batch = self.batch_size * self.world
        spec = self.spec
        # built with a tag's published weights: transfer learning, as the reference's --resume
        self.transfer = (getattr(model, "pretrained_cfg", {}) or {}).get("weight_source") is not None
        pick = lambda key, default: default if o[key] is None else float(o[key])  # noqa: E731
        # the loss weights are the model's config (-k r1_gamma=...), set per variant as the reference's --cfg
        self.r1_gamma, self.pl_weight = float(model.r1_gamma), float(model.pl_weight)
        self.style_mixing, self.pl_batch_shrink = float(model.style_mixing_prob), int(model.pl_batch_shrink)
        self.ema_kimg = pick("ema_kimg", spec["ema"])
        self.ema_rampup = pick("ema_rampup", None if self.transfer else spec["ramp"]) or None
        self.pl = PathLengthPenalty(float(model.pl_decay), device=self.device)
        self.augment_pipe, self.ada = create_augment(
            o["augment"], pipe=o["augpipe"], p=float(o["augment_p"]), target=float(o["ada_target"]),
            interval=int(o["ada_interval"]), kimg=pick("ada_kimg", 100.0 if self.transfer else 500.0),
            batch_size=self.global_batch, device=self.device)
        if self.ada is not None and o["augment_p"]:
            self.augment_pipe.p.fill_(float(o["augment_p"]))
        self.g_ema.requires_grad_(False)
        self.phases = self._wrap(_Phases(self))
        self.G.requires_grad_(False)  # each phase turns on the gradients of the network it trains
        self.D.requires_grad_(False)

    @classmethod
    def default_batch_size(cls, model: nn.Module, options: dict[str, Any], world_size: int) -> int:
        cfg = config_name(model, options.get("cfg"))
        return per_process_batch(cfg, int(_networks(model)[0].img_resolution), world_size)

    @property
    def spec(self) -> dict[str, Any]:
        """The hyperparameters of ``-o cfg``, by default the configuration the model's variant is named after."""
        cfg = config_name(self.model, self.options["cfg"])
        return training_spec(cfg, int(self.G.img_resolution), self.batch_size * self.world)

    def default_lr(self, batch_size: int) -> float:
        return float(self.spec["lrate"])

    def _wrap(self, phases: nn.Module) -> nn.Module:
        """The phases through DistributedDataParallel under torchrun (its hooks average G's and D's gradients)."""
        if self.world == 1:
            return phases
        ids = [self.device.index] if self.device.type == "cuda" else None
        phases.requires_grad_(True)  # DDP averages the gradients of the parameters that want them when wrapped
        ddp = nn.parallel.DistributedDataParallel
        # buffers (w_avg) are each process's own between steps, as the reference's broadcast_buffers=False
        own = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp).parameters
               else {"broadcast_buffers": False})
        return ddp(phases, device_ids=ids, find_unused_parameters=True, **own)

    def make_transforms(self, augment: dict[str, Any]) -> None:
        # ``-o augment`` is this recipe's ADA mode; the images' own transform keeps vgzoo's defaults
        super().make_transforms({})

    # -- optimizers
    def build(self, horizon: int, steps_per_epoch: int) -> None:
        o = self.options
        self.optimizers, self.intervals = {}, {}
        for name, module, interval in (("G", self.G, int(o["pl_interval"])), ("D", self.D, int(o["r1_interval"]))):
            ratio = interval / (interval + 1)  # lazy regularisation: the reg steps' share of the updates
            betas = (float(o["beta1"]) ** ratio, float(o["beta2"]) ** ratio)
            self.optimizers[name] = torch.optim.Adam(module.parameters(), lr=self.lr * ratio, betas=betas, eps=1e-8)
            self.intervals[name] = interval
        self.schedulers = {k: torch.optim.lr_scheduler.LambdaLR(opt, Constant()) for k, opt in self.optimizers.items()}

    def lr_now(self) -> float:
        return float(self.optimizers["G"].param_groups[0]["lr"])

    # -- one step
    def labels(self, batch: dict[str, Any]) -> torch.Tensor | None:
        """The one-hot class vectors of the real images (None for an unconditional model)."""
        return None

    def fake_labels(self, batch: dict[str, Any]) -> torch.Tensor | None:
        """Class vectors for generated images: drawn from the real batch's labels (the data's label distribution)."""
        return None

    def grid_labels(self, n: int) -> torch.Tensor | None:
        return None

    def train_step(self, batch: dict[str, Any], step: int) -> LossLogs:
        """The reference's training iteration ``step`` (0-based): the phases due, G_ema, then ADA's adjustment."""
        real = batch["image"]
        real_c = self.labels(batch)
        b = real.shape[0]
        z_dim = int(self.G.z_dim)
        all_z = torch.randn(4 * b, z_dim, device=self.device).split(b)  # one latent batch per phase, as the reference
        logs: LossLogs = {}
        plan = (("G", "main", 1), ("G", "reg", self.intervals["G"]), ("D", "main", 1),
                ("D", "reg", self.intervals["D"]))
        for (net, kind, interval), z in zip(plan, all_z, strict=True):
            if step % interval or (kind == "reg" and not self._regularised(net)):
                continue
            logs.update(self._phase(net, kind, interval, real, real_c, z, self.fake_labels(batch)))
        beta = ema_beta(self.global_batch, self.ema_kimg, step * self.global_batch, self.ema_rampup)
        update_ema(self.g_ema, self.G, beta)
        if self.ada is not None:
            self.ada.update(step + 1, reduce=self._all_reduce)
            logs["ada_p"] = self.augment_pipe.p.detach().clone()
            if step + 1 >= self.ada.interval:
                logs["ada_rt"] = self.ada.rt.detach().float().clone()
        elif self.augment_pipe is not None:
            logs["ada_p"] = self.augment_pipe.p.detach().clone()
        return logs

    def _regularised(self, net: str) -> bool:
        return (self.pl_weight if net == "G" else self.r1_gamma) != 0

    def _all_reduce(self, t: torch.Tensor) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(t)

    def _phase(self, net: str, kind: str, gain: int, real, real_c, z, fake_c) -> LossLogs:
        """One phase: gradients of its loss (times ``gain``, the lazy regularisation's interval) and an Adam step."""
        module = self.G if net == "G" else self.D
        opt = self.optimizers[net]
        opt.zero_grad(set_to_none=True)
        module.requires_grad_(True)
        try:
            loss, logs = self.phases(f"{net}_{kind}", real, real_c, z, fake_c)
            loss.mul(gain).backward()
        finally:
            module.requires_grad_(False)
        params = [p for p in module.parameters() if p.grad is not None]
        for p in params:  # as the reference: a NaN/Inf gradient entry never reaches the weights
            torch.nan_to_num(p.grad, nan=0.0, posinf=1e5, neginf=-1e5, out=p.grad)
        if kind == "main":
            logs[f"{net}_grad_norm"] = grad_norm(params)
        opt.step()
        return logs

    # -- the model's part of the state
    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {"stylegan2/pl_mean": self.pl.mean}
        if self.augment_pipe is not None:
            out["stylegan2/augment_p"] = self.augment_pipe.p
        if self.ada is not None:
            out.update({f"stylegan2/ada_{k}": v for k, v in self.ada.state_tensors().items()})
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if "stylegan2/pl_mean" in tensors:
            self.pl.mean.copy_(tensors["stylegan2/pl_mean"])
        if self.augment_pipe is not None and "stylegan2/augment_p" in tensors:
            self.augment_pipe.p.copy_(tensors["stylegan2/augment_p"])
        if self.ada is not None and "stylegan2/ada_p" in tensors:
            n = len("stylegan2/ada_")
            self.ada.load_state_tensors({k[n:]: v for k, v in tensors.items() if k.startswith("stylegan2/ada_")})


class ConditionalStyleGAN2Recipe(StyleGAN2Recipe):
    """The same recipe for a class-conditional StyleGAN2 (c_dim > 0): one-hot labels to G and D."""

    task = "stylegan2_conditional_generation"
    batch = staticmethod(labelled_images_batch)

    def _one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels.long(), int(self.G.c_dim)).float()

    def labels(self, batch: dict[str, Any]) -> torch.Tensor | None:
        return self._one_hot(batch["label"])

    def fake_labels(self, batch: dict[str, Any]) -> torch.Tensor | None:
        labels = batch["label"]
        return self._one_hot(labels[torch.randint(0, labels.shape[0], labels.shape, device=labels.device)])

    def grid_labels(self, n: int) -> torch.Tensor | None:
        return self._one_hot(torch.arange(n, device=self.device) % int(self.G.c_dim))


class _Phases(nn.Module):
    """The losses of the four phases, computed in ``forward`` so DistributedDataParallel sees them."""

    def __init__(self, recipe: StyleGAN2Recipe) -> None:
        super().__init__()
        self.G, self.D = recipe.G, recipe.D
        self.recipe = [recipe]  # a list: not a submodule

    @property
    def r(self) -> StyleGAN2Recipe:
        return self.recipe[0]

    def run_G(self, z: torch.Tensor, c: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and their ws; with probability ``style_mixing`` the ws from a random layer on come from another z."""
        ws = self.G.mapping(z, c)
        if self.r.style_mixing > 0:
            cutoff = torch.empty([], dtype=torch.int64, device=ws.device).random_(1, ws.shape[1])
            mix = torch.rand([], device=ws.device) < self.r.style_mixing
            cutoff = torch.where(mix, cutoff, torch.full_like(cutoff, ws.shape[1]))
            ws[:, cutoff:] = self.G.mapping(torch.randn_like(z), c, skip_w_avg_update=True)[:, cutoff:]
        return self.G.synthesis(ws), ws

    def run_D(self, images: torch.Tensor, c: torch.Tensor | None, eager: bool = False) -> torch.Tensor:
        """D's logits of the augmented images; ``eager``: D's own call, not the graph ``--compile`` put on it.

        R1 differentiates D's input gradient again, and torch.compile's aot_autograd has no double backward: that
        phase runs the same module (same parameters, same hooks) eagerly. The path-length phase needs nothing of the
        kind: G's phases call ``G.mapping`` and ``G.synthesis``, which ``--compile`` leaves eager."""
        if self.r.augment_pipe is not None:
            images = self.r.augment_pipe(images)
        return self.D._call_impl(images, c) if eager else self.D(images, c)

    def forward(self, phase: str, real, real_c, z, fake_c) -> tuple[torch.Tensor, LossLogs]:
        return getattr(self, phase)(real, real_c, z, fake_c)

    def G_main(self, real, real_c, z, fake_c):
        images, _ = self.run_G(z, fake_c)
        logits = self.run_D(images, fake_c)
        loss = F.softplus(-logits).mean()  # -log sigmoid(D(G(z)))
        return loss, {"G_loss": loss.detach(), "D_fake_logit": logits.detach().mean()}

    def G_reg(self, real, real_c, z, fake_c):
        n = max(1, z.shape[0] // self.r.pl_batch_shrink)
        c = fake_c[:n] if fake_c is not None else None
        images, ws = self.run_G(z[:n], c)
        penalty, _ = self.r.pl(images, ws)
        loss = (images[:, 0, 0, 0] * 0 + penalty * self.r.pl_weight).mean()
        return loss, {"G_pl_penalty": penalty.detach().mean(), "G_pl_mean": self.r.pl.mean.clone()}

    def D_main(self, real, real_c, z, fake_c):
        with torch.no_grad():
            images, _ = self.run_G(z, fake_c)
        fake_logits = self.run_D(images, fake_c)
        real_logits = self.run_D(real.detach(), real_c)
        if self.r.ada is not None:
            self.r.ada.observe(real_logits)
        loss_fake, loss_real = F.softplus(fake_logits).mean(), F.softplus(-real_logits).mean()
        return loss_fake + loss_real, {"D_loss": (loss_fake + loss_real).detach(),
                                       "D_real_logit": real_logits.detach().mean(),
                                       "D_fake_logit": fake_logits.detach().mean(),
                                       "D_real_sign": real_logits.detach().sign().mean()}

    def D_reg(self, real, real_c, z, fake_c):
        real = real.detach().requires_grad_(True)
        real_logits = self.run_D(real, real_c, eager=True)
        if self.r.ada is not None:
            self.r.ada.observe(real_logits)
        penalty = r1_penalty(real_logits, real)
        loss = (real_logits * 0).mean() + (penalty * (self.r.r1_gamma / 2)).mean()
        return loss, {"D_r1_penalty": penalty.detach().mean(), "D_reg_real_sign": real_logits.detach().sign().mean()}


# ------------------------------------------------------------------------------------------ task records
stylegan2_generation = Task(
    "stylegan2_generation", "StyleGAN2-ADA: images from noise, trained with adaptive augmentation", ("image",),
    "vgzoo.data.single:ImageFolderDataset", "vgzoo.augment:images_pipeline",
    "vgzoo_stylegan2.training:StyleGAN2Recipe", ("vgzoo.protocols:GANModel",), "sample",
    distribution="vgzoo-stylegan2")
stylegan2_conditional_generation = Task(
    "stylegan2_conditional_generation", "class-conditional StyleGAN2-ADA", ("image", "label"),
    "vgzoo.data.labelled:LabelledImageFolder", "vgzoo.augment:images_pipeline",
    "vgzoo_stylegan2.training:ConditionalStyleGAN2Recipe",
    ("vgzoo.protocols:GANModel", "vgzoo.protocols:ConditionalSampler"), "sample", distribution="vgzoo-stylegan2")

