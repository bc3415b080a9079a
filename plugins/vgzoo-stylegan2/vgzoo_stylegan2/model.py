"""StyleGAN2-ADA as a vgzoo model: the generator G, its moving average G_ema and the discriminator D.

Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN" (arXiv:1912.04958) and Karras et al.
2020, "Training Generative Adversarial Networks with Limited Data" (arXiv:2006.06676); the reference is
NVlabs/stylegan2-ada-pytorch. The networks are in :mod:`vgzoo_stylegan2.networks`; this module holds them
together the way a reference snapshot does (``G``, ``D``, ``G_ema``: transfer learning starts from all three),
registers the reference's training configurations as variants, and draws images the reference's way: seed N is
``z = RandomState(N).randn(1, z_dim)`` and inference runs ``G_ema(z, c, truncation_psi, noise_mode='const')``.

The model's arguments are the reference's generator arguments (``z_dim``, ``c_dim``, ``w_dim``,
``img_resolution``, ``img_channels``, ``mapping_kwargs``, ``synthesis_kwargs``), the discriminator's other
arguments (``D_kwargs``) and the loss weights of the reference's ``StyleGAN2Loss``. ``StyleGAN2`` is the
unconditional model (``c_dim=0``); ``StyleGAN2Conditional`` (``c_dim > 0``) takes class labels.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vgzoo import ModelFamily, PretrainedCfg, register_model
from vgzoo.layers import validate_labels
from vgzoo.protocols import ConditionalSampler, GANModel, LossLogs, SeededSampler, UnconditionalSampler

from .networks import Discriminator, Generator

__all__ = ["StyleGAN2Base", "StyleGAN2", "StyleGAN2Conditional", "model_class", "CIFAR10_CLASSES", "LICENSE", "PAPER"]

PAPER = ("Karras et al. 2020, Training Generative Adversarial Networks with Limited Data, NeurIPS "
         "(arXiv:2006.06676); Karras et al. 2020, Analyzing and Improving the Image Quality of StyleGAN, CVPR "
         "(arXiv:1912.04958)")
LICENSE = "NVIDIA Source Code License-NC"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# The discriminator arguments the model takes from its own (G's): they must agree.
_SHARED_WITH_D = ("c_dim", "img_resolution", "img_channels")


class StyleGAN2Base(GANModel):
    """G, G_ema and D of one StyleGAN2-ADA configuration (the reference's constructor arguments).

    Args:
        z_dim: latent size.
        c_dim: one-hot class-label size (0: unconditional).
        w_dim: intermediate latent size.
        img_resolution: image side (a power of two).
        img_channels: image channels.
        mapping_kwargs: further arguments of the mapping network (``num_layers``, ``lr_multiplier``, ...).
        synthesis_kwargs: further arguments of the synthesis network (``channel_base``, ``channel_max``,
            ``num_fp16_res``, ``conv_clamp``, ``architecture``, ...).
        D_kwargs: the discriminator's other arguments (``architecture``, ``channel_base``, ``channel_max``,
            ``num_fp16_res``, ``conv_clamp``, ``cmap_dim``, ``block_kwargs``, ``mapping_kwargs``,
            ``epilogue_kwargs``); its ``c_dim``, ``img_resolution`` and ``img_channels`` are G's.
        r1_gamma: R1 regularisation weight.
        style_mixing_prob: probability of mixing two latents' styles in a training batch.
        pl_weight: path-length regularisation weight (0 disables it).
        pl_batch_shrink: the path-length term's batch is this many times smaller.
        pl_decay: decay of the path-length target's moving average.
        class_names: names of the classes (``c_dim`` of them), for ``--class NAME``; None when unnamed.
        truncation_psi: the psi that ``forward``, ``sample`` and ``vgzoo generate`` use unless given one (1: no
            truncation); an exported generator has it built in.
    """

    truncation_name = "psi"
    #: Seeds per call on a CPU (vgzoo.generate.seed_batch_size): under bf16 autocast every layer runs one convolution
    #: for the whole batch (the unfused modulation), and the full-resolution layers, the largest activations, have the
    #: fewest channels, so two 256 px seeds a call still fit the caches and share the per-call work (fp32 draws one
    #: at a time, see generate_images).
    cpu_batch_pixels = 2 * 256 * 256

    def __init__(self, z_dim: int = 512, c_dim: int = 0, w_dim: int = 512, img_resolution: int = 1024,
                 img_channels: int = 3, mapping_kwargs: dict[str, Any] | None = None,
                 synthesis_kwargs: dict[str, Any] | None = None, D_kwargs: dict[str, Any] | None = None,
                 r1_gamma: float = 10.0, style_mixing_prob: float = 0.9, pl_weight: float = 2.0,
                 pl_batch_shrink: int = 2, pl_decay: float = 0.01, class_names: list[str] | None = None,
                 truncation_psi: float = 1.0) -> None:
        super().__init__()
        D_kwargs = dict(D_kwargs or {})
        shared = sorted(set(D_kwargs) & set(_SHARED_WITH_D))
        if shared:
            raise ValueError(f"stylegan2: D_kwargs must not set {shared}: the discriminator takes them from the "
                             "model's own arguments.")
        if class_names is not None and len(class_names) != c_dim:
            raise ValueError(f"stylegan2: class_names has {len(class_names)} names for c_dim={c_dim} classes; "
                             "give one name per class or None.")
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.r1_gamma, self.style_mixing_prob, self.pl_weight = r1_gamma, style_mixing_prob, pl_weight
        self.pl_batch_shrink, self.pl_decay = pl_batch_shrink, pl_decay
        self.class_names = tuple(class_names) if class_names is not None else None
        self.truncation_psi = float(truncation_psi)
        g_args = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                      img_channels=img_channels, mapping_kwargs=mapping_kwargs, synthesis_kwargs=synthesis_kwargs)
        self.G = Generator(**g_args)
        self.D = Discriminator(c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels, **D_kwargs)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.pretrained_cfg: dict[str, Any] = {
            "input_size": (img_channels, img_resolution, img_resolution),
            "mean": (0.5,) * img_channels,
            "std": (0.5,) * img_channels,
            # a generation model that `vgzoo train` trains with the StyleGAN2-ADA recipe (vgzoo_stylegan2.training)
            "train_task": "stylegan2_conditional_generation" if c_dim > 0 else "stylegan2_generation",
        }
        if c_dim > 0:
            self.pretrained_cfg["num_classes"] = c_dim
        self._check_conditioning()

    def _check_conditioning(self) -> None:
        """Subclasses say whether they take labels (an unconditional and a conditional class, each its protocol)."""

    @property
    def default_truncation(self) -> float:
        """The psi used when none is given: the ``truncation_psi`` argument (assigning it updates the config)."""
        return self.truncation_psi

    @default_truncation.setter
    def default_truncation(self, psi: float) -> None:
        self.truncation_psi = float(psi)

    def train(self, mode: bool = True) -> StyleGAN2Base:
        """G and D follow ``mode``; G_ema stays in eval mode (it is only ever used for inference)."""
        super().train(mode)
        self.G_ema.eval()
        return self

    # ----------------------------------------------------------------------------------- labels, latents
    def one_hot(self, labels: torch.Tensor | None, batch_size: int) -> torch.Tensor:
        """The reference's ``c``: one-hot rows for integer labels; an empty (N, 0) tensor for c_dim == 0."""
        device = self._device()
        if self.c_dim == 0:
            if labels is not None:
                raise ValueError("stylegan2: this model is unconditional (c_dim=0); it takes no class labels.")
            return torch.zeros(batch_size, 0, device=device)
        if labels is None:
            raise ValueError(f"stylegan2: this model is class-conditional (c_dim={self.c_dim}); give one class "
                             f"label in [0, {self.c_dim}) per image.")
        if isinstance(labels, torch.Tensor) and labels.ndim == 2 and labels.is_floating_point():
            if labels.shape != (batch_size, self.c_dim):
                raise ValueError(f"stylegan2: c must have shape ({batch_size}, {self.c_dim}); got "
                                 f"{tuple(labels.shape)}.")
            return labels.to(device=device, dtype=torch.float32)  # already the reference's c
        labels = validate_labels(labels, self.c_dim, batch_size, what="stylegan2 class labels").to(device)
        return F.one_hot(labels, self.c_dim).to(torch.float32)

    def sample_z(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``batch_size`` standard-normal latents on the model's device (reproducible with a ``generator``)."""
        device = generator.device if generator is not None else self._device()
        return torch.randn(batch_size, self.z_dim, generator=generator, device=device).to(self._device())

    def latents_for_seeds(self, seeds: list[int], truncation: float | None = None) -> torch.Tensor:
        """The reference's seeds: seed N gives ``np.random.RandomState(N).randn(1, z_dim)`` (float64 -> float32).

        ``truncation`` does not change z here (StyleGAN truncates in W, see :meth:`generate_images`).
        """
        rows = [np.random.RandomState(int(seed)).randn(1, self.z_dim) for seed in seeds]
        return torch.from_numpy(np.concatenate(rows)).to(device=self._device(), dtype=torch.float32)

    @torch.no_grad()
    def generate_images(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                        truncation: float | None = None, noise_mode: str = "const") -> torch.Tensor:
        """``G_ema(z, c, truncation_psi=truncation, noise_mode=noise_mode)``: images in about [-1, 1]."""
        psi = self.default_truncation if truncation is None else float(truncation)
        z = z.to(self._device())
        c = self.one_hot(labels, z.shape[0])
        if z.device.type == "cpu" and not torch.is_autocast_enabled("cpu") and z.shape[0] > 1:
            # fp32 inference convolves with per-sample weights (the reference's fused path); on a CPU a grouped
            # convolution over a batch of them is slower per image than one sample at a time, which is also how
            # the reference's gen_images.py draws seeds
            return torch.cat([self.G_ema(z[i:i + 1], c[i:i + 1], truncation_psi=psi, noise_mode=noise_mode)
                              for i in range(z.shape[0])])
        return self.G_ema(z, c, truncation_psi=psi, noise_mode=noise_mode)

    def _generate(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float | None = None,
                  truncation_cutoff: int | None = None, noise_mode: str = "const") -> torch.Tensor:
        psi = self.truncation_psi if truncation_psi is None else truncation_psi
        return self.G_ema(z, c, truncation_psi=psi, truncation_cutoff=truncation_cutoff,
                          noise_mode=noise_mode)

    # ------------------------------------------------------------------------------------------ protocol
    def example_batch(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(0)
        shape = (batch_size, self.img_channels, self.img_resolution, self.img_resolution)
        batch = {"image": (torch.rand(shape, generator=g) * 2 - 1).to(self._device())}
        if self.c_dim > 0:
            batch["label"] = (torch.arange(batch_size) % self.c_dim).to(self._device())
        return batch

    def generators(self) -> dict[str, nn.Module]:
        return {"G": self.G}

    def discriminators(self) -> dict[str, nn.Module]:
        return {"D": self.D}

    def _batch_c(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(batch, dict) or "image" not in batch:
            keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
            raise ValueError(f"stylegan2 expects a batch {{'image': x in [-1, 1]{', label: y' * (self.c_dim > 0)}}}; "
                             f"got {keys}.")
        image = batch["image"]
        return image, self.one_hot(batch.get("label") if self.c_dim > 0 else None, image.shape[0])

    def generator_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, LossLogs]:
        """The non-saturating logistic loss of fresh fakes (the reference's ``Gmain``), noise drawn at random."""
        image, c = self._batch_c(batch)
        fake = self.G(self.sample_z(image.shape[0]), c, noise_mode="random")
        logits = self.D(fake, c)
        loss = F.softplus(-logits).mean()
        return loss, {"G_adv": loss.detach(), "G_fake_logit": logits.detach().mean()}

    def discriminator_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, LossLogs]:
        """The logistic loss of reals against detached fakes (the reference's ``Dmain``)."""
        image, c = self._batch_c(batch)
        with torch.no_grad():
            fake = self.G(self.sample_z(image.shape[0]), c, noise_mode="random")
        real_logits, fake_logits = self.D(image, c), self.D(fake, c)
        loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        return loss, {"D_adv": loss.detach(), "D_real_logit": real_logits.detach().mean(),
                      "D_fake_logit": fake_logits.detach().mean()}


class StyleGAN2(StyleGAN2Base, UnconditionalSampler, SeededSampler):
    """Unconditional StyleGAN2-ADA: ``forward(z)`` is ``G_ema(z, None, truncation_psi, noise_mode='const')``."""

    def _check_conditioning(self) -> None:
        if self.c_dim != 0:
            raise ValueError(f"stylegan2: c_dim={self.c_dim} makes a class-conditional model; build it as "
                             "stylegan2_cifar (or a tag of it), whose class takes labels.")

    def forward(self, z: torch.Tensor, truncation_psi: float | None = None, truncation_cutoff: int | None = None,
                noise_mode: str = "const") -> torch.Tensor:
        """Images in about [-1, 1] for latents ``z`` (N, z_dim): ``G_ema(z, None, psi, noise_mode='const')``.

        ``truncation_psi`` None uses the model's ``truncation_psi``.
        """
        return self._generate(z, self.one_hot(None, z.shape[0]), truncation_psi, truncation_cutoff, noise_mode)

    @torch.no_grad()
    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.forward(self.sample_z(batch_size, generator))

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor]:
        return (self.sample_z(batch_size, torch.Generator().manual_seed(0)),)


