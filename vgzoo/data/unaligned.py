"""Unaligned (unpaired) two-domain image datasets in the CycleGAN format.

Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks": the images of the
two domains live in ``root/trainA`` and ``root/trainB`` (``testA``/``testB`` for ``phase="test"``) with no
correspondence. An epoch has ``max(|A|, |B|)`` items; item ``i`` takes A image ``i mod |A|`` and a B image drawn at
random (uniform, with replacement, as the reference does) or serially (``i mod |B|``). Unlike the reference, the random
draw is a pure function of ``(seed, epoch, index)``, so it is reproducible across runs and DataLoader workers; call
:meth:`UnalignedDataset.set_epoch` to get new pairings every epoch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataNotFoundError
from .aligned import check_direction
from .images import SizeLike, check_channels, check_crop_fits, check_sizes, list_images, read_image, verify_images

__all__ = ["UnalignedDataset"]


class UnalignedDataset(Dataset):
    """Two unpaired image domains, as CycleGAN reads them.

    Items are ``{"A": (in_chans, H, W), "B": (out_chans, H, W), "A_path": str, "B_path": str}``, float32 in [0, 1].

    Args:
        root: the folder holding ``{phase}A/`` and ``{phase}B/``.
        phase: ``"train"`` or ``"test"`` (any name ``X`` with ``XA/`` and ``XB/`` folders).
        direction: ``"AtoB"``, or ``"BtoA"`` to swap the domains (item ``A`` then comes from ``{phase}B/``).
        load_size: the deterministic resize (bicubic): an int (a square), ``(height, width)`` or ``None`` (native).
        crop_size: the crop taken later; used to reject images smaller than it. ``None`` disables the check.
        in_chans: channels of item ``A``: 3 (RGB) or 1 (grayscale).
        out_chans: channels of item ``B``: 3 or 1.
        serial_batches: pair B serially (``index mod |B|``) instead of at random.
        seed: the seed of the random B draw.
        transform: an optional per-image callable ``tensor -> tensor`` applied to A and to B independently (e.g.
            ``RandomCropFlip(256)``); leave it ``None`` when :mod:`vgzoo.augment` does the crop and flip.

    Raises:
        DataNotFoundError: a missing domain folder or one without images.
        DataError: a bad option, or ``crop_size`` larger than ``load_size``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        phase: str = "train",
        direction: str = "AtoB",
        load_size: SizeLike = 286,
        crop_size: SizeLike = 256,
        in_chans: int = 3,
        out_chans: int = 3,
        serial_batches: bool = False,
        seed: int = 0,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.direction = check_direction(direction)
        check_channels("in_chans", in_chans)
        check_channels("out_chans", out_chans)
        self.load_size, self.crop_size = check_sizes(load_size, crop_size)
        base = Path(root)
        if not base.is_dir():
            raise DataNotFoundError(
                f"unaligned dataset folder {str(base)!r} does not exist or is not a folder; expected a folder holding "
                f"{phase}A/ and {phase}B/"
            )
        dir_a, dir_b = base / f"{phase}A", base / f"{phase}B"
        for d in (dir_a, dir_b):
            if not d.is_dir():
                subdirs = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
                raise DataNotFoundError(
                    f"unaligned dataset folder {str(base)!r} has no {d.name}/ sub-folder (sub-folders: "
                    f"{subdirs or 'none'}); expected {phase}A/ and {phase}B/ holding the two domains"
                )
        paths_a = list_images(dir_a, what="domain A folder")
        paths_b = list_images(dir_b, what="domain B folder")
        if self.direction == "BtoA":
            paths_a, paths_b = paths_b, paths_a
        self.root = base
        self.phase = phase
        self.paths_A: list[Path] = paths_a
        self.paths_B: list[Path] = paths_b
        self.in_chans = int(in_chans)
        self.out_chans = int(out_chans)
        self.serial_batches = bool(serial_batches)
        self.seed = int(seed)
        self.epoch = 0
        self.transform = transform

    def __len__(self) -> int:
        return max(len(self.paths_A), len(self.paths_B))

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose random A/B pairing :meth:`__getitem__` uses (like ``DistributedSampler``)."""
        self.epoch = int(epoch)

    def index_b(self, index: int) -> int:
        """The B image paired with item ``index`` in the current epoch."""
        n_b = len(self.paths_B)
        if self.serial_batches:
            return index % n_b
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return int(rng.integers(n_b))

    def verify(self, decode: bool = False, progress: bool = False) -> None:
        """Check every file now (headers; ``decode=True`` decodes fully) and raise one error listing all bad files.

        Raises:
            DataError: unreadable files or images smaller than ``crop_size`` (when ``load_size`` is ``None``).
        """
        min_size = self.crop_size if self.load_size is None else None
        paths = [*self.paths_A, *self.paths_B]
        verify_images(paths, min_size=min_size, decode=decode, progress=progress,
                      what=f"unaligned dataset {self.root}")

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        if not 0 <= index < len(self):
            if -len(self) <= index < 0:
                index += len(self)
            else:
                raise IndexError(f"index {index} out of range for an unaligned dataset of {len(self)} items")
        path_a = self.paths_A[index % len(self.paths_A)]
        path_b = self.paths_B[self.index_b(index)]
        a = read_image(path_a, self.in_chans, self.load_size)
        b = read_image(path_b, self.out_chans, self.load_size)
        check_crop_fits(a, self.crop_size, path_a)
        check_crop_fits(b, self.crop_size, path_b)
        if self.transform is not None:
            a, b = self.transform(a), self.transform(b)
        return {"A": a, "B": b, "A_path": str(path_a), "B_path": str(path_b)}

    def __repr__(self) -> str:
        return (
            f"UnalignedDataset(root={str(self.root)!r}, phase={self.phase!r}, A={len(self.paths_A)}, "
            f"B={len(self.paths_B)}, direction={self.direction!r}, load_size={self.load_size}, "
            f"serial_batches={self.serial_batches}, seed={self.seed}, epoch={self.epoch})"
        )
