"""Labelled image folders: one sub-folder per class, for classification and class-conditional generation.

The layout is the usual ``root/<class name>/<image>`` (CIFAR-10 exported to images, for instance); class names are
sorted, so class ``i`` is the ``i``-th name. Serves the class-conditional GAN (Mirza & Osindero, 2014, "Conditional
Generative Adversarial Nets") and the ViT classifiers (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataNotFoundError
from .digits import stratified_split
from .images import (
    SizeLike,
    check_channels,
    check_crop_fits,
    check_sizes,
    check_split,
    is_image_file,
    list_images,
    read_image,
    verify_images,
)

__all__ = ["LabelledImageFolder"]


class LabelledImageFolder(Dataset):
    """Images in one sub-folder per class; class names sorted give the labels.

    Items are ``{"image": float32 (channels, H, W) in [0, 1], "label": int64 scalar tensor}``.

    Args:
        root: the folder holding one sub-folder per class (images inside are found recursively).
        load_size: the deterministic resize (bicubic): an int (a square), ``(height, width)`` or ``None`` (native).
        crop_size: the crop taken later; used to reject images smaller than it. ``None`` disables the check.
        channels: 3 (RGB) or 1 (grayscale).
        split: ``"all"``, ``"train"`` or ``"val"``: a deterministic stratified split (see
            :func:`~vgzoo.data.digits.stratified_split`); for data already split on disk, point ``root`` at the split.
        val_fraction: the share of each class in ``"val"``.
        seed: the seed of the split.
        transform: an optional callable ``tensor -> tensor`` applied to every image.

    Attributes:
        classes: the sorted class names; ``classes[label]`` names a label.
        class_to_idx: the inverse mapping.
        samples: ``(path, label)`` of every item.
        targets: the label of every item.

    Raises:
        DataNotFoundError: a missing folder, no class sub-folders, or a class sub-folder without images.
        DataError: a bad option.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        load_size: SizeLike = None,
        crop_size: SizeLike = None,
        channels: int = 3,
        split: str = "all",
        val_fraction: float = 0.2,
        seed: int = 0,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.channels = check_channels("channels", channels)
        self.load_size, self.crop_size = check_sizes(load_size, crop_size)
        self.split = check_split(split)
        base = Path(root)
        if not base.is_dir():
            raise DataNotFoundError(
                f"labelled image folder {str(base)!r} does not exist or is not a folder; "
                "expected a folder with one sub-folder of images per class"
            )
        classes = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not classes:
            loose = any(p.is_file() and is_image_file(p) for p in base.iterdir())
            hint = (
                " it holds images directly: move them into one sub-folder per class, or use them unlabelled "
                "(task 'generation')"
                if loose
                else ""
            )
            raise DataNotFoundError(
                f"labelled image folder {str(base)!r} has no class sub-folders; expected root/<class>/<image>;{hint}"
            )
        samples: list[tuple[Path, int]] = []
        for label, name in enumerate(classes):
            files = list_images(base / name, what=f"class folder {name!r} of labelled image folder")
            samples.extend((f, label) for f in files)
        targets = np.asarray([label for _, label in samples], dtype=np.int64)
        if split != "all":
            train, val = stratified_split(targets, val_fraction, seed)
            keep = train if split == "train" else val
            samples = [samples[i] for i in keep]
            targets = targets[keep]
        self.root = base
        self.classes: list[str] = classes
        self.class_to_idx: dict[str, int] = {name: i for i, name in enumerate(classes)}
        self.samples: list[tuple[Path, int]] = samples
        self.targets: list[int] = targets.tolist()
        self.transform = transform

    @property
    def num_classes(self) -> int:
        """How many classes (sub-folders) there are."""
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def verify(self, decode: bool = False, progress: bool = False) -> None:
        """Check every file now (headers; ``decode=True`` decodes fully) and raise one error listing all bad files.

        Raises:
            DataError: unreadable files or images smaller than ``crop_size`` (when ``load_size`` is ``None``).
        """
        min_size = self.crop_size if self.load_size is None else None
        paths = [p for p, _ in self.samples]
        verify_images(paths, min_size=min_size, decode=decode, progress=progress,
                      what=f"labelled image folder {self.root}")

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        path, label = self.samples[index]
        image = read_image(path, self.channels, self.load_size)
        check_crop_fits(image, self.crop_size, path)
        if self.transform is not None:
            image = self.transform(image)
        return {"image": image, "label": torch.tensor(label, dtype=torch.int64)}

    def __repr__(self) -> str:
        return (
            f"LabelledImageFolder(root={str(self.root)!r}, items={len(self)}, classes={len(self.classes)}, "
            f"split={self.split!r}, load_size={self.load_size}, channels={self.channels})"
        )
