"""Class-conditional GAN with learned label maps.

Implements the conditional GAN of Mirza & Osindero, "Conditional Generative Adversarial Nets",
arXiv:1411.1784 (2014): both the generator and the discriminator see the class label y, so the
generator learns P(x | y) -- choose the class, vary the latent z.

The label enters each network as a learned map: ``Embedding(num_classes, H*W)`` reshaped to one
``(B, 1, H, W)`` plane concatenated as an extra channel (after the generator's first projection,
and to the discriminator's input image).

Generator::

    z (B, nz) -> Linear(nz, C0*H0*W0) -> ReLU -> Unflatten(C0, H0, W0)       H0 = W0 = img_size // 4
              -> concat label map (B, 1, H0, W0)                            C0 + 1 channels
              -> 2 x [ConvTranspose2d(4, stride 2) -> BatchNorm -> ReLU]    to img_size
              -> Conv2d(3x3) -> Tanh                                       (B, channels, img, img) in [-1, 1]

Discriminator::

    x (B, C, H, W) -> concat its own label map (B, 1, H, W)                C + 1 channels
                   -> [Conv2d(4, stride 2) -> LeakyReLU(0.2)] while the side is even and > 4
                   -> Conv2d(kernel = remaining side) -> one logit per image

Registered models: ``cgan_embed`` (32x32 RGB, 10 classes) and ``cgan_embed_digits`` (16x16 grey,
10 classes, for the built-in digits). Images are in [-1, 1] (mean = std = 0.5 per channel).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._registry import ModelFamily, make_cfg
from ..layers.init import init_normal_
from ..layers.label_map import LabelMap, validate_labels
from ..losses import discriminator_adversarial_loss, generator_adversarial_loss
from ..protocols import ConditionalSampler, GANModel, LossLogs

__all__ = ["ConditionalGAN", "ConditionalGenerator", "ConditionalDiscriminator", "cgan_embed", "cgan_embed_digits"]

LATENTS = ("uniform", "normal")
GAN_LOSSES = ("vanilla", "hinge", "lsgan")
PAPER = "Mirza & Osindero, Conditional Generative Adversarial Nets, arXiv:1411.1784 (2014)"


def _check_img_size(img_size: int) -> None:
    if not isinstance(img_size, int) or img_size < 8 or img_size % 4:
        raise ValueError(
            f"cgan: img_size must be an int >= 8 divisible by 4 (the generator starts at img_size // 4 and "
            f"upsamples twice); got {img_size!r}."
        )


class ConditionalGenerator(nn.Module):
    """z and a class label -> an image in [-1, 1].

    Args:
        img_size: output side (divisible by 4).
        channels: output channels.
        num_classes: number of classes.
        nz: latent size.
        ngf: channels of the first feature map C0 (then ngf, ngf // 2 after the two upsampling blocks).
    """

    def __init__(self, img_size: int = 32, channels: int = 3, num_classes: int = 10, nz: int = 100,
                 ngf: int = 64) -> None:
        super().__init__()
        _check_img_size(img_size)
        self.img_size, self.channels, self.num_classes, self.nz = img_size, channels, num_classes, nz
        h0 = img_size // 4
        self.project = nn.Sequential(
            nn.Linear(nz, ngf * h0 * h0),
            nn.ReLU(inplace=True),
            nn.Unflatten(1, (ngf, h0, h0)),
        )
        self.label_map = LabelMap(num_classes, h0)
        widths = [ngf + 1, ngf, max(ngf // 2, 1)]
        blocks: list[nn.Module] = []
        for cin, cout in zip(widths[:-1], widths[1:], strict=True):
            blocks += [
                nn.ConvTranspose2d(cin, cout, kernel_size=4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
        self.upsample = nn.Sequential(*blocks)
        self.to_image = nn.Sequential(nn.Conv2d(widths[-1], channels, kernel_size=3, padding=1), nn.Tanh())
        init_normal_(self)  # DCGAN's (Radford et al. 2016) N(0, 0.02) / BN N(1, 0.02)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``z`` (B, nz) float and ``labels`` (B,) int in [0, num_classes) -> images (B, C, H, W) in [-1, 1]."""
        if not isinstance(z, torch.Tensor) or not z.is_floating_point() or z.ndim != 2 or z.shape[1] != self.nz:
            got = f"shape {tuple(z.shape)} {z.dtype}" if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(
                f"z must be a float tensor of shape (batch, nz={self.nz}); got {got}. "
                "Use model.sample(labels) to let the model draw z."
            )
        labels = validate_labels(labels, self.num_classes, z.shape[0]).to(z.device)
        x = self.label_map.concat(self.project(z), labels)
        return self.to_image(self.upsample(x))


class ConditionalDiscriminator(nn.Module):
    """An image and a class label -> one real/fake logit per image (no sigmoid).

    Args:
        img_size: input side (divisible by 4).
        channels: input channels.
        num_classes: number of classes.
        ndf: channels of the first conv, doubled at every further stride (at most 8 * ndf).
        spectral_norm: wrap every conv in spectral normalisation (Miyato et al. 2018).
    """

    def __init__(self, img_size: int = 32, channels: int = 3, num_classes: int = 10, ndf: int = 64,
                 spectral_norm: bool = False) -> None:
        super().__init__()
        _check_img_size(img_size)
        self.img_size, self.channels, self.num_classes = img_size, channels, num_classes
        self.label_map = LabelMap(num_classes, img_size)

        def conv(*args, **kwargs) -> nn.Module:
            layer = nn.Conv2d(*args, **kwargs)
            return nn.utils.parametrizations.spectral_norm(layer) if spectral_norm else layer

        layers: list[nn.Module] = []
        cin, cout, side = channels + 1, ndf, img_size
        while side > 4 and side % 2 == 0:
            layers += [conv(cin, cout, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            cin, cout, side = cout, min(cout * 2, ndf * 8), side // 2
        layers += [conv(cin, 1, kernel_size=side), nn.Flatten(0)]
        self.net = nn.Sequential(*layers)
        if not spectral_norm:
            init_normal_(self.net)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [-1, 1] and labels (B,) -> logits (B,)."""
        expected = (self.channels, self.img_size, self.img_size)
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != expected:
            got = f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"images must be a tensor of shape (batch, {', '.join(map(str, expected))}); got {got}.")
        labels = validate_labels(labels, self.num_classes, x.shape[0]).to(x.device)
        return self.net(self.label_map.concat(x, labels))


class ConditionalGAN(GANModel, ConditionalSampler):
    """The composite conditional GAN: ``forward(z, labels)`` samples, the losses train it.

    Args:
        img_size: image side (divisible by 4).
        in_chans: image channels.
        num_classes: number of classes.
        nz: latent size.
        ngf: generator width (channels of the first feature map).
        ndf: discriminator width (channels of its first conv).
        latent: distribution of z, ``"uniform"`` in [-1, 1] (as in the paper) or ``"normal"`` N(0, 1).
        gan_mode: adversarial objective, ``"vanilla"`` (BCE), ``"hinge"`` or ``"lsgan"``.
        spectral_norm: spectral normalisation on the discriminator's convs.
    """

    def __init__(self, img_size: int = 32, in_chans: int = 3, num_classes: int = 10, nz: int = 100,
                 ngf: int = 64, ndf: int = 64, latent: str = "uniform", gan_mode: str = "vanilla",
                 spectral_norm: bool = False) -> None:
        super().__init__()
        if latent not in LATENTS:
            raise ValueError(f"cgan: latent must be one of {LATENTS}; got {latent!r}.")
        if gan_mode not in GAN_LOSSES:
            raise ValueError(f"cgan: gan_mode must be one of {GAN_LOSSES}; got {gan_mode!r}.")
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"cgan: num_classes must be a positive int; got {num_classes!r}.")
        self.img_size, self.in_chans, self.num_classes, self.nz = img_size, in_chans, num_classes, nz
        self.latent, self.gan_mode = latent, gan_mode
        self.generator = ConditionalGenerator(img_size, in_chans, num_classes, nz, ngf)
        self.discriminator = ConditionalDiscriminator(img_size, in_chans, num_classes, ndf, spectral_norm)
        self.pretrained_cfg = {
            "input_size": (in_chans, img_size, img_size),
            "mean": (0.5,) * in_chans,
            "std": (0.5,) * in_chans,
            "num_classes": num_classes,
        }

    # ------------------------------------------------------------------------------------ sampling

    def sample_z(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``batch_size`` latents (uniform in [-1, 1] or N(0, 1)) on the model's device.

        With a ``torch.Generator`` the draw happens on that generator's device and is reproducible.
        """
        device = generator.device if generator is not None else self._device()
        if self.latent == "uniform":
            z = torch.rand(batch_size, self.nz, generator=generator, device=device) * 2.0 - 1.0
        else:
            z = torch.randn(batch_size, self.nz, generator=generator, device=device)
        return z.to(self._device())

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``z`` (B, nz) and ``labels`` (B,) -> images (B, C, H, W) in [-1, 1]."""
        return self.generator(z, labels)

    def sample(self, labels, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images of the given classes, drawing z itself (reproducibly with a ``torch.Generator``).

        Args:
            labels: (B,) integer class indices (a tensor or a list of ints) in [0, num_classes).
            generator: optional ``torch.Generator`` for the latent draw.

        Returns:
            (B, C, H, W) images in [-1, 1]. Gradients are tracked; wrap in ``torch.no_grad()`` for inference.
        """
        labels = validate_labels(labels, self.num_classes).to(self._device())
        return self.generator(self.sample_z(labels.shape[0], generator), labels)

    # ---------------------------------------------------------------------------------- protocol
    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        """A reproducible ``(z, labels)`` pair for ``forward``."""
        z = self.sample_z(batch_size, torch.Generator().manual_seed(0))
        labels = (torch.arange(batch_size) % self.num_classes).to(self._device())
        return z, labels

    def example_batch(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        """A training batch ``{"image": x in [-1, 1], "label": y}``."""
        g = torch.Generator().manual_seed(0)
        image = torch.rand(batch_size, self.in_chans, self.img_size, self.img_size, generator=g) * 2.0 - 1.0
        label = torch.arange(batch_size) % self.num_classes
        return {"image": image.to(self._device()), "label": label.to(self._device())}

    def generators(self) -> dict[str, nn.Module]:
        return {"generator": self.generator}

    def discriminators(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}

    def _unpack(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(batch, dict) or "image" not in batch or "label" not in batch:
            keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
            raise ValueError(f"cgan expects a batch {{'image': x in [-1, 1], 'label': y}}; got {keys}.")
        image = batch["image"]
        labels = validate_labels(batch["label"], self.num_classes, image.shape[0], what="batch['label']")
        return image, labels.to(image.device)

    def generator_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, LossLogs]:
        """Adversarial loss of fakes drawn for the batch's labels; logs ``G_adv`` and ``G_fake_logit``."""
        image, labels = self._unpack(batch)
        fake = self.generator(self.sample_z(image.shape[0]), labels)
        fake_logits = self.discriminator(fake, labels)
        loss = generator_adversarial_loss(fake_logits, self.gan_mode)
        return loss, {"G_adv": loss.detach(), "G_fake_logit": fake_logits.detach().mean()}

    def discriminator_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, LossLogs]:
        """Real images with their labels against fakes of the same labels; 0.5 * (real + fake) terms."""
        image, labels = self._unpack(batch)
        with torch.no_grad():
            fake = self.generator(self.sample_z(image.shape[0]), labels)
        real_logits = self.discriminator(image, labels)
        fake_logits = self.discriminator(fake, labels)
        loss = discriminator_adversarial_loss(real_logits, fake_logits, self.gan_mode)
        logs = {
            "D_adv": loss.detach(),
            "D_real_logit": real_logits.detach().mean(),
            "D_fake_logit": fake_logits.detach().mean(),
        }
        return loss, logs


# ------------------------------------------------------------------------------------- registry
def _cfg(in_chans: int, img_size: int, description: str, **facts: Any) -> dict[str, Any]:
    return make_cfg(input_size=(in_chans, img_size, img_size), mean=(0.5,) * in_chans, std=(0.5,) * in_chans,
                    num_classes=10, paper=PAPER, description=description, **facts)


_cgan = ModelFamily("cgan", ConditionalGAN, task="conditional_generation", test_kwargs={"nz": 8, "ngf": 8, "ndf": 8})

cgan_embed = _cgan.variant(
    "cgan_embed", _cfg(3, 32, "Class-conditional GAN with learned label maps, 32x32 RGB, 10 classes (e.g. CIFAR-10)."),
    dict(img_size=32, in_chans=3), test_kwargs={"nz": 8, "ngf": 8, "ndf": 8, "img_size": 16})
cgan_embed_digits = _cgan.variant(
    "cgan_embed_digits",
    _cfg(1, 16, "Class-conditional GAN with learned label maps for the built-in 16x16 digits.",
         file="vgzoo:weights/cgan_embed_digits.safetensors", dataset="builtin:digits", license="Apache-2.0"),
    dict(img_size=16, in_chans=1))
