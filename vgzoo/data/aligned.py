"""Aligned (paired) image datasets in the pix2pix format.

Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks": every file holds the pair side by
side, A on the left half and B on the right (the format of the reference implementation's ``aligned`` mode, e.g. the
facades, maps and edges2shoes sets). Both halves are resized deterministically to ``load_size`` (286 by default, a
square, bicubic); the random crop to ``crop_size`` (256) and the flip, identical for A and B, run batched on the device
in :mod:`vgzoo.augment`, or per sample through ``paired_transform`` (e.g. :class:`~vgzoo.data.images.RandomCropFlip`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import DataError
from .images import (
    SizeLike,
    check_channels,
    check_crop_fits,
    check_sizes,
    list_images,
    load_image,
    resize_image,
    resolve_folder,
    to_tensor,
    verify_images,
)

__all__ = ["AlignedDataset", "split_aligned"]

_DIRECTIONS = ("AtoB", "BtoA")

PairedTransform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def check_direction(direction: str) -> str:
    """Return ``direction`` if it is ``"AtoB"`` or ``"BtoA"``; raise a :class:`DataError` otherwise."""
    if direction not in _DIRECTIONS:
        raise DataError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")
    return direction


def split_aligned(image: Image.Image, path: str | os.PathLike) -> tuple[Image.Image, Image.Image]:
    """Cut an aligned image into its left (A) and right (B) halves.

    Raises:
        DataError: an odd width (the halves could not be equal), naming the file.
    """
    w, h = image.size
    if w % 2:
        raise DataError(
            f"aligned image {str(path)!r} is {w} px wide, an odd width; expected A and B side by side in two halves "
            f"of equal width (an even width, e.g. {w - 1} or {w + 1}); re-export the pair or remove the file"
        )
    half = w // 2
    return image.crop((0, 0, half, h)), image.crop((half, 0, w, h))


class AlignedDataset(Dataset):
    """Paired images stored side by side (A left, B right), as pix2pix reads them.

    Items are ``{"A": (in_chans, H, W), "B": (out_chans, H, W), "path": str}``, float32 in [0, 1], where ``H, W`` is
    ``load_size`` (or the half-image size when ``load_size`` is ``None``), or the crop when ``paired_transform`` crops.

    Args:
        root: the dataset root holding ``train/``, ``val/``, ``test/``..., or directly a folder of aligned images.
        phase: the sub-folder of ``root`` to read (``"train"``, ``"val"``, ``"test"``); when ``root/phase`` does not
            exist and ``root`` itself holds images, ``root`` is read.
        direction: ``"AtoB"`` (item ``A`` is the left half) or ``"BtoA"`` (item ``A`` is the right half).
        load_size: the deterministic resize of each half: an int (a square, as the reference does), an
            ``(height, width)`` pair, or ``None`` to keep the native size.
        crop_size: the crop that will be taken later (by :mod:`vgzoo.augment` or ``paired_transform``); used here to
            reject images that are smaller than it. ``None`` disables the check.
        in_chans: channels of item ``A`` (the model's input): 3 (RGB) or 1 (grayscale).
        out_chans: channels of item ``B`` (the model's target): 3 or 1.
        paired_transform: an optional callable ``(A, B) -> (A, B)`` applied to the tensors, e.g.
            ``RandomCropFlip(256)`` for the same random crop and flip on both. Leave it ``None`` when the batched
            device augmentation does the crop and flip.

    Raises:
        DataNotFoundError: a missing folder or one without images.
        DataError: a bad option, or ``crop_size`` larger than ``load_size``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        phase: str | None = "train",
        direction: str = "AtoB",
        load_size: SizeLike = 286,
        crop_size: SizeLike = 256,
        in_chans: int = 3,
        out_chans: int = 3,
        paired_transform: PairedTransform | None = None,
    ) -> None:
        self.direction = check_direction(direction)
        check_channels("in_chans", in_chans)
        check_channels("out_chans", out_chans)
        self.load_size, self.crop_size = check_sizes(load_size, crop_size)
        self.in_chans = int(in_chans)
        self.out_chans = int(out_chans)
        self.paired_transform = paired_transform
        self.root = resolve_folder(root, phase, what="aligned dataset folder")
        self.phase = phase
        self.paths: list[Path] = list_images(self.root, what="aligned dataset folder")

    def __len__(self) -> int:
        return len(self.paths)

    def load_pair(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode, split, orient and resize pair ``index``: ``(A, B)`` tensors in [0, 1], no random transform."""
        path = self.paths[index]
        # decode once in RGB (or L if both sides are grayscale), then convert each half to its channel count
        both_gray = self.in_chans == 1 and self.out_chans == 1
        image = load_image(path, channels=1 if both_gray else 3)
        left, right = split_aligned(image, path)
        a_img, b_img = (left, right) if self.direction == "AtoB" else (right, left)
        a = to_tensor(resize_image(_to_channels(a_img, self.in_chans), self.load_size))
        b = to_tensor(resize_image(_to_channels(b_img, self.out_chans), self.load_size))
        check_crop_fits(a, self.crop_size, path, what="aligned image half")
        return a, b

    def verify(self, decode: bool = False, progress: bool = False) -> None:
        """Check every file now (headers; ``decode=True`` decodes fully) and raise one error listing all bad files.

        Raises:
            DataError: unreadable files, odd widths, or halves smaller than ``crop_size`` (when ``load_size`` is
                ``None``).
        """
        min_size = self.crop_size if self.load_size is None else None
        verify_images(self.paths, min_size=min_size, aligned=True, decode=decode, progress=progress,
                      what=f"aligned dataset {self.root}")

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        a, b = self.load_pair(index)
        if self.paired_transform is not None:
            a, b = self.paired_transform(a, b)
        return {"A": a, "B": b, "path": str(self.paths[index])}

    def __repr__(self) -> str:
        return (
            f"AlignedDataset(root={str(self.root)!r}, items={len(self)}, direction={self.direction!r}, "
            f"load_size={self.load_size}, crop_size={self.crop_size}, in_chans={self.in_chans}, "
            f"out_chans={self.out_chans})"
        )


def _to_channels(img: Image.Image, channels: int) -> Image.Image:
    """Convert an ``RGB``/``L``/``F`` image to ``channels`` (1 or 3), keeping ``F`` (high depth grayscale) as is."""
    if channels == 1:
        return img if img.mode in ("L", "F") else img.convert("L")
    if img.mode == "RGB":
        return img
    return Image.merge("RGB", [img.convert("L")] * 3)
