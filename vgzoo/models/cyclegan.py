"""CycleGAN: unpaired image-to-image translation with cycle consistency.

Zhu, Park, Isola, Efros (2017), "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks", ICCV (arXiv:1703.10593). Two ResNet generators, ``G_AB`` (A -> B) and ``G_BA`` (B -> A), and two
70x70 PatchGANs, ``D_A`` judging domain-A images and ``D_B`` judging domain-B images. Losses as in the paper's
reference code: LSGAN, cycle L1 with weight 10 each way, identity L1 with weight 0.5 * 10 (off, with a warning,
when A and B have different channel counts), image pools of 50 fakes per discriminator.

Speed without changing the maths: instance norm normalises each sample on its own, so passes of one
generator over different inputs can share a batch. ``generator_loss`` runs ``G_AB(cat(A, B))`` (fake B and
the identity of B), ``G_BA(cat(B, fake_B, A))`` (fake A, the cycle of A and the identity of A) and
``G_AB(fake_A)`` (the cycle of B): three generator calls instead of six. ``discriminator_loss`` judges real and
pooled fake images in one call per discriminator. This is the default on accelerators, where launches dominate
at batch 1; on the CPU, where the arithmetic dominates, batching gained nothing (benchmarks/RESULTS.md), so the
default there runs the reference's separate passes. ``model.batched_passes =
True`` / ``False`` forces either. Batch-norm variants (``norm="batch"``) always run separate passes, whose
batch statistics differ.

Protocol: ``generator_loss(batch)`` then ``discriminator_loss(batch)`` on the same batch (the reference's
order): the generator step leaves its fakes for the discriminator step; a discriminator step with no fakes left
for its batch makes its own. The pools are training state (vgzoo.protocols.GANModel.training_state).

Naming against the reference: its ``netG_A`` is ``G_AB``, ``netG_B`` is ``G_BA``, its ``netD_A`` judges domain B
and is ``D_B``, its ``netD_B`` is ``D_A``. vgzoo's log ``G_idt_A`` is ``|G_BA(A) - A|`` (the reference's
``idt_B``), ``G_adv_AB`` is the reference's ``G_A``.

Saving only the generators for inference::

    from vgzoo.weights import save_state_dict, load_state_dict
    save_state_dict(model.G_AB.state_dict(), "G_AB.safetensors")
    model.G_AB.load_state_dict(load_state_dict("G_AB.safetensors"))
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import ModelFamily
from ..layers.norm import check_norm, is_per_sample
from ..layers.patchgan import PatchDiscriminator
from ..layers.resnet_generator import ResnetGenerator
from ..losses import ImagePool, discriminator_adversarial_loss, frozen, generator_adversarial_loss, gradient_penalty
from ..protocols import GANModel, LossLogs, Translator
from .pix2pix import check_gan_mode, same_tensor
from .translator import GENERATORS, aliases_to, reference_cfgs, translation_cfg

PAPER = ("Zhu et al. 2017, Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks, ICCV "
         "(arXiv:1703.10593)")
DIRECTIONS = ("AtoB", "BtoA")


class CycleGAN(GANModel, Translator):
    """The CycleGAN composite: ``G_AB``, ``G_BA``, ``D_A``, ``D_B`` and the image pools ``pool_A``, ``pool_B``.

    Args:
        in_chans: channels of domain-A images.
        out_chans: channels of domain-B images.
        ngf: generator width.
        ndf: discriminator width.
        n_blocks: residual blocks per generator (9 for 256 px, 6 for 128 px).
        n_layers_D: PatchGAN stride-2 layers (3 = 70x70 patches).
        norm: ``"instance"`` (default), ``"batch"`` or ``"none"``.
        dropout: Dropout(0.5) in the residual blocks.
        img_size: the training crop size; recorded in the config and used for example inputs only (the
            networks are fully convolutional and take any size divisible by 4).
        gan_mode: ``"lsgan"`` (default), ``"vanilla"``, ``"hinge"`` or ``"wgangp"``.
        pool_size: images per pool (50; 0 turns the pools off).
        lambda_A, lambda_B: cycle-loss weights (10 each).
        lambda_identity: identity weight relative to the cycle weights (0.5; set to 0, with a warning, when
            the channel counts differ).
        batched_passes: share batches between passes of one network when the norm allows it: None (default) on
            non-CPU devices only, True always, False never.
    """

    directions = DIRECTIONS

    def __init__(
        self,
        in_chans: int = 3,
        out_chans: int = 3,
        ngf: int = 64,
        ndf: int = 64,
        n_blocks: int = 9,
        n_layers_D: int = 3,
        norm: str = "instance",
        dropout: bool = False,
        img_size: int = 256,
        gan_mode: str = "lsgan",
        pool_size: int = 50,
        lambda_A: float = 10.0,
        lambda_B: float = 10.0,
        lambda_identity: float = 0.5,
        batched_passes: bool | None = None,
    ) -> None:
        super().__init__()
        check_norm(norm)
        if img_size % 4:
            raise ValueError(f"img_size={img_size}; the ResNet generator needs a multiple of 4.")
        self.gan_mode = check_gan_mode(gan_mode)
        self.in_chans, self.out_chans, self.norm = in_chans, out_chans, norm
        self.G_AB = ResnetGenerator(in_chans, out_chans, ngf, n_blocks, norm, dropout)
        self.G_BA = ResnetGenerator(out_chans, in_chans, ngf, n_blocks, norm, dropout)
        self.D_A = PatchDiscriminator(in_chans, ndf, n_layers_D, norm)
        self.D_B = PatchDiscriminator(out_chans, ndf, n_layers_D, norm)
        self.pool_A = ImagePool(pool_size)
        self.pool_B = ImagePool(pool_size)
        self.lambda_A, self.lambda_B, self.lambda_identity = lambda_A, lambda_B, lambda_identity
        if in_chans != out_chans and lambda_identity > 0:
            warnings.warn(
                f"CycleGAN: A has {in_chans} channels and B {out_chans}, so the identity loss (G_AB(B) ~ B) cannot "
                "be computed; it is turned off (lambda_identity = 0).",
                stacklevel=3,
            )
            self.lambda_identity = 0.0
        self.batched_passes = batched_passes
        self._stash: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.pretrained_cfg = {
            "input_size": (in_chans, img_size, img_size),
            "mean": (0.5,) * in_chans,
            "std": (0.5,) * in_chans,
            "out_chans": out_chans,
            "crop_size": img_size,
            "load_size": round(img_size * 286 / 256),
        }

    # ------------------------------------------------------------------------------ inference
    def forward(self, x: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """Translate ``x`` (in [-1, 1]) from A to B (``"AtoB"``, with ``G_AB``) or from B to A (``"BtoA"``)."""
        return self.inference_generator(direction)(x)

    def inference_generator(self, direction: str = "AtoB") -> nn.Module:
        return self.G_AB if self.check_direction(direction) == "AtoB" else self.G_BA

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor]:
        _, h, w = self.pretrained_cfg["input_size"]
        return (torch.rand(batch_size, self.in_chans, h, w) * 2 - 1,)

    def example_batch(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        _, h, w = self.pretrained_cfg["input_size"]
        return {"A": torch.rand(batch_size, self.in_chans, h, w) * 2 - 1,
                "B": torch.rand(batch_size, self.out_chans, h, w) * 2 - 1}

    # ------------------------------------------------------------------------------- training
    def generators(self) -> dict[str, nn.Module]:
        return {"G_AB": self.G_AB, "G_BA": self.G_BA}

    def discriminators(self) -> dict[str, nn.Module]:
        return {"D_A": self.D_A, "D_B": self.D_B}

    def _can_batch(self, *tensors: torch.Tensor) -> bool:
        wanted = tensors[0].device.type != "cpu" if self.batched_passes is None else self.batched_passes
        return (wanted and is_per_sample(self.norm)
                and all(t.shape[2:] == tensors[0].shape[2:] for t in tensors))

    def translate_all(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every image the generator loss needs: fakes, cycles and (if on) identities, batched where allowed."""
        n_a, n_b = a.shape[0], b.shape[0]
        use_idt = self.lambda_identity > 0
        out: dict[str, torch.Tensor] = {}
        if self._can_batch(a, b):
            if use_idt:
                out["fake_B"], out["idt_B"] = self.G_AB(torch.cat([a, b])).split([n_a, n_b])
                out["fake_A"], out["rec_A"], out["idt_A"] = self.G_BA(torch.cat([b, out["fake_B"], a])).split(
                    [n_b, n_a, n_a])
            else:
                out["fake_B"] = self.G_AB(a)
                out["fake_A"], out["rec_A"] = self.G_BA(torch.cat([b, out["fake_B"]])).split([n_b, n_a])
            out["rec_B"] = self.G_AB(out["fake_A"])
        else:  # the reference's six passes
            out["fake_B"] = self.G_AB(a)
            out["rec_A"] = self.G_BA(out["fake_B"])
            out["fake_A"] = self.G_BA(b)
            out["rec_B"] = self.G_AB(out["fake_A"])
            if use_idt:
                out["idt_B"] = self.G_AB(b)
                out["idt_A"] = self.G_BA(a)
        return out

    def generator_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, LossLogs]:
        """LSGAN terms through the frozen discriminators, cycle L1 both ways, identity L1 both ways."""
        a, b = batch["A"], batch["B"]
        out = self.translate_all(a, b)
        with frozen(self.D_A, self.D_B):
            adv_ab = generator_adversarial_loss(self.D_B(out["fake_B"]), self.gan_mode)
            adv_ba = generator_adversarial_loss(self.D_A(out["fake_A"]), self.gan_mode)
        cycle_a = F.l1_loss(out["rec_A"], a) * self.lambda_A
        cycle_b = F.l1_loss(out["rec_B"], b) * self.lambda_B
        loss = adv_ab + adv_ba + cycle_a + cycle_b
        logs = {"G_adv_AB": adv_ab, "G_adv_BA": adv_ba, "G_cycle_A": cycle_a, "G_cycle_B": cycle_b}
        if "idt_A" in out:
            idt_a = F.l1_loss(out["idt_A"], a) * self.lambda_A * self.lambda_identity
            idt_b = F.l1_loss(out["idt_B"], b) * self.lambda_B * self.lambda_identity
            loss = loss + idt_a + idt_b
            logs.update(G_idt_A=idt_a, G_idt_B=idt_b)
        logs["G_total"] = loss
        self._stash = (a, b, out["fake_A"].detach(), out["fake_B"].detach())
        return loss, {k: v.detach() for k, v in logs.items()}

    def _judge(self, net: PatchDiscriminator, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
        if self._can_batch(real, fake):
            pred_real, pred_fake = net(torch.cat([real, fake])).split([real.shape[0], fake.shape[0]])
        else:
            pred_real, pred_fake = net(real), net(fake)
        loss = discriminator_adversarial_loss(pred_real, pred_fake, self.gan_mode)
        if self.gan_mode == "wgangp":
            loss = loss + gradient_penalty(net, real, fake)
        return loss, {"real_logit": pred_real.detach().mean(), "fake_logit": pred_fake.detach().mean()}

    def discriminator_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, LossLogs]:
        """``D_A``: real A against pooled ``G_BA(B)``; ``D_B``: real B against pooled ``G_AB(A)``.

        Each is ``0.5 * (real + fake)``; the returned loss is their sum.
        """
        a, b = batch["A"], batch["B"]
        stash, self._stash = self._stash, None
        if stash is not None and same_tensor(stash[0], a) and same_tensor(stash[1], b):
            fake_a, fake_b = stash[2], stash[3]
        else:
            with torch.no_grad():
                fake_b, fake_a = self.G_AB(a), self.G_BA(b)
        loss_b, logs_b = self._judge(self.D_B, b, self.pool_B.query(fake_b))
        loss_a, logs_a = self._judge(self.D_A, a, self.pool_A.query(fake_a))
        loss = loss_a + loss_b
        logs = {"D_A": loss_a.detach(), "D_B": loss_b.detach(), "D_total": loss.detach()}
        logs.update({f"D_A_{k}": v for k, v in logs_a.items()})
        logs.update({f"D_B_{k}": v for k, v in logs_b.items()})
        return loss, logs