class StyleGAN2Conditional(StyleGAN2Base, ConditionalSampler, SeededSampler):
    """Class-conditional StyleGAN2-ADA: ``forward(z, labels)`` with integer labels (or the reference's one-hot c)."""

    def _check_conditioning(self) -> None:
        if self.c_dim <= 0:
            raise ValueError("stylegan2: a class-conditional model needs c_dim > 0 (the number of classes); "
                             "build an unconditional one as stylegan2.")

    @property
    def num_classes(self) -> int:
        return self.c_dim

    def forward(self, z: torch.Tensor, labels: torch.Tensor, truncation_psi: float | None = None,
                truncation_cutoff: int | None = None, noise_mode: str = "const") -> torch.Tensor:
        """Images in about [-1, 1] of the classes ``labels`` (N,) for latents ``z`` (N, z_dim)."""
        return self._generate(z, self.one_hot(labels, z.shape[0]), truncation_psi, truncation_cutoff, noise_mode)

    @torch.no_grad()
    def sample(self, labels, generator: torch.Generator | None = None) -> torch.Tensor:
        labels = torch.as_tensor(labels).reshape(-1)
        return self.forward(self.sample_z(labels.shape[0], generator), labels)

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.sample_z(batch_size, torch.Generator().manual_seed(0))
        return z, (torch.arange(batch_size) % self.c_dim).to(self._device())


