"""Datasets of vgzoo: aligned pairs (pix2pix), unaligned domains (CycleGAN), labelled folders and built-in digits.

Datasets decode and resize deterministically and return float tensors in [0, 1]; the random parts (crop, flip,
normalisation) run batched on the device in :mod:`vgzoo.augment`. Importing this package imports torch but not
scikit-learn, which is loaded only when the digits are requested.
"""

from __future__ import annotations

from .digits import DigitsDataset, stratified_split

__all__ = ["DigitsDataset", "stratified_split"]
