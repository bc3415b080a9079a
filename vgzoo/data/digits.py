"""The built-in handwritten digits (``builtin:digits``).

The 1,797 8x8 images of the UCI "Optical Recognition of Handwritten Digits" set (Alpaydin & Kaynak, 1998) that
scikit-learn ships inside its package, so nothing is downloaded. They are scaled to ``size`` x ``size`` (16 by default)
with bilinear interpolation of the 0..16 grey levels normalised to [0, 1], which is deterministic, and split into a
stratified train/val pair that depends only on ``val_fraction`` and ``seed``. This is the data of the class-conditional
GAN (Mirza & Osindero, 2014, "Conditional Generative Adversarial Nets") in ``cgan_embed_digits``.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..errors import DataError

__all__ = ["DigitsDataset", "load_digits_arrays", "stratified_split"]

_SPLITS = ("all", "train", "val")
_INSTALL_HINT = 'scikit-learn is needed for builtin:digits; install it with: pip install "vgzoo[data]"'


@functools.lru_cache(maxsize=1)
def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Return scikit-learn's bundled digits as ``(images, labels)``.

    Returns:
        ``images`` of shape (1797, 8, 8), float32 in [0, 1] (the 0..16 grey levels divided by 16), and ``labels`` of
        shape (1797,), int64 in 0..9. Both are read-only.

    Raises:
        ImportError: when scikit-learn is not installed; the message names the ``data`` extra.
    """
    table = _digits_table()
    images = (table[:, :-1].reshape(-1, 8, 8).astype(np.float32) / 16.0).clip(0.0, 1.0)
    labels = table[:, -1].astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _digits_table() -> np.ndarray:
    """The rows of scikit-learn's ``digits.csv.gz`` (64 grey levels, then the label), as ``load_digits`` reads them.

    The file is read straight from the installed package: importing scikit-learn only to find it costs seconds at
    every start of a command (``load_digits`` is the fallback where a release keeps the file elsewhere).
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None:
        raise ImportError(_INSTALL_HINT)
    for folder in spec.submodule_search_locations or ():
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return np.loadtxt(path, delimiter=",")
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    return np.column_stack([images, labels])


def stratified_split(
    labels: Sequence[int] | np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into train and val, keeping each class's share, deterministically.

    Within each class the indices are shuffled with a generator seeded by ``seed`` and ``round(n_c * val_fraction)``
    of them go to val (at least one when the class has two or more items and ``val_fraction > 0``, and never all of
    them when ``val_fraction < 1``).

    Args:
        labels: the class of every item.
        val_fraction: the share of each class that goes to val, in [0, 1].
        seed: the seed of the shuffle; the same seed gives the same split on every machine.

    Returns:
        ``(train_indices, val_indices)``, each sorted ascending.

    Raises:
        DataError: ``val_fraction`` outside [0, 1].
    """
    if not 0.0 <= float(val_fraction) <= 1.0:
        raise DataError(f"val_fraction must be in [0, 1], got {val_fraction!r}; use e.g. 0.2 for a 80/20 split")
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(int(seed))
    train, val = [], []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        n_val = int(round(len(idx) * val_fraction))
        if 0.0 < val_fraction and n_val == 0 and len(idx) >= 2:
            n_val = 1
        if val_fraction < 1.0 and n_val == len(idx) and len(idx) >= 2:
            n_val = len(idx) - 1
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    empty = np.zeros(0, dtype=np.int64)
    return (np.sort(np.concatenate(train)) if train else empty, np.sort(np.concatenate(val)) if val else empty)


class DigitsDataset(Dataset):
    """scikit-learn's 1,797 handwritten digits, scaled to ``size`` x ``size``, with labels.

    Items are ``{"image": float32 tensor (1, size, size) in [0, 1], "label": int64 scalar tensor}``. All images are
    prepared once at construction (about 1.8 MB at 16 px) and also exposed as the tensors ``images`` (N, 1, size, size)
    and ``labels`` (N,), so a trainer may index them directly on its device.

    Args:
        split: ``"all"`` (1,797 items), ``"train"`` or ``"val"`` (a stratified split, see :func:`stratified_split`).
        size: the output side in pixels; 8 keeps the original images.
        val_fraction: the share of each class in ``"val"``.
        seed: the seed of the split.

    Raises:
        ImportError: scikit-learn is missing (install ``vgzoo[data]``).
        DataError: an unknown split, a non-positive size or a ``val_fraction`` outside [0, 1].
    """

    in_memory = True  # nothing to load: the trainer starts no DataLoader workers for it

    num_classes = 10
    classes = [str(i) for i in range(10)]
    in_chans = 1

    def __init__(self, split: str = "all", size: int = 16, val_fraction: float = 0.2, seed: int = 0) -> None:
        if split not in _SPLITS:
            raise DataError(f"unknown digits split {split!r}; expected one of {', '.join(map(repr, _SPLITS))}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise DataError(f"size must be a positive int (output side in pixels), got {size!r}")
        self.split = split
        self.size = size
        self.val_fraction = float(val_fraction)
        self.seed = int(seed)

        images, labels = load_digits_arrays()
        train_idx, val_idx = stratified_split(labels, val_fraction, seed)
        if split == "all":
            indices = np.arange(len(labels))
        else:
            indices = train_idx if split == "train" else val_idx
        self.indices = torch.from_numpy(np.asarray(indices, dtype=np.int64))

        x = torch.from_numpy(np.array(images[indices], dtype=np.float32)).unsqueeze(1)
        if size != 8:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < 8)
        self.images = x.clamp_(0.0, 1.0).contiguous()
        self.labels = torch.from_numpy(np.array(labels[indices], dtype=np.int64))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for DigitsDataset(split={self.split!r}) of {len(self)} items")
        return {"image": self.images[index], "label": self.labels[index]}

    def __repr__(self) -> str:
        return (
            f"DigitsDataset(split={self.split!r}, size={self.size}, val_fraction={self.val_fraction}, "
            f"seed={self.seed}, items={len(self)})"
        )