def model_class(config: dict[str, Any]) -> type[StyleGAN2Base]:
    """The class of a configuration: conditional when ``c_dim > 0`` (a snapshot records which)."""
    return StyleGAN2Conditional if config.get("c_dim", 0) > 0 else StyleGAN2


# ------------------------------------------------------------------------------------------------ registry
def _config(res: int, fmaps: float, mapping_layers: int, mbstd: int, r1_gamma: float,
            architecture: str = "resnet", **loss: Any) -> dict[str, Any]:
    """A reference ``train.py`` configuration (``cfg_specs``) as the model's arguments."""
    channel_base = int(fmaps * 32768)
    common = dict(channel_base=channel_base, channel_max=512, num_fp16_res=4, conv_clamp=256)
    return dict(z_dim=512, w_dim=512, img_resolution=res, img_channels=3,
                mapping_kwargs={"num_layers": mapping_layers}, synthesis_kwargs=dict(common),
                D_kwargs={**common, "architecture": architecture, "epilogue_kwargs": {"mbstd_group_size": mbstd}},
                r1_gamma=r1_gamma, **loss)


CONFIGS: dict[str, dict[str, Any]] = {
    "paper256": _config(256, 0.5, 8, 8, 1.0),
    "paper512": _config(512, 1, 8, 8, 0.5),
    "paper1024": _config(1024, 1, 8, 4, 2.0),
    "stylegan2": _config(1024, 1, 8, 4, 10.0),
    "cifar": {**_config(32, 1, 2, 32, 0.01, architecture="orig", pl_weight=0.0, style_mixing_prob=0.0), "c_dim": 10},
}
TINY = dict(z_dim=16, w_dim=16, img_resolution=16, mapping_kwargs={"num_layers": 2},
            synthesis_kwargs={"channel_base": 256, "channel_max": 16},
            D_kwargs={"channel_base": 256, "channel_max": 16, "epilogue_kwargs": {"mbstd_group_size": 2}})


