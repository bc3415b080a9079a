"""The unconditional GAN of Goodfellow et al. (2014), "Generative Adversarial Nets" (arXiv:1406.2661).

A generator maps noise ``z ~ U[-1, 1]^nz`` to an image; a discriminator scores images with one logit
(real or generated). The generator follows the layout of the classic Keras/PyTorch MNIST examples:
``Linear(nz, 64*8*8) -> ReLU -> Unflatten(64, 8, 8)``, then nearest-neighbour upsampling stages
(``Upsample x2 -> Conv3x3 -> BatchNorm -> ReLU``) up to the image size and a ``Conv3x3 -> Tanh``
to the image channels. The discriminator is a stride-2 conv stack with LeakyReLU down to 4x4 and a
linear layer to one logit, so it also works with the WGAN-GP loss (no batch statistics inside).

The model follows vgzoo's protocol for the ``generation`` task (``vgzoo.protocols.GANModel`` and
``UnconditionalSampler``): ``forward(z)`` samples images in
[-1, 1], and ``generator_loss`` / ``discriminator_loss`` take a batch ``{"image": x}`` of real images
in [-1, 1].
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from vgzoo import register_model
from vgzoo.losses import GAN_MODES, discriminator_adversarial_loss, generator_adversarial_loss, gradient_penalty
from vgzoo.protocols import GANModel, LossLogs, UnconditionalSampler

__all__ = ["VanillaGAN", "VanillaGenerator", "VanillaDiscriminator", "gan_vanilla"]

SEED_SIZE = 8  # the generator's first feature map is SEED_SIZE x SEED_SIZE

PAPER = "Goodfellow et al. 2014, Generative Adversarial Nets, NeurIPS (arXiv:1406.2661)"


def _check_img_size(img_size: int) -> int:
    """Number of x2 upsampling stages from the 8x8 seed to ``img_size``."""
    stages = math.log2(img_size / SEED_SIZE) if img_size >= SEED_SIZE else -1.0
    if stages < 0 or stages != int(stages):
        raise ValueError(
            f"gan_vanilla: img_size={img_size} is not reachable from the 8x8 seed by doubling; "
            "expected 8 * 2**k (8, 16, 32, 64, ...). Pick one of those or resize your images."
        )
    return int(stages)


class VanillaGenerator(nn.Module):
    """``z (B, nz) -> image (B, C, H, W)`` in [-1, 1]."""

    def __init__(self, nz: int = 20, img_size: int = 32, out_chans: int = 1, base_chans: int = 64) -> None:
        super().__init__()
        stages = _check_img_size(img_size)
        self.nz = nz
        self.project = nn.Sequential(
            nn.Linear(nz, base_chans * SEED_SIZE * SEED_SIZE),
            nn.ReLU(inplace=True),
            nn.Unflatten(1, (base_chans, SEED_SIZE, SEED_SIZE)),
        )
        blocks: list[nn.Module] = []
        chans = base_chans
        for _ in range(stages):
            nxt = max(chans // 2, 8)
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(chans, nxt, 3, padding=1, bias=False),
                nn.BatchNorm2d(nxt),
                nn.ReLU(inplace=True),
            ]
            chans = nxt
        self.upsample = nn.Sequential(*blocks)
        self.to_image = nn.Sequential(nn.Conv2d(chans, out_chans, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.to_image(self.upsample(self.project(z)))


class VanillaDiscriminator(nn.Module):
    """``image (B, C, H, W) -> logit (B, 1)``; raw logits, no sigmoid."""

    def __init__(self, img_size: int = 32, in_chans: int = 1, ndf: int = 64) -> None:
        super().__init__()
        _check_img_size(img_size)
        layers: list[nn.Module] = []
        chans, size, width = in_chans, img_size, ndf
        while size > 4:
            layers += [nn.Conv2d(chans, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            chans, size, width = width, size // 2, min(width * 2, ndf * 8)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(chans * size * size, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class VanillaGAN(GANModel, UnconditionalSampler):
    """Generator + discriminator with the losses of the ``generation`` task.

    Args:
        nz: latent dimension; ``z`` is uniform in [-1, 1]^nz.
        img_size: output side, 8 * 2**k.
        in_chans: image channels (1 for digits/MNIST, 3 for colour).
        base_chans: channels of the 8x8 seed feature map (64 in the classic layout).
        ndf: width of the discriminator's first conv.
        gan_mode: adversarial objective, one of ``vgzoo.losses.GAN_MODES``.
        gp_weight: gradient-penalty weight, used with ``gan_mode="wgangp"`` only.
    """

    def __init__(
        self,
        nz: int = 20,
        img_size: int = 32,
        in_chans: int = 1,
        base_chans: int = 64,
        ndf: int = 64,
        gan_mode: str = "vanilla",
        gp_weight: float = 10.0,
    ) -> None:
        super().__init__()
        if gan_mode not in GAN_MODES:
            raise ValueError(f"gan_vanilla: gan_mode={gan_mode!r} is not one of {GAN_MODES}; pick one of those.")
        self.nz, self.img_size, self.in_chans = nz, img_size, in_chans
        self.gan_mode, self.gp_weight = gan_mode, gp_weight
        self.generator = VanillaGenerator(nz, img_size, in_chans, base_chans)
        self.discriminator = VanillaDiscriminator(img_size, in_chans, ndf)
        self._init_weights()
        self.pretrained_cfg: dict[str, Any] = {
            "input_size": (in_chans, img_size, img_size),
            "mean": (0.5,) * in_chans,
            "std": (0.5,) * in_chans,
        }

    def _init_weights(self) -> None:
        # DCGAN-style N(0, 0.02) conv/linear weights and N(1, 0.02) norm scales.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    # -- inference --------------------------------------------------------------------------------
    def sample_z(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``z`` uniform in [-1, 1]^nz on the model's device.

        ``generator`` may live on another device than the model (a CPU generator for reproducible
        previews of a CUDA model): the noise is drawn on the generator's device and moved.
        """
        device = next(self.parameters()).device
        draw_on = generator.device if generator is not None else device
        z = torch.rand(batch_size, self.nz, device=draw_on, generator=generator) * 2.0 - 1.0
        return z.to(device)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] for the latent codes ``z`` of shape (B, nz)."""
        return self.generator(z)

    @torch.no_grad()
    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``batch_size`` images in [-1, 1] from fresh noise."""
        return self.generator(self.sample_z(batch_size, generator))

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor]:
        return (self.sample_z(batch_size),)

    def example_batch(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        device = next(self.parameters()).device
        return {"image": torch.rand(batch_size, self.in_chans, self.img_size, self.img_size, device=device) * 2 - 1}

    # -- training ---------------------------------------------------------------------------------
    def generators(self) -> dict[str, nn.Module]:
        return {"generator": self.generator}

    def discriminators(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}

    def generator_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, LossLogs]:
        """Make the discriminator call a fresh batch of samples real."""
        fake = self.generator(self.sample_z(batch["image"].shape[0]))
        loss = generator_adversarial_loss(self.discriminator(fake), self.gan_mode)
        return loss, {"G_adv": loss.detach()}

    def discriminator_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, LossLogs]:
        """Tell the real images of ``batch`` from (detached) samples."""
        real = batch["image"]
        with torch.no_grad():
            fake = self.generator(self.sample_z(real.shape[0]))
        real_logits, fake_logits = self.discriminator(real), self.discriminator(fake)
        loss = discriminator_adversarial_loss(real_logits, fake_logits, self.gan_mode)
        logs = {"D_adv": loss.detach()}
        if self.gan_mode == "wgangp":
            gp = gradient_penalty(self.discriminator, real, fake, weight=self.gp_weight)
            loss = loss + gp
            logs["D_gp"] = gp.detach()
        logs["D_real_logit"] = real_logits.detach().mean()
        logs["D_fake_logit"] = fake_logits.detach().mean()
        return loss, logs


# The plugin's registration: the entry point `gan_vanilla = "vgzoo_vanilla_gan.model:gan_vanilla"` names this object.
gan_vanilla = register_model(
    "gan_vanilla",
    VanillaGAN,
    family="gan_vanilla",
    task="generation",
    cfgs={
        "input_size": (1, 32, 32),
        "mean": (0.5,),
        "std": (0.5,),
        "paper": PAPER,
        "description": "Unconditional GAN: uniform z (nz=20) -> Linear -> 8x8 -> upsampling -> Tanh; "
                       "conv discriminator.",
    },
    test_kwargs={"img_size": 16, "base_chans": 16, "ndf": 8},
)
