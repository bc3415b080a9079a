"""Single-folder image datasets: the reference's ``single`` mode for inference, and unlabelled image folders.

``SingleDataset`` reads one folder of images the way the pix2pix/CycleGAN reference implementation's ``single`` mode
does (Isola et al. 2017; Zhu et al. 2017), to run one generator over them. ``ImageFolderDataset`` is the same reading
for unconditional generation and restoration (``{"image": x}`` batches), with an optional deterministic train/val
split.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

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

__all__ = ["ImageFolderDataset", "ImagesOnly", "SingleDataset"]


class ImageFolderDataset(Dataset):
    """Every image under a folder (recursively, sorted), unlabelled.

    Items are ``{"image": (channels, H, W), "path": str}``, float32 in [0, 1]. With ``load_size=None`` images keep their
    own size, so batching more than one needs images of one size (or ``batch_size=1``).

    Args:
        root: the folder of images (or a single image file).
        load_size: the deterministic resize (bicubic): an int (a square), ``(height, width)`` or ``None`` (native).
        crop_size: the crop taken later; used to reject images smaller than it. ``None`` disables the check.
        channels: 3 (RGB) or 1 (grayscale).
        split: ``"all"``, ``"train"`` or ``"val"``: a deterministic random split of the sorted files.
        val_fraction: the share of files in ``"val"``.
        seed: the seed of the split.
        transform: an optional callable ``tensor -> tensor`` applied to every image.

    Raises:
        DataNotFoundError: a missing folder or one without images.
        DataError: a bad option, or ``crop_size`` larger than ``load_size``.
    """

    key = "image"

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
        self.root = Path(root)
        if self.root.is_file() and is_image_file(self.root):
            paths = [self.root]  # one image file reads as a folder of one
        else:
            paths = list_images(self.root, what="image folder")
        if split != "all":
            train, val = stratified_split(np.zeros(len(paths), dtype=np.int64), val_fraction, seed)
            paths = [paths[i] for i in (train if split == "train" else val)]
        self.paths: list[Path] = paths
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def verify(self, decode: bool = False, progress: bool = False) -> None:
        """Check every file now (headers; ``decode=True`` decodes fully) and raise one error listing all bad files.

        Raises:
            DataError: unreadable files or images smaller than ``crop_size`` (when ``load_size`` is ``None``).
        """
        min_size = self.crop_size if self.load_size is None else None
        verify_images(self.paths, min_size=min_size, decode=decode, progress=progress,
                      what=f"image folder {self.root}")

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        path = self.paths[index]
        image = read_image(path, self.channels, self.load_size)
        check_crop_fits(image, self.crop_size, path)
        if self.transform is not None:
            image = self.transform(image)
        return {self.key: image, "path": str(path)}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, items={len(self)}, load_size={self.load_size}, "
            f"channels={self.channels})"
        )


class SingleDataset(ImageFolderDataset):
    """One folder of images for inference, as the reference's ``single`` mode: items ``{"A": tensor, "path": str}``.

    Args:
        root: the folder of images (or a single image file).
        load_size: the deterministic resize; ``None`` (the default) keeps each image's size, which the translation
            commands handle by padding.
        in_chans: channels of item ``A``: 3 (RGB) or 1 (grayscale).
        transform: an optional callable ``tensor -> tensor``.
    """

    key = "A"

    def __init__(
        self,
        root: str | os.PathLike,
        load_size: SizeLike = None,
        in_chans: int = 3,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__(root, load_size=load_size, channels=check_channels("in_chans", in_chans), transform=transform)

    @property
    def in_chans(self) -> int:
        """Channels of item ``A``."""
        return self.channels


class ImagesOnly(Dataset):
    """A view of a labelled dataset that keeps only ``{"image": x}``, for unconditional generation and restoration.

    Attributes of the wrapped dataset (``images``, ``classes``...) stay reachable through :attr:`dataset`.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"image": self.dataset[index]["image"]}

    def __repr__(self) -> str:
        return f"ImagesOnly({self.dataset!r})"