def _cfg(res: int, description: str, **facts: Any) -> dict[str, Any]:
    return dict(input_size=(3, res, res), mean=(0.5,) * 3, std=(0.5,) * 3, paper=PAPER, description=description,
                **facts)


PUBLISHED_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/{tag}.pkl"
LICENSE_URL = "https://nvlabs.github.io/stylegan2-ada-pytorch/license.html"
# tag -> (image side, the reference's --cfg it was trained with, dataset, what it is): the README of
# NVlabs/stylegan2-ada-pytorch lists these files.
PUBLISHED = {
    "ffhq": (1024, "stylegan2", "FFHQ", "FFHQ at 1024x1024, trained with the original StyleGAN2"),
    "metfaces": (1024, "stylegan2", "MetFaces", "MetFaces at 1024x1024, transfer learning from FFHQ with ADA"),
    "afhqcat": (512, "paper512", "AFHQ Cat", "AFHQ Cat at 512x512, trained from scratch with ADA"),
    "afhqdog": (512, "paper512", "AFHQ Dog", "AFHQ Dog at 512x512, trained from scratch with ADA"),
    "afhqwild": (512, "paper512", "AFHQ Wild", "AFHQ Wild at 512x512, trained from scratch with ADA"),
    "brecahad": (512, "paper512", "BreCaHAD", "BreCaHAD at 512x512, trained from scratch with ADA"),
    "cifar10": (32, "cifar", "CIFAR-10", "class-conditional CIFAR-10 at 32x32"),
}