# The reference's published generators (pytorch-CycleGAN-and-pix2pix, scripts/download_cyclegan_model.sh):
# tag -> (what it translates, reference dataset, which side of it the generator reads).
_REFERENCE_TAGS = {
    "apple2orange": ("apple -> orange", "cyclegan:apple2orange", "AtoB"),
    "orange2apple": ("orange -> apple", "cyclegan:apple2orange", "BtoA"),
    "summer2winter_yosemite": ("summer -> winter (Yosemite)", "cyclegan:summer2winter_yosemite", "AtoB"),
    "winter2summer_yosemite": ("winter -> summer (Yosemite)", "cyclegan:summer2winter_yosemite", "BtoA"),
    "horse2zebra": ("horse -> zebra", "cyclegan:horse2zebra", "AtoB"),
    "zebra2horse": ("zebra -> horse", "cyclegan:horse2zebra", "BtoA"),
    "monet2photo": ("Monet painting -> photo", "cyclegan:monet2photo", "AtoB"),
    "style_monet": ("photo -> Monet painting", "cyclegan:monet2photo", "BtoA"),
    "style_cezanne": ("photo -> Cezanne painting", "cyclegan:cezanne2photo", "BtoA"),
    "style_ukiyoe": ("photo -> Ukiyo-e print", "cyclegan:ukiyoe2photo", "BtoA"),
    "style_vangogh": ("photo -> Van Gogh painting", "cyclegan:vangogh2photo", "BtoA"),
    "sat2map": ("aerial photo -> map", "cyclegan:maps", "AtoB"),
    "map2sat": ("map -> aerial photo", "cyclegan:maps", "BtoA"),
    "cityscapes_photo2label": ("street photo -> label map", None, None),
    "cityscapes_label2photo": ("label map -> street photo", None, None),
    "facades_photo2label": ("facade photo -> label map", "cyclegan:facades", None),
    "facades_label2photo": ("label map -> facade photo", "cyclegan:facades", None),
    "iphone2dslr_flower": ("iPhone flower photo -> DSLR look (shallow depth of field)", "cyclegan:iphone2dslr_flower",
                           "AtoB"),
}
REFERENCE_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{tag}.pth"
_GENERATOR_ARGS = {"kind": "resnet", "ngf": 64, "n_blocks": 9, "norm": "instance", "dropout": False, "img_size": 256}


