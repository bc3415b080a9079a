"""Unpaired augmentation for CycleGAN (Zhu et al. 2017) and normalisation-only pipelines for generation.

CycleGAN's recipe is pix2pix's (resize to ``load_size``, random crop, flip, normalise to [-1, 1]) but the
two domains are unrelated, so A and B draw *independent* parameters. The generation pipeline (conditional
GANs, unconditional GANs, restoration) resizes to the model's input size when needed, optionally flips,
and normalises to the model's range.
"""

from __future__ import annotations

from collections.abc import Sequence

import kornia.augmentation as K
import torch
from torch import nn

from ._checks import SeededModule, check_images, normalize
from .classification import kornia_resample
from .paired import TranslationGeometry, color_jitter_module


class UnpairedTransform(SeededModule):
    """Unpaired augmentation, called ``t(a, b) -> (a2, b2)`` (or ``t(a) -> a2`` for one domain).

    A and B may differ in batch size and channel count; each gets its own crop and flip.

    Args:
        load_size: side the images are resized to before cropping.
        crop_size: side of the random crop.
        mean: normalisation mean (equal values broadcast over channel counts).
        std: normalisation std.
        hflip: flip probability.
        interpolation: resize interpolation.
        color_jitter: optional photo colour jitter, applied to both domains (0 = off, the CycleGAN default).
        train: ``False`` resizes to ``crop_size`` and normalises only.
        seed: reproducible parameter draws.
        check_range: refuse 0-255 or already-normalised input (one device sync per call).
    """

    def __init__(
        self,
        *,
        load_size: int,
        crop_size: int,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        hflip: float = 0.5,
        interpolation: str = "bicubic",
        color_jitter: float = 0.0,
        train: bool = True,
        seed: int | None = None,
        check_range: bool = True,
    ) -> None:
        super().__init__(seed)
        self.geometry = TranslationGeometry(load_size, crop_size, hflip, interpolation, train)
        self.jitter = color_jitter_module(color_jitter) if train else nn.Identity()
        self.mean, self.std = tuple(mean), tuple(std)
        self.check_range = check_range

    def _one(self, x: torch.Tensor) -> torch.Tensor:
        x = self.geometry.random(self.geometry.resize_to_load(x))
        return normalize(self.jitter(x), self.mean, self.std)

    def forward(self, a: torch.Tensor, b: torch.Tensor | None = None):
        check_images(a, "UnpairedTransform A", self.check_range)
        if b is not None:
            check_images(b, "UnpairedTransform B", self.check_range)
        with self.rng_scope(a.device):
            a2 = self._one(a)  # separate calls: separate parameter draws
            return a2 if b is None else (a2, self._one(b))


class GenerationTransform(SeededModule):
    """Normalisation to the model's range, with an optional resize and flip, for generation and restoration.

    Called ``t(x) -> x2`` or ``t(x, *rest) -> (x2, *rest)`` (labels pass through untouched).

    Args:
        input_size: ``(C, H, W)``; images of another size are resized to ``(H, W)``.
        mean: normalisation mean.
        std: normalisation std.
        hflip: flip probability (0 by default: digits and text must not be mirrored).
        interpolation: resize interpolation.
        train: ``False`` disables the flip.
        seed: reproducible parameter draws.
        check_range: refuse 0-255 or already-normalised input (one device sync per call).
    """

    def __init__(
        self,
        *,
        input_size: Sequence[int],
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        hflip: float = 0.0,
        interpolation: str = "bicubic",
        train: bool = True,
        seed: int | None = None,
        check_range: bool = True,
    ) -> None:
        super().__init__(seed)
        self.size = (int(input_size[-2]), int(input_size[-1]))
        self.resize = K.Resize(self.size, resample=kornia_resample(interpolation), antialias=True)
        self.flip = K.RandomHorizontalFlip(p=hflip) if train and hflip > 0 else nn.Identity()
        self.mean, self.std = tuple(mean), tuple(std)
        self.check_range = check_range

    def forward(self, x: torch.Tensor, *rest: torch.Tensor):
        check_images(x, "GenerationTransform input", self.check_range)
        if tuple(x.shape[-2:]) != self.size:
            x = self.resize(x).clamp(0, 1)
        with self.rng_scope(x.device):
            x = self.flip(x)
        x = normalize(x, self.mean, self.std)
        return (x, *rest) if rest else x
