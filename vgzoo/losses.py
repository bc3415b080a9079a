"""Adversarial and reconstruction losses, and the image pool of Shrivastava et al. (2017).

Adversarial objectives: vanilla (Goodfellow et al. 2014, BCE with logits), LSGAN (Mao et al. 2017,
MSE), hinge (Lim & Ye 2017; Miyato et al. 2018) and WGAN-GP (Gulrajani et al. 2017). Discriminators
return raw logits (no sigmoid); every loss here takes logits.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

GAN_MODES = ("vanilla", "lsgan", "hinge", "wgangp")


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Turn off ``requires_grad`` of the modules' parameters inside the block, then restore it.

    The generator's adversarial term runs the discriminator; freezing it there (as the pix2pix/CycleGAN
    reference does) skips the discriminator's weight gradients, which the generator step does not use.
    """
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _check_mode(mode: str) -> None:
    if mode not in GAN_MODES:
        raise ValueError(f"GAN loss mode {mode!r} is not one of {GAN_MODES}")


def discriminator_adversarial_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, mode: str) -> torch.Tensor:
    """The discriminator's loss, 0.5 * (real term + fake term) as in the pix2pix/CycleGAN reference.

    WGAN-GP returns the critic's Wasserstein estimate only; add :func:`gradient_penalty` yourself.
    """
    _check_mode(mode)
    if mode == "vanilla":
        real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    elif mode == "lsgan":
        real = F.mse_loss(real_logits, torch.ones_like(real_logits))
        fake = F.mse_loss(fake_logits, torch.zeros_like(fake_logits))
    elif mode == "hinge":
        real = F.relu(1.0 - real_logits).mean()
        fake = F.relu(1.0 + fake_logits).mean()
    else:  # wgangp: the critic maximises real - fake
        return fake_logits.mean() - real_logits.mean()
    return 0.5 * (real + fake)


def generator_adversarial_loss(fake_logits: torch.Tensor, mode: str) -> torch.Tensor:
    """The generator's adversarial loss: make the discriminator call fakes real."""
    _check_mode(mode)
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if mode == "lsgan":
        return F.mse_loss(fake_logits, torch.ones_like(fake_logits))
    return -fake_logits.mean()  # hinge and wgangp


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, *extra_args, weight: float = 10.0) -> torch.Tensor:
    """WGAN-GP: ``weight * E[(||grad critic(x_hat)|| - 1)^2]`` on random interpolates of real and fake."""
    alpha = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = critic(x_hat, *extra_args)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return weight * ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


class ImagePool(nn.Module):
    """A history of generated images shown to the discriminator (Shrivastava et al. 2017).

    Until the pool is full every image is stored and returned; afterwards each image is, with
    probability 0.5, swapped for a stored one (which is returned) or returned as is. ``pool_size=0``
    disables the pool. The stored images are training state: :meth:`state_tensors` and
    :meth:`load_state_tensors` let the trainer checkpoint them (they are not in the state dict, so
    inference weights stay independent of training).
    """

    def __init__(self, pool_size: int = 50) -> None:
        super().__init__()
        self.pool_size = pool_size
        self.images: list[torch.Tensor] = []

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.pool_size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image.clone())
                out.append(image)
            elif random.random() > 0.5:
                i = random.randrange(self.pool_size)
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    forward = query

    def state_tensors(self) -> dict[str, torch.Tensor]:
        if not self.images:
            return {}
        return {"images": torch.cat(self.images, 0).cpu()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], device=None) -> None:
        images = tensors.get("images")
        self.images = [] if images is None else [im.unsqueeze(0).to(device) for im in images]
