"""A translator made of one generator: what the reference CycleGAN and pix2pix authors publish.

The published checkpoints of pytorch-CycleGAN-and-pix2pix hold a single generator each (``horse2zebra.pth``
is CycleGAN's ``G_A``, horse -> zebra; ``facades_label2photo.pth`` is pix2pix's ``G``), without the
discriminators or the opposite generator. Loading one into a whole CycleGAN would leave three random
networks behind, so a published tag builds this model instead: the generator alone, translating the way it
was trained. It is a :class:`~vgzoo.protocols.Translator` (``vgzoo translate``, export and the demo use it
like any translation model) but no :class:`~vgzoo.protocols.GANModel`: there is nothing to train it against.

It is the ``translator`` family: ``cyclegan_resnet_generator`` and ``pix2pix_unet_generator`` (registered beside
their composites, in cyclegan.py and pix2pix.py) hold the published tags, which the composites' names keep as
aliases (``cyclegan_resnet.horse2zebra`` is ``cyclegan_resnet_generator.horse2zebra``).
"""

from __future__ import annotations

import torch
from torch import nn

from .._registry import ModelFamily, PretrainedCfg, make_cfg
from ..layers.norm import check_norm
from ..layers.resnet_generator import ResnetGenerator
from ..layers.unet import UnetGenerator
from ..protocols import Translator, ZooModel

GENERATOR_KINDS = ("resnet", "unet")


class GeneratorTranslator(ZooModel, Translator):
    """One image-to-image generator (ResNet or U-Net) as a model of its own.

    Args:
        kind: ``"resnet"`` (CycleGAN's generator) or ``"unet"`` (pix2pix's).
        in_chans: channels of the input images.
        out_chans: channels of the output images.
        ngf: generator width.
        n_blocks: residual blocks (``kind="resnet"``).
        num_downs: U-Net depth (``kind="unet"``); input sides must be divisible by ``2 ** num_downs``.
        norm: ``"instance"``, ``"batch"`` or ``"none"``.
        dropout: Dropout(0.5) layers (pix2pix trains with them; ``vgzoo translate --no-eval`` keeps them on).
        img_size: the size the generator was trained at (example inputs and the pretrained config).
    """

    def __init__(self, kind: str = "resnet", in_chans: int = 3, out_chans: int = 3, ngf: int = 64, n_blocks: int = 9,
                 num_downs: int = 8, norm: str = "instance", dropout: bool = False, img_size: int = 256) -> None:
        super().__init__()
        check_norm(norm)
        if kind == "resnet":
            self.generator = ResnetGenerator(in_chans, out_chans, ngf, n_blocks, norm, dropout)
        elif kind == "unet":
            self.generator = UnetGenerator(in_chans, out_chans, num_downs, ngf, norm, dropout)
        else:
            raise ValueError(f"kind={kind!r} is not one of {GENERATOR_KINDS}.")
        self.in_chans = in_chans
        self.pretrained_cfg = {
            "input_size": (in_chans, img_size, img_size),
            "mean": (0.5,) * in_chans,
            "std": (0.5,) * in_chans,
            "out_chans": out_chans,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Translate ``x`` (in [-1, 1]) the way the generator was trained."""
        return self.generator(x)

    def inference_generator(self, direction: str = "AtoB") -> nn.Module:
        self.check_direction(direction)
        return self.generator

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor]:
        _, h, w = self.pretrained_cfg["input_size"]
        g = torch.Generator().manual_seed(0)
        return ((torch.rand(batch_size, self.in_chans, h, w, generator=g) * 2 - 1).to(self._device()),)


# ------------------------------------------------------------------------ configs of translation families
REFERENCE_LICENSE = "bsd-2-clause"


def translation_cfg(size: int, paper: str, description: str, **facts) -> PretrainedCfg:
    """The pretrained config of an RGB -> RGB translator trained on ``size`` crops (resized to 286/256 first)."""
    return make_cfg(input_size=(3, size, size), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), out_chans=3,
                    load_size=round(size * 286 / 256), crop_size=size, paper=paper, description=description, **facts)


def reference_cfgs(default: PretrainedCfg, tags: dict[str, tuple], url: str, generator_args: dict,
                   what: str) -> dict[str, PretrainedCfg]:
    """A generator name's configs: the untagged architecture first (no weights), then one per published tag.

    Args:
        tags: tag -> (what it translates, reference dataset, which side of it the generator reads).
        url: the download URL with a ``{tag}`` field.
        generator_args: the :class:`GeneratorTranslator` arguments of the published generators (the reader
            builds its key map from them).
        what: how the description names the generator (e.g. ``"CycleGAN generator"``).
    """
    cfgs = {"": default}
    for tag, (translates, dataset, direction) in tags.items():
        cfgs[tag] = translation_cfg(
            256, default.paper, f"{what} {translates} (the reference's published {tag}.pth; generator only)",
            url=url.format(tag=tag), reader="vgzoo.convert.reference:read_published_generator",
            model_args=dict(generator_args), dataset=dataset, direction=direction, license=REFERENCE_LICENSE,
            notes="licence of the reference code; no separate licence is stated for the weights")
    return cfgs


def aliases_to(name: str, tags: dict[str, tuple]) -> dict[str, str]:
    """``{tag: "name.tag"}``: a composite's published tags, which ``name`` (its generator alone) holds."""
    return {tag: f"{name}.{tag}" for tag in tags}


# The family of generator-only translators (one class); each name picks its task and a tiny test configuration.
GENERATORS = ModelFamily("translator", GeneratorTranslator, task="unpaired_translation", inference_only=True)
