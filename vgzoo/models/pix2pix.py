"""pix2pix: paired image-to-image translation with a conditional GAN.

Isola, Zhu, Zhou, Efros (2017), "Image-to-Image Translation with Conditional Adversarial Networks", CVPR
(arXiv:1611.07004). A U-Net generator maps A to B; a 70x70 PatchGAN judges the stacked pair ``cat(A, B)``
against ``cat(A, G(A))``. The generator minimises ``GAN + 100 * L1(G(A), B)``; the discriminator
``0.5 * (real + fake)``. Defaults follow the paper's reference code: batch norm, dropout in the U-Net (also
at test time in the reference; ``vgzoo translate --no-eval`` reproduces that), vanilla GAN, no image pool.

Training protocol (vgzoo.protocols.GANModel, docs/architecture.md): ``discriminator_loss(batch)`` then
``generator_loss(batch)`` on the same batch run the generator once, as the reference does: whichever is called
first computes ``G(A)`` and leaves it for the other (matched by the identity of ``batch["A"]``, used once).

Saving only the generator for inference::

    from vgzoo.weights import save_state_dict, load_state_dict
    save_state_dict(model.generator.state_dict(), "generator.safetensors")
    model.generator.load_state_dict(load_state_dict("generator.safetensors"))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import ModelFamily
from ..layers.norm import check_norm, is_per_sample
from ..layers.patchgan import PatchDiscriminator
from ..layers.unet import UnetGenerator
from ..losses import (
    GAN_MODES,
    ImagePool,
    discriminator_adversarial_loss,
    frozen,
    generator_adversarial_loss,
    gradient_penalty,
)
from ..protocols import GANModel, LossLogs, Translator
from .translator import GENERATORS, aliases_to, reference_cfgs, translation_cfg

PAPER = ("Isola et al. 2017, Image-to-Image Translation with Conditional Adversarial Networks, CVPR "
         "(arXiv:1611.07004)")


def same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``a`` and ``b`` are the same batch tensor (same object, or same unmodified memory and layout)."""
    if a is b:
        return True
    return (a.device == b.device and a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride()
            and a.data_ptr() == b.data_ptr() and a._version == b._version)


def check_gan_mode(gan_mode: str) -> str:
    if gan_mode not in GAN_MODES:
        raise ValueError(f"gan_mode={gan_mode!r} is not one of {', '.join(GAN_MODES)}.")
    return gan_mode


