"""Image restoration as a GAN: a U-Net generator with a per-pixel loss and a binary critic.

The recipe follows Pathak et al. (2016), "Context Encoders: Feature Learning by Inpainting"
(arXiv:1604.07379): a reconstruction loss plus an adversarial loss from a discriminator that tells
restored images from real ones; the generator is the skip-connected encoder-decoder of Isola et al.
(2017), "Image-to-Image Translation with Conditional Adversarial Networks" (arXiv:1611.07004), and
the critic is a small patch discriminator over the image alone.

Training batches of the ``restoration`` task are ``{"image": x}`` with clean images in [-1, 1]; the
model degrades them itself (:meth:`RestorationGAN.degrade`), so any image dataset trains it:

- ``inpaint``: a random rectangle per image is zeroed; the generator sees the masked image plus the
  mask as an extra channel, and only the hole is taken from its output (the known pixels are kept).
- ``denoise``: additive Gaussian noise of standard deviation ``noise_std`` (in the [-1, 1] range).
- ``colorize``: the image is reduced to its luma (ITU-R BT.601 weights); the generator predicts colour.

``forward(degraded)`` restores an already degraded input (``example_inputs`` shows its form).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vgzoo import register_model
from vgzoo.losses import GAN_MODES, discriminator_adversarial_loss, generator_adversarial_loss
from vgzoo.protocols import GANModel, LossLogs, Restorer

__all__ = ["DEGRADATIONS", "RestorationGAN", "RestorationUnet", "PatchCritic", "restoration_unet"]

DEGRADATIONS = ("inpaint", "denoise", "colorize")

PAPER = (
    "Pathak et al. 2016, Context Encoders: Feature Learning by Inpainting, CVPR (arXiv:1604.07379); "
    "U-Net generator after Isola et al. 2017 (arXiv:1611.07004)"
)

_LUMA = (0.299, 0.587, 0.114)


class _Down(nn.Module):
    """Conv4x4 stride 2 -> (BatchNorm) -> LeakyReLU(0.2): halves the side."""

    def __init__(self, in_chans: int, out_chans: int, norm: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chans, out_chans, 4, stride=2, padding=1, bias=not norm)
        self.norm = nn.BatchNorm2d(out_chans) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.norm(self.conv(x)), 0.2)


class _Up(nn.Module):
    """ConvTranspose4x4 stride 2 -> BatchNorm -> ReLU: doubles the side."""

    def __init__(self, in_chans: int, out_chans: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_chans, out_chans, 4, stride=2, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class RestorationUnet(nn.Module):
    """Encoder-decoder with skip connections: ``(B, in_chans, H, W) -> (B, out_chans, H, W)`` in [-1, 1].

    ``depth`` stride-2 stages down (widths ``ngf * 2**i`` capped at ``8 * ngf``) and as many up, each
    up stage concatenating the encoder feature of the same size; H and W must be divisible by ``2**depth``.
    """

    def __init__(self, in_chans: int, out_chans: int, ngf: int = 32, depth: int = 4) -> None:
        super().__init__()
        widths = [min(ngf * 2**i, ngf * 8) for i in range(depth)]
        self.depth = depth
        self.down = nn.ModuleList(
            _Down(in_chans if i == 0 else widths[i - 1], widths[i], norm=0 < i < depth - 1) for i in range(depth)
        )
        ups = []
        for i in reversed(range(1, depth)):
            # the deepest stage has no skip partner; every other one takes a concatenated skip
            in_width = widths[i] if i == depth - 1 else 2 * widths[i]
            ups.append(_Up(in_width, widths[i - 1]))
        self.up = nn.ModuleList(ups)
        self.out = nn.ConvTranspose2d(2 * widths[0] if depth > 1 else widths[0], out_chans, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = 2**self.depth
        if x.shape[-1] % size or x.shape[-2] % size:
            raise ValueError(
                f"RestorationUnet(depth={self.depth}): input side {tuple(x.shape[-2:])} must be divisible by {size}; "
                "resize or pad the image, or build the model with a smaller depth."
            )
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottleneck feeds the first up stage directly
        for block in self.up:
            x = block(x)
            x = torch.cat([x, skips.pop()], 1)
        return torch.tanh(self.out(x))


class PatchCritic(nn.Module):
    """A binary critic over images: a grid of real/restored logits (a PatchGAN without batch statistics)."""

    def __init__(self, in_chans: int, ndf: int = 32, n_layers: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        chans, width = in_chans, ndf
        for _ in range(n_layers):
            layers += [nn.Conv2d(chans, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            chans, width = width, min(width * 2, ndf * 8)
        layers += [nn.Conv2d(chans, chans, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                   nn.Conv2d(chans, 1, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class RestorationGAN(GANModel, Restorer):
    """U-Net generator + patch critic with the losses of the ``restoration`` task.

    Args:
        degradation: what the model learns to undo: ``inpaint``, ``denoise`` or ``colorize``.
        img_size: training image side (divisible by ``2**depth``).
        in_chans: channels of the clean images (3 for ``colorize``).
        ngf, depth: generator width and number of stride-2 stages.
        ndf, critic_layers: critic width and number of stride-2 stages.
        gan_mode: adversarial objective, one of ``vgzoo.losses.GAN_MODES`` (default: the binary ``vanilla``).
        lambda_pixel: weight of the per-pixel L1 loss against the clean image.
        lambda_adv: weight of the adversarial loss.
        noise_std: Gaussian noise level for ``denoise`` (in the [-1, 1] image range).
        hole_min, hole_max: side of the inpainting hole as a fraction of the image side.
    """

    def __init__(
        self,
        degradation: str = "inpaint",
        img_size: int = 64,
        in_chans: int = 3,
        ngf: int = 32,
        depth: int = 4,
        ndf: int = 32,
        critic_layers: int = 2,
        gan_mode: str = "vanilla",
        lambda_pixel: float = 100.0,
        lambda_adv: float = 1.0,
        noise_std: float = 0.2,
        hole_min: float = 0.25,
        hole_max: float = 0.5,
    ) -> None:
        super().__init__()
        if degradation not in DEGRADATIONS:
            raise ValueError(
                f"restoration_unet: degradation={degradation!r} is not one of {DEGRADATIONS}; pick one of those."
            )
        if degradation == "colorize" and in_chans != 3:
            raise ValueError(f"restoration_unet: colorize needs colour images (in_chans=3), got in_chans={in_chans}.")
        if gan_mode not in GAN_MODES:
            raise ValueError(f"restoration_unet: gan_mode={gan_mode!r} is not one of {GAN_MODES}; pick one of those.")
        if img_size % 2**depth:
            raise ValueError(
                f"restoration_unet: img_size={img_size} must be divisible by 2**depth={2**depth}; "
                "pick another img_size or a smaller depth."
            )
        if not 0 < hole_min <= hole_max < 1:
            raise ValueError(f"restoration_unet: need 0 < hole_min <= hole_max < 1, got {hole_min}, {hole_max}.")
        self.degradation, self.img_size, self.in_chans = degradation, img_size, in_chans
        self.gan_mode, self.lambda_pixel, self.lambda_adv = gan_mode, lambda_pixel, lambda_adv
        self.noise_std, self.hole_min, self.hole_max = noise_std, hole_min, hole_max
        gen_in = {"inpaint": in_chans + 1, "denoise": in_chans, "colorize": 1}[degradation]
        self.generator = RestorationUnet(gen_in, in_chans, ngf=ngf, depth=depth)
        self.discriminator = PatchCritic(in_chans, ndf=ndf, n_layers=critic_layers)
        self._init_weights()
        self.pretrained_cfg: dict[str, Any] = {
            "input_size": (in_chans, img_size, img_size),
            "mean": (0.5,) * in_chans,
            "std": (0.5,) * in_chans,
            "out_chans": in_chans,
            "degradation": degradation,
            "generator_in_chans": gen_in,
        }

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this (``2**depth``): the size rule ``vgzoo export`` records."""
        return 2**self.generator.depth

    # -- degradation ------------------------------------------------------------------------------
    def degrade(self, clean: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The generator's input for clean images in [-1, 1] (random holes or noise per call).

        ``generator`` (optional, on any device) makes the holes or noise reproducible.

        Returns ``(B, C+1, H, W)`` (masked image, hole mask with 1 = missing) for ``inpaint``,
        ``(B, C, H, W)`` noisy images for ``denoise``, ``(B, 1, H, W)`` luma for ``colorize``.
        """
        if self.degradation == "denoise":
            draw_on = generator.device if generator is not None else clean.device
            noise = torch.randn(clean.shape, device=draw_on, dtype=clean.dtype, generator=generator).to(clean.device)
            return (clean + self.noise_std * noise).clamp(-1, 1)
        if self.degradation == "colorize":
            return to_luma(clean)
        hole = random_hole_mask(clean, self.hole_min, self.hole_max, generator)
        return torch.cat([clean * (1 - hole), hole], 1)

    # -- inference --------------------------------------------------------------------------------
    def forward(self, degraded: torch.Tensor) -> torch.Tensor:
        """Restore a degraded input (the form :meth:`degrade` returns) to a clean image in [-1, 1]."""
        out = self.generator(degraded)
        if self.degradation == "inpaint":
            image, hole = degraded[:, :-1], degraded[:, -1:]
            out = image * (1 - hole) + out * hole  # keep every known pixel, fill only the hole
        return out

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor]:
        return (self.degrade(self.example_batch(batch_size)["image"]),)

    def example_batch(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        device = next(self.parameters()).device
        return {"image": torch.rand(batch_size, self.in_chans, self.img_size, self.img_size, device=device) * 2 - 1}

    # -- training ---------------------------------------------------------------------------------
    def generators(self) -> dict[str, nn.Module]:
        return {"generator": self.generator}

    def discriminators(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}

    def generator_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, LossLogs]:
        """``lambda_pixel * L1(restored, clean) + lambda_adv * adversarial(critic(restored))``."""
        clean = batch["image"]
        restored = self(self.degrade(clean))
        pixel = F.l1_loss(restored, clean)
        adv = generator_adversarial_loss(self.discriminator(restored), self.gan_mode)
        loss = self.lambda_pixel * pixel + self.lambda_adv * adv
        with torch.no_grad():
            psnr = psnr_db(restored, clean)
        return loss, {"G_pixel": pixel.detach(), "G_adv": adv.detach(), "psnr_db": psnr}

    def discriminator_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, LossLogs]:
        """The critic tells clean images from (detached) restorations of their degraded copies."""
        clean = batch["image"]
        with torch.no_grad():
            restored = self(self.degrade(clean))
        real_logits, fake_logits = self.discriminator(clean), self.discriminator(restored)
        loss = discriminator_adversarial_loss(real_logits, fake_logits, self.gan_mode)
        return loss, {
            "D_adv": loss.detach(),
            "D_real_logit": real_logits.detach().mean(),
            "D_fake_logit": fake_logits.detach().mean(),
        }

    @torch.no_grad()
    def restore(self, clean: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Degrade ``clean`` and restore it: ``{"degraded", "restored", "psnr_db"}`` (for previews)."""
        degraded = self.degrade(clean, generator)
        restored = self(degraded)
        return {"degraded": degraded, "restored": restored, "psnr_db": psnr_db(restored, clean)}


def to_luma(images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W) -> (B, 1, H, W)`` luma with ITU-R BT.601 weights (range preserved)."""
    weights = images.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


def random_hole_mask(
    images: torch.Tensor, hole_min: float = 0.25, hole_max: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One random axis-aligned rectangle per image: ``(B, 1, H, W)``, 1 inside the hole, 0 elsewhere."""
    b, _, h, w = images.shape
    dev = images.device
    # drawn on the generator's device (a CPU generator gives reproducible holes for a CUDA batch too)
    u = torch.rand(b, 4, device=generator.device if generator is not None else dev, generator=generator).to(dev)
    hh = (h * (hole_min + (hole_max - hole_min) * u[:, 0])).long().clamp(1, h)
    ww = (w * (hole_min + (hole_max - hole_min) * u[:, 1])).long().clamp(1, w)
    top = ((h - hh + 1) * u[:, 2]).long().clamp(max=h - 1)
    left = ((w - ww + 1) * u[:, 3]).long().clamp(max=w - 1)
    rows = torch.arange(h, device=dev).view(1, h, 1)
    cols = torch.arange(w, device=dev).view(1, 1, w)
    inside = (
        (rows >= top.view(b, 1, 1)) & (rows < (top + hh).view(b, 1, 1))
        & (cols >= left.view(b, 1, 1)) & (cols < (left + ww).view(b, 1, 1))
    )
    return inside.unsqueeze(1).to(images.dtype)


def psnr_db(restored: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB for images in [-1, 1] (peak-to-peak range 2), as a 0-dim tensor.

    A tensor, not a float: the trainer reads log values back in batches, so a GPU step does not wait for it.
    """
    mse = F.mse_loss(restored.float(), clean.float()).clamp_min(1e-10)
    return 10 * torch.log10(4.0 / mse)


# The plugin's registration: the entry point `restoration_unet = "vgzoo_restoration.model:restoration_unet"`
# names this object.
restoration_unet = register_model(
    "restoration_unet",
    RestorationGAN,
    family="restoration",
    task="restoration",
    cfgs={
        "input_size": (3, 64, 64),
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
        "out_chans": 3,
        "paper": PAPER,
        "description": "Restoration GAN: U-Net generator (inpaint/denoise/colorize) + L1 + binary patch critic.",
    },
    test_kwargs={"img_size": 16, "ngf": 8, "depth": 3, "ndf": 8},
)
