"""Importers for checkpoints of other implementations.

- :func:`from_timm_vit`: timm VisionTransformer state dicts -> ``vit_*_scratch``.
- :func:`reference_generator`, :func:`reference_discriminator`: pytorch-CycleGAN-and-pix2pix pickles
  -> vgzoo generators and discriminators (calling them is the explicit opt-in to read a pickle).

``timm_vit_converter`` and ``pix2pix_reference_converter`` are vgzoo's own ``vgzoo convert`` commands, declared
in the ``vgzoo.converters`` entry-point group like a plugin's (:mod:`vgzoo.conversion`).
"""

from __future__ import annotations

from typing import Any

from ..conversion import Converter

timm_vit_converter = Converter(
    model="vit_b16_scratch",
    reader="vgzoo.convert.timm_vit:read_timm_vit",
    description="A timm ViT checkpoint (.safetensors) -> a vit_*_scratch folder (the width picks the name).",
    command="vgzoo.cli:convert_timm_vit_cmd",
)
pix2pix_reference_converter = Converter(
    model="cyclegan_resnet",
    reader="vgzoo.convert.reference:read_published_generator",
    description="A pytorch-CycleGAN-and-pix2pix generator .pth (or a checkpoints folder) -> a vgzoo folder.",
    command="vgzoo.cli:convert_pix2pix_reference_cmd",
)


def from_timm_vit(state_dict: dict) -> dict:
    """Map a timm VisionTransformer state dict to vgzoo's ViT layout; see :mod:`vgzoo.convert.timm_vit`."""
    from .timm_vit import from_timm_vit as _impl

    return _impl(state_dict)


def reference_generator(path_or_state_dict: Any, **kwargs: Any):
    """A vgzoo generator holding a reference pix2pix/CycleGAN generator; see :mod:`vgzoo.convert.reference`."""
    from .reference import reference_generator as _impl

    return _impl(path_or_state_dict, **kwargs)


def reference_discriminator(path_or_state_dict: Any, **kwargs: Any):
    """A vgzoo PatchGAN holding a reference discriminator; see :mod:`vgzoo.convert.reference`."""
    from .reference import reference_discriminator as _impl

    return _impl(path_or_state_dict, **kwargs)


def reference_composite(directory: Any, model: str = "cycle_gan", epoch: str = "latest"):
    """A whole vgzoo pix2pix/CycleGAN from a reference checkpoints/NAME folder; see :mod:`vgzoo.convert.reference`."""
    from .reference import reference_composite as _impl

    return _impl(directory, model=model, epoch=epoch)