def published_cfgs(default: dict[str, Any], conditional: bool) -> dict[str, PretrainedCfg]:
    """The untagged configuration first (no weights), then one per published snapshot of that kind (class-
    conditional or not), read by the safe reader.

    A snapshot records its own constructor arguments; ``model_args`` here are the configuration it was trained
    with (what ``vgzoo info`` shows before the download, and the loss weights transfer learning starts from).
    """
    cfgs = {"": PretrainedCfg(**default)}
    for tag, (res, config, dataset, what) in PUBLISHED.items():
        if (CONFIGS[config].get("c_dim", 0) > 0) != conditional:
            continue
        facts: dict[str, Any] = dict(
            url=PUBLISHED_URL.format(tag=tag), reader="vgzoo_stylegan2.snapshot:read_reference_snapshot",
            license=LICENSE, license_link=LICENSE_URL, dataset=dataset, model_args=dict(CONFIGS[config]),
            notes=f"Non-commercial use only ({LICENSE_URL}). The published snapshot ({tag}.pkl) is read as data; "
                  "its embedded code never runs.")
        if conditional:
            facts.update(num_classes=10, model_args={**CONFIGS[config], "class_names": list(CIFAR10_CLASSES)})
        cfgs[tag] = PretrainedCfg(**_cfg(res, f"StyleGAN2-ADA: {what} (the reference's published {tag}.pkl; G, D "
                                                "and G_ema)", **facts))
    return cfgs


# the class-conditional snapshots are stylegan2_cifar's tags; stylegan2.TAG keeps naming them (an alias)
_CONDITIONAL_TAGS = [tag for tag, (_, config, _, _) in PUBLISHED.items() if CONFIGS[config].get("c_dim", 0) > 0]

_family = ModelFamily("stylegan2", StyleGAN2, task="generation", test_kwargs=TINY)

stylegan2 = _family.variant(
    "stylegan2", published_cfgs(_cfg(1024, "StyleGAN2-ADA, the reference's 'stylegan2' configuration (1024 px, 8 "
                                           "mapping layers, R1 gamma 10)."), conditional=False), CONFIGS["stylegan2"],
    aliases={tag: f"stylegan2_cifar.{tag}" for tag in _CONDITIONAL_TAGS})
stylegan2_paper256 = _family.variant(
    "stylegan2_paper256", _cfg(256, "StyleGAN2-ADA 'paper256' configuration (256 px, half the channels)."),
    CONFIGS["paper256"])
stylegan2_paper512 = _family.variant(
    "stylegan2_paper512", _cfg(512, "StyleGAN2-ADA 'paper512' configuration (512 px)."), CONFIGS["paper512"])
stylegan2_paper1024 = _family.variant(
    "stylegan2_paper1024", _cfg(1024, "StyleGAN2-ADA 'paper1024' configuration (1024 px, R1 gamma 2)."),
    CONFIGS["paper1024"])
stylegan2_cifar = register_model(
    "stylegan2_cifar", StyleGAN2Conditional, family="stylegan2", task="conditional_generation",
    cfgs=published_cfgs(_cfg(32, "Class-conditional StyleGAN2-ADA, the reference's 'cifar' configuration (32 px, "
                                 "10 classes, 2 mapping layers, D architecture 'orig').", num_classes=10),
                        conditional=True),
    model_args=CONFIGS["cifar"], test_kwargs={**TINY, "c_dim": 10})
stylegan2_tiny = _family.variant(
    "stylegan2_tiny", _cfg(16, "A tiny StyleGAN2 (16 px, 16 channels) for tests and quick runs."), TINY)
