"""template_gan: a small unconditional GAN (Goodfellow et al. 2014, "Generative Adversarial Nets", arXiv:1406.2661).

Scaffolded by ``vgzoo plugins new``. Replace the networks with your own and name the paper you implement
here and in the registration's ``paper``: every vgzoo model module says which paper it implements.

What vgzoo relies on (vgzoo's docs/plugins.md, "The model protocol", lists every class and method):

- The model subclasses :class:`vgzoo.protocols.GANModel`. Its constructor's keyword arguments, defaults
  resolved, become ``model.config`` when it is built; ``vgzoo.save_pretrained`` writes that config and
  ``vgzoo.create("local-dir:...")`` rebuilds the model from it, so every argument must be a JSON value
  (numbers, strings, booleans, lists) and everything that changes the model must be an argument.
- :class:`vgzoo.protocols.UnconditionalSampler` is the capability this GAN offers (``sample_z``,
  ``sample``). vgzoo recognises capabilities with ``isinstance`` (sample grids, export), never by attribute names.
- ``template_gan = register_model("template_gan", TemplateGAN, ...)`` at the bottom is what the
  entry point in pyproject.toml names; the entry point's name must equal the registered name.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from vgzoo import register_model
from vgzoo.losses import GAN_MODES, discriminator_adversarial_loss, generator_adversarial_loss
from vgzoo.protocols import GANModel, LossLogs, UnconditionalSampler

PAPER = "Goodfellow et al. 2014, Generative Adversarial Nets, NeurIPS (arXiv:1406.2661)"


class TemplateGAN(GANModel, UnconditionalSampler):
    """An MLP generator (z -> image in [-1, 1]) and an MLP discriminator (image -> one logit).

    Args:
        img_size: image side in pixels.
        in_chans: image channels (1 for grayscale, 3 for colour).
        nz: latent dimension; ``z`` is standard normal.
        width: hidden width of both MLPs.
        gan_mode: adversarial objective, one of ``vgzoo.losses.GAN_MODES``.
    """

    def __init__(self, img_size: int = 16, in_chans: int = 1, nz: int = 32, width: int = 128,
                 gan_mode: str = "vanilla") -> None:
        super().__init__()
        if gan_mode not in GAN_MODES:
            raise ValueError(f"template_gan: gan_mode={gan_mode!r} is not one of {GAN_MODES}; pick one of those.")
        self.img_size, self.in_chans, self.nz, self.gan_mode = img_size, in_chans, nz, gan_mode
        pixels = in_chans * img_size * img_size
        self.generator = nn.Sequential(
            nn.Linear(nz, width),
            nn.ReLU(),
            nn.Linear(width, pixels),
            nn.Tanh(),
            nn.Unflatten(1, (in_chans, img_size, img_size)),
        )
        self.discriminator = nn.Sequential(nn.Flatten(), nn.Linear(pixels, width), nn.LeakyReLU(0.2),
                                           nn.Linear(width, 1))
        # What the built model knows of its inputs; create() adds architecture, family and task.
        self.pretrained_cfg: dict[str, Any] = {
            "input_size": (in_chans, img_size, img_size),
            "mean": (0.5,) * in_chans,
            "std": (0.5,) * in_chans,
        }

    # -- inference (UnconditionalSampler) ------------------------------------------------------------
    def sample_z(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``batch_size`` latents on the model's device, drawn on ``generator``'s device when one is given."""
        device = next(self.parameters()).device
        draw_on = generator.device if generator is not None else device
        return torch.randn(batch_size, self.nz, device=draw_on, generator=generator).to(device)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] of shape (B, C, H, W) for latent codes ``z`` of shape (B, nz)."""
        return self.generator(z)

    @torch.no_grad()
    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``batch_size`` images in [-1, 1] from fresh latents."""
        return self.generator(self.sample_z(batch_size, generator))

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, ...]:
        return (self.sample_z(batch_size),)

    # -- training (GANModel) -------------------------------------------------------------------------
    def example_batch(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        """The ``generation`` task's batch: real images in [-1, 1] under the key ``image``."""
        shape = (batch_size, self.in_chans, self.img_size, self.img_size)
        return {"image": torch.rand(shape, device=next(self.parameters()).device) * 2 - 1}

    def generators(self) -> dict[str, nn.Module]:
        return {"generator": self.generator}

    def discriminators(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}

    def generator_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, LossLogs]:
        """Make the discriminator call a fresh batch of samples real (log keys ``G_*``)."""
        fake = self.generator(self.sample_z(batch["image"].shape[0]))
        loss = generator_adversarial_loss(self.discriminator(fake), self.gan_mode)
        return loss, {"G_adv": loss.detach()}

    def discriminator_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, LossLogs]:
        """Tell the real images of ``batch`` from detached samples (log keys ``D_*``)."""
        real = batch["image"]
        with torch.no_grad():
            fake = self.generator(self.sample_z(real.shape[0]))
        real_logits, fake_logits = self.discriminator(real), self.discriminator(fake)
        loss = discriminator_adversarial_loss(real_logits, fake_logits, self.gan_mode)
        return loss, {
            "D_adv": loss.detach(),
            "D_real_logit": real_logits.detach().mean(),
            "D_fake_logit": fake_logits.detach().mean(),
        }


# The registration: the entry point `template_gan = "template_pkg.model:template_gan"` names this object.
template_gan = register_model(
    "template_gan",
    TemplateGAN,
    family="template_gan",
    task="generation",  # one of vgzoo's tasks; `vgzoo train` picks its recipe by task
    cfgs={  # the default pretrained config; required: input_size, mean, std, paper
        "input_size": (1, 16, 16),
        "mean": (0.5,),
        "std": (0.5,),
        "paper": PAPER,
        "description": "A small MLP GAN for 16x16 images (scaffolded by vgzoo plugins new).",
    },
    model_args={},  # the constructor arguments that make this variant (defaults otherwise)
    test_kwargs={"img_size": 8, "width": 16},  # a tiny configuration for the conformance kit
)
