"""Importers for checkpoints of other implementations.

- :func:`from_timm_vit`: timm VisionTransformer state dicts -> ``vit_*_scratch``.
- :func:`reference_generator`, :func:`reference_discriminator`: pytorch-CycleGAN-and-pix2pix pickles
  -> vgzoo generators and discriminators (calling them is the explicit opt-in to read a pickle).

These are pure state-dict mappers and readers; the file-level conversions behind ``vgzoo convert`` (a whole
reference checkpoints folder, a timm file into a saved folder) are in :mod:`vgzoo.converters`.
"""

from __future__ import annotations

from typing import Any


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
