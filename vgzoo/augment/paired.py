"""Paired augmentation for image-to-image translation (pix2pix, Isola et al. 2017).

The pix2pix recipe: resize both images to ``load_size``, take the same random ``crop_size`` crop of both,
flip both or neither, normalise to [-1, 1]. A and B share their geometric parameters even when their channel
counts differ (a 1-channel edge map with a 3-channel photo): the two are stacked along the channel axis and
cropped and flipped as one tensor by Kornia, so a single parameter draw moves both. Intensity ops (an
optional colour jitter) touch only the side named by ``intensity_side``, never a label image or edge map.
"""

from __future__ import annotations

from collections.abc import Sequence

import kornia.augmentation as K
import torch
from torch import nn

from ._checks import SeededModule, check_images, normalize
from .classification import kornia_resample


class TranslationGeometry(nn.Module):
    """Deterministic resize to ``load_size``, random ``crop_size`` crop and random flip (Kornia).

    Each call draws one set of parameters per sample; stacking two images along channels before the call
    makes them share it.
    """

    def __init__(self, load_size: int, crop_size: int, hflip: float, interpolation: str, train: bool) -> None:
        super().__init__()
        if load_size < crop_size:
            raise ValueError(f"load_size {load_size} must be >= crop_size {crop_size}.")
        self.train_mode = train
        size = load_size if train else crop_size
        self.size = size
        self.resize = K.Resize((size, size), resample=kornia_resample(interpolation), antialias=True)
        self.crop = K.RandomCrop((crop_size, crop_size)) if train and load_size > crop_size else nn.Identity()
        self.flip = K.RandomHorizontalFlip(p=hflip) if train and hflip > 0 else nn.Identity()

    def resize_to_load(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) == (self.size, self.size):
            return x
        return self.resize(x).clamp(0, 1)  # bicubic overshoot would leave [-1, 1] after normalising

    def random(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" or not isinstance(self.crop, K.RandomCrop):
            return self.flip(self.crop(x))
        # Off the CPU, Kornia's "slice" crop reads each box back to the host; draw the same boxes and cut them
        # all at once with a gather instead (the same pixels, no interpolation).
        params = self.crop.forward_parameters(x.shape)
        corner = params["src"][:, 0].to(torch.long)
        corner = (corner.pin_memory() if x.is_cuda else corner).to(x.device, non_blocking=True)
        return self.flip(batched_crop(x, corner[:, 1], corner[:, 0], *self.crop.flags["size"]))


def batched_crop(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop ``(height, width)`` at a per-sample ``(top, left)`` (long tensors ``(B,)`` on x's device), batched."""
    b, c, h, w = x.shape
    rows = top.view(b, 1) + torch.arange(height, device=x.device)
    cols = left.view(b, 1) + torch.arange(width, device=x.device)
    index = (rows[:, :, None] * w + cols[:, None, :]).view(b, 1, height * width).expand(b, c, -1)
    return x.reshape(b, c, h * w).gather(2, index).view(b, c, height, width)


def color_jitter_module(strength: float) -> nn.Module:
    """A Kornia colour jitter for photos (brightness/contrast/saturation ``strength``), or identity at 0."""
    if strength <= 0:
        return nn.Identity()
    return K.ColorJiggle(strength, strength, strength, 0.0, p=1.0)


class PairedTransform(SeededModule):
    """Paired augmentation, called ``t(a, b) -> (a2, b2)``.

    Args:
        load_size: side the images are resized to before cropping.
        crop_size: side of the random crop (the model's input size).
        mean: normalisation mean (0.5 maps [0, 1] to [-1, 1]); equal values broadcast over channel counts.
        std: normalisation std.
        hflip: probability of flipping a pair.
        interpolation: resize interpolation (``bicubic`` like the reference).
        intensity_side: ``None`` (no intensity op, the pix2pix default), ``"A"`` or ``"B"``: the photo side
            that may get colour jitter. The other side is only moved, never recoloured.
        color_jitter: jitter strength for ``intensity_side``.
        train: ``False`` resizes both to ``crop_size`` and normalises (no randomness).
        seed: reproducible parameter draws (see :class:`~vgzoo.augment._checks.SeededModule`).
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
        intensity_side: str | None = None,
        color_jitter: float = 0.0,
        train: bool = True,
        seed: int | None = None,
        check_range: bool = True,
    ) -> None:
        super().__init__(seed)
        if intensity_side not in (None, "A", "B"):
            raise ValueError(f"intensity_side={intensity_side!r}: expected None, 'A' or 'B'.")
        if color_jitter > 0 and intensity_side is None:
            raise ValueError(
                "color_jitter needs intensity_side='A' or 'B' (the photo side); label images and edge maps "
                "must not be recoloured."
            )
        self.geometry = TranslationGeometry(load_size, crop_size, hflip, interpolation, train)
        self.intensity_side = intensity_side
        self.jitter = color_jitter_module(color_jitter) if train else nn.Identity()
        self.mean, self.std = tuple(mean), tuple(std)
        self.check_range = check_range

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_images(a, "PairedTransform A", self.check_range)
        check_images(b, "PairedTransform B", self.check_range)
        if a.shape[0] != b.shape[0]:
            raise ValueError(f"PairedTransform: A and B batches differ in size ({a.shape[0]} vs {b.shape[0]}).")
        a, b = self.geometry.resize_to_load(a), self.geometry.resize_to_load(b)
        with self.rng_scope(a.device):
            both = self.geometry.random(torch.cat([a, b.to(a.dtype)], 1))  # one draw moves A and B alike
            a, b = both[:, : a.shape[1]], both[:, a.shape[1] :]
            if self.intensity_side == "A":
                a = self.jitter(a)
            elif self.intensity_side == "B":
                b = self.jitter(b)
        return normalize(a, self.mean, self.std), normalize(b, self.mean, self.std)