_cyclegan = ModelFamily("cyclegan", CycleGAN, task="unpaired_translation",
                        test_kwargs={"ngf": 4, "ndf": 4, "n_blocks": 2, "img_size": 32})

_RESNET9 = translation_cfg(256, PAPER, "CycleGAN: two 9-block ResNet generators + two 70x70 PatchGANs, instance norm")
_RESNET6 = translation_cfg(128, PAPER, "CycleGAN: two 6-block ResNet generators + two 70x70 PatchGANs, for 128 px")

_GENERATOR = translation_cfg(256, PAPER, "CycleGAN's 9-block ResNet generator alone (A -> B); its tags are the "
                                        "reference's published generators")

cyclegan_resnet_generator = GENERATORS.variant(
    "cyclegan_resnet_generator",
    reference_cfgs(_GENERATOR, _REFERENCE_TAGS, REFERENCE_URL, _GENERATOR_ARGS, "CycleGAN generator"),
    _GENERATOR_ARGS, task="unpaired_translation", test_kwargs={"ngf": 4, "n_blocks": 2, "img_size": 32})
cyclegan_resnet = _cyclegan.variant("cyclegan_resnet", _RESNET9, dict(n_blocks=9, img_size=256),
                                    aliases=aliases_to("cyclegan_resnet_generator", _REFERENCE_TAGS))
cyclegan_resnet6 = _cyclegan.variant("cyclegan_resnet6", _RESNET6, dict(n_blocks=6, img_size=128))