class Pix2Pix(GANModel, Translator):
    """The pix2pix composite: ``generator`` (U-Net, A -> B) and ``discriminator`` (PatchGAN on ``cat(A, B)``).

    Args:
        in_chans: channels of A images.
        out_chans: channels of B images.
        num_downs: U-Net depth (8 for 256 px, 7 for 128 px); images need sides divisible by ``2 ** num_downs``.
        ngf: generator width.
        ndf: discriminator width.
        n_layers_D: PatchGAN stride-2 layers (3 = 70x70 patches).
        norm: ``"batch"``, ``"instance"`` or ``"none"`` for both networks.
        dropout: Dropout(0.5) in the U-Net's middle blocks.
        gan_mode: ``"vanilla"``, ``"lsgan"``, ``"hinge"`` or ``"wgangp"``.
        pool_size: image pool of the discriminator (0 = off, the pix2pix default).
        lambda_l1: weight of the L1 term (100).
        batched_passes: run the discriminator's real and fake passes as one batch when the norm is
            per-sample (instance or none): None (default) on non-CPU devices only, True always, False never;
            batch norm always runs them separately.
    """

    def __init__(
        self,
        in_chans: int = 3,
        out_chans: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        ndf: int = 64,
        n_layers_D: int = 3,
        norm: str = "batch",
        dropout: bool = True,
        gan_mode: str = "vanilla",
        pool_size: int = 0,
        lambda_l1: float = 100.0,
        batched_passes: bool | None = None,
    ) -> None:
        super().__init__()
        check_norm(norm)
        self.gan_mode = check_gan_mode(gan_mode)
        self.in_chans, self.out_chans, self.norm = in_chans, out_chans, norm
        self.generator = UnetGenerator(in_chans, out_chans, num_downs, ngf, norm, dropout)
        self.discriminator = PatchDiscriminator(in_chans + out_chans, ndf, n_layers_D, norm)
        self.pool = ImagePool(pool_size)
        self.lambda_l1 = lambda_l1
        self.batched_passes = batched_passes
        self._stash: tuple[torch.Tensor, torch.Tensor] | None = None
        size = 2**num_downs
        self.pretrained_cfg = {
            "input_size": (in_chans, size, size),
            "mean": (0.5,) * in_chans,
            "std": (0.5,) * in_chans,
            "out_chans": out_chans,
            "crop_size": size,
            "load_size": round(size * 286 / 256),
        }

    # ------------------------------------------------------------------------------ inference
    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """Translate A images (in [-1, 1]) to B images."""
        return self.generator(a)

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor]:
        _, h, w = self.pretrained_cfg["input_size"]
        return (torch.rand(batch_size, self.in_chans, h, w) * 2 - 1,)

    def example_batch(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        _, h, w = self.pretrained_cfg["input_size"]
        return {"A": torch.rand(batch_size, self.in_chans, h, w) * 2 - 1,
                "B": torch.rand(batch_size, self.out_chans, h, w) * 2 - 1}

    def inference_generator(self, direction: str = "AtoB") -> nn.Module:
        self.check_direction(direction)
        return self.generator

    # ------------------------------------------------------------------------------- training
    def generators(self) -> dict[str, nn.Module]:
        return {"generator": self.generator}

    def discriminators(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}

    def _take_stash(self, a: torch.Tensor, need_graph: bool) -> torch.Tensor | None:
        stash, self._stash = self._stash, None
        if stash is None or not same_tensor(stash[0], a):
            return None
        fake = stash[1]
        if need_graph and torch.is_grad_enabled() and not fake.requires_grad and \
                any(p.requires_grad for p in self.generator.parameters()):
            return None  # made without a graph: the generator step needs its own pass
        return fake

    def generator_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, LossLogs]:
        """``GAN(D(cat(A, G(A))), real) + lambda_l1 * L1(G(A), B)``; the discriminator is frozen meanwhile."""
        a, b = batch["A"], batch["B"]
        fake_b = self._take_stash(a, need_graph=True)
        if fake_b is None:
            fake_b = self.generator(a)
            self._stash = (a, fake_b.detach())  # for a discriminator step that follows on this batch
        with frozen(self.discriminator):
            adv = generator_adversarial_loss(self.discriminator(torch.cat([a, fake_b], 1)), self.gan_mode)
        l1 = F.l1_loss(fake_b, b) * self.lambda_l1
        loss = adv + l1
        return loss, {"G_adv": adv.detach(), "G_L1": l1.detach(), "G_total": loss.detach()}

    def discriminator_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, LossLogs]:
        """``0.5 * (GAN(D(cat(A, B)), real) + GAN(D(cat(A, G(A))), fake))`` (+ gradient penalty for WGAN-GP)."""
        a, b = batch["A"], batch["B"]
        fake_b = self._take_stash(a, need_graph=False)
        if fake_b is None:
            fake_b = self.generator(a)
            self._stash = (a, fake_b)  # keeps its graph: a generator step on this batch reuses the pass
        fake_ab = self.pool.query(torch.cat([a, fake_b.detach()], 1))
        real_ab = torch.cat([a, b], 1)
        wanted = a.device.type != "cpu" if self.batched_passes is None else self.batched_passes
        if wanted and is_per_sample(self.norm) and fake_ab.shape == real_ab.shape:
            pred_fake, pred_real = self.discriminator(torch.cat([fake_ab, real_ab])).chunk(2)
        else:  # batch norm: the reference's separate passes, fake first
            pred_fake = self.discriminator(fake_ab)
            pred_real = self.discriminator(real_ab)
        loss = discriminator_adversarial_loss(pred_real, pred_fake, self.gan_mode)
        logs = {"D_adv": loss.detach()}
        if self.gan_mode == "wgangp":
            gp = gradient_penalty(self.discriminator, real_ab, fake_ab)
            loss = loss + gp
            logs["D_gp"] = gp.detach()
        logs.update(D_real_logit=pred_real.detach().mean(), D_fake_logit=pred_fake.detach().mean(),
                    D_total=loss.detach())
        return loss, logs


# The reference's published generators (pytorch-CycleGAN-and-pix2pix, scripts/download_pix2pix_model.sh):
# tag -> (what it translates, reference dataset, which side of it the generator reads: the reference's
# --direction when testing it).
_REFERENCE_TAGS = {
    "edges2shoes": ("edge map -> shoe photo", "pix2pix:edges2shoes", "AtoB"),
    "sat2map": ("aerial photo -> map", "pix2pix:maps", "AtoB"),
    "map2sat": ("map -> aerial photo", "pix2pix:maps", "BtoA"),
    "facades_label2photo": ("label map -> facade photo", "pix2pix:facades", "BtoA"),
    "day2night": ("day photo -> night photo", "pix2pix:night2day", "BtoA"),
}
REFERENCE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/{tag}.pth"
_GENERATOR_ARGS = {"kind": "unet", "ngf": 64, "num_downs": 8, "norm": "batch", "dropout": True, "img_size": 256}


_pix2pix = ModelFamily("pix2pix", Pix2Pix, task="paired_translation", test_kwargs={"ngf": 4, "ndf": 4})

_UNET256 = translation_cfg(256, PAPER, "pix2pix: U-Net 256 generator (8 downs) + 70x70 PatchGAN on pairs, batch norm")
_UNET128 = translation_cfg(128, PAPER, "pix2pix: U-Net 128 generator (7 downs) + 70x70 PatchGAN on pairs, batch norm")

_GENERATOR = translation_cfg(256, PAPER, "pix2pix's U-Net 256 generator alone (8 downs, batch norm, dropout); its "
                                        "tags are the reference's published generators")

pix2pix_unet_generator = GENERATORS.variant(
    "pix2pix_unet_generator",
    reference_cfgs(_GENERATOR, _REFERENCE_TAGS, REFERENCE_URL, _GENERATOR_ARGS,
                   "pix2pix U-Net generator (trained with dropout)"),
    _GENERATOR_ARGS, task="paired_translation", test_kwargs={"ngf": 4, "num_downs": 5, "img_size": 32})
pix2pix_unet = _pix2pix.variant("pix2pix_unet", _UNET256, dict(num_downs=8),
                                aliases=aliases_to("pix2pix_unet_generator", _REFERENCE_TAGS))
pix2pix_unet128 = _pix2pix.variant("pix2pix_unet128", _UNET128, dict(num_downs=7))
