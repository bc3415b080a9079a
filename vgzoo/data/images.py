"""The one image IO module: listing folders, decoding, deterministic resizing, writing, and a plain crop/flip.

Datasets, ``vgzoo translate``, ``vgzoo generate``, evaluation and the trainer's pictures read and write images
through these functions, so every image vgzoo touches gets the same checks (decode budget, clear errors) and
every file it writes is written atomically.

The datasets follow the data layout of the pix2pix and CycleGAN reference implementation (Isola et al. 2017,
"Image-to-Image Translation with Conditional Adversarial Networks"; Zhu et al. 2017, "Unpaired Image-to-Image
Translation using Cycle-Consistent Adversarial Networks"): images are resized to a square ``load_size`` with bicubic
interpolation and later cropped to ``crop_size``. Decoding and resizing are deterministic and happen here; the random
crop and flip belong to :mod:`vgzoo.augment`, which runs them batched on the device. :class:`RandomCropFlip` is a plain
per-sample stand-in, usable as a dataset transform.

Every error names the file or folder at fault, what was expected and what to do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

from ..errors import DataError, DataNotFoundError

__all__ = [
    "IMG_EXTENSIONS",
    "RandomCropFlip",
    "SizeLike",
    "as_hw",
    "check_channels",
    "check_crop_fits",
    "check_decode_budget",
    "check_sizes",
    "check_split",
    "is_image_file",
    "verify_images",
    "list_images",
    "load_image",
    "max_image_bytes",
    "read_image",
    "resize_image",
    "resolve_folder",
    "save_image",
    "save_images",
    "to_tensor",
    "to_uint8",
]

#: File name endings treated as images (compared case-insensitively), as in the reference implementation plus WebP/GIF.
IMG_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".ppm",
    ".bmp",
    ".pgm",
    ".tif",
    ".tiff",
    ".webp",
    ".gif",
)

SizeLike = int | tuple[int, int] | None

_HIGH_DEPTH_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}

#: Environment variable that sets the memory budget of one decoded image, in bytes.
MAX_IMAGE_BYTES_ENV = "VGZOO_MAX_IMAGE_BYTES"


def max_image_bytes() -> int:
    """The memory one image may take while it is decoded and turned into a float tensor, in bytes.

    ``VGZOO_MAX_IMAGE_BYTES`` when set, else half the memory available now (Pillow's own bomb limit counts pixels,
    not bytes, and lets through images that exhaust a small machine).
    """
    text = os.environ.get(MAX_IMAGE_BYTES_ENV, "").strip()
    if text:
        try:
            return max(1, int(float(text)))
        except ValueError:
            raise DataError(f"{MAX_IMAGE_BYTES_ENV}={text!r}: expected a number of bytes, e.g. 4e9") from None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def check_decode_budget(img: Image.Image, path: str | os.PathLike, channels: int = 3) -> None:
    """Refuse an opened (not yet decoded) image whose decoding would take more than :func:`max_image_bytes`.

    Pillow knows the size from the header, so this costs nothing; decoding an 11000x11000 PNG and converting it to
    floats takes gigabytes and can kill the process in the allocator instead of raising.

    Raises:
        DataError: naming the file, its size, the memory it needs, the budget and how to go on.
    """
    w, h = img.size
    bands = max(1, len(img.getbands()))
    per_band = 4 if img.mode in _HIGH_DEPTH_MODES else 1
    need = w * h * (bands * per_band + channels + 4 * channels)  # decoded + converted + float32 tensor
    budget = max_image_bytes()
    if need > budget:
        raise DataError(
            f"image {str(path)!r} is {w}x{h} (WxH, {img.mode}): decoding it needs about {need / 1e9:.2f} GB, more "
            f"than the {budget / 1e9:.2f} GB budget for one image; downscale the file, or raise the budget with "
            f"{MAX_IMAGE_BYTES_ENV}=<bytes> if the machine has the memory"
        )


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` ends with one of :data:`IMG_EXTENSIONS` (case-insensitive)."""
    return str(path).lower().endswith(IMG_EXTENSIONS)


def as_hw(size: SizeLike, name: str = "size") -> tuple[int, int] | None:
    """Normalise an int side or an ``(height, width)`` pair; ``None`` stays ``None``.

    Raises:
        DataError: a size that is not a positive int or a pair of them.
    """
    if size is None:
        return None
    if isinstance(size, bool):
        raise DataError(f"{name} must be a positive int or a (height, width) pair, got {size!r}")
    if isinstance(size, int):
        pair = (size, size)
    elif (
        isinstance(size, Sequence)
        and len(size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) for s in size)
    ):
        pair = (int(size[0]), int(size[1]))
    else:
        raise DataError(f"{name} must be a positive int or a (height, width) pair, got {size!r}")
    if min(pair) < 1:
        raise DataError(f"{name} must be positive, got {size!r}")
    return pair


def check_channels(name: str, value: int) -> int:
    """Return ``value`` if it is 1 (grayscale) or 3 (RGB); raise a :class:`DataError` naming ``name`` otherwise."""
    if isinstance(value, bool) or value not in (1, 3):
        raise DataError(f"{name} must be 1 (grayscale) or 3 (RGB), got {value!r}")
    return int(value)


def check_sizes(load_size: SizeLike, crop_size: SizeLike) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """Normalise ``load_size`` and ``crop_size`` and check that the crop fits in the loaded image.

    Raises:
        DataError: a malformed size, or a crop larger than ``load_size``.
    """
    load, crop = as_hw(load_size, "load_size"), as_hw(crop_size, "crop_size")
    if load is not None and crop is not None and (crop[0] > load[0] or crop[1] > load[1]):
        raise DataError(
            f"crop_size {crop_size!r} is larger than load_size {load_size!r}; expected crop_size <= load_size "
            "(the reference uses load_size 286 with crop_size 256)"
        )
    return load, crop


def check_split(split: str) -> str:
    """Return ``split`` if it is ``"all"``, ``"train"`` or ``"val"``; raise a :class:`DataError` otherwise."""
    if split not in ("all", "train", "val"):
        raise DataError(f"unknown split {split!r}; expected 'all', 'train' or 'val'")
    return split


def list_images(folder: str | os.PathLike, *, what: str = "image folder", recursive: bool = True) -> list[Path]:
    """Return the image files under ``folder``, sorted by path.

    Hidden files and folders (names starting with ``.``) are skipped.

    Args:
        folder: the folder to list.
        what: how the folder is described in errors (``"domain A folder"``...).
        recursive: descend into sub-folders.

    Raises:
        DataNotFoundError: the folder does not exist, is not a folder, or holds no image file.
    """
    root = Path(folder)
    if not root.exists():
        raise DataNotFoundError(f"{what} {str(root)!r} does not exist; check the path")
    if not root.is_dir():
        raise DataNotFoundError(f"{what} {str(root)!r} is not a folder; expected a folder of images")
    files: list[Path] = []
    if recursive:
        seen: set[str] = set()  # followed symlinks could loop; visit every real folder once
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in seen:
                dirnames[:] = []
                continue
            seen.add(real)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            files.extend(Path(dirpath) / f for f in filenames if not f.startswith(".") and is_image_file(f))
    else:
        files = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".") and is_image_file(p)]
    if not files:
        raise DataNotFoundError(
            f"{what} {str(root)!r} holds no image files; expected files ending in "
            f"{', '.join(IMG_EXTENSIONS)}{' (searched recursively)' if recursive else ''}"
        )
    return sorted(files)


def resolve_folder(root: str | os.PathLike, phase: str | None, *, what: str = "dataset folder") -> Path:
    """The folder that holds a split's images: ``root/phase`` when it exists, else ``root`` if it holds images itself.

    This lets users pass either the dataset root (``facades/`` with ``train/``, ``val/``, ``test/``) or the split
    folder.

    Raises:
        DataNotFoundError: neither ``root/phase`` nor images directly inside ``root``.
    """
    base = Path(root)
    if not base.is_dir():
        raise DataNotFoundError(f"{what} {str(base)!r} does not exist or is not a folder; check the path")
    if phase:
        candidate = base / phase
        if candidate.is_dir():
            return candidate
        if any(p.is_file() and is_image_file(p) for p in base.iterdir()):
            return base
        subdirs = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
        raise DataNotFoundError(
            f"{what} {str(base)!r} has no {phase!r} sub-folder and no images of its own "
            f"(sub-folders: {subdirs or 'none'}); expected {str(candidate)!r} or a folder of images"
        )
    return base


_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def load_image(path: str | os.PathLike, channels: int = 3) -> Image.Image:
    """Decode an image file fully and convert it to ``channels`` (1: grayscale ``L``, 3: ``RGB``, 4: ``RGBA``).

    16-bit and 32-bit grayscale images are returned in mode ``F`` scaled to [0, 255] so no precision is clipped.

    Raises:
        DataError: the file cannot be decoded (truncated, not an image, unsupported format) or ``channels`` is not
            1, 3 or 4.
        DataNotFoundError: the file does not exist.
    """
    if channels not in _MODES:
        raise DataError(f"channels must be 1 (grayscale), 3 (RGB) or 4 (RGBA), got {channels!r}")
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"image file {str(p)!r} does not exist")
    try:
        with Image.open(p) as img:
            check_decode_budget(img, p, channels)
            img.load()
            mode = img.mode
            if mode in _HIGH_DEPTH_MODES:
                arr = np.asarray(img.convert("F") if mode != "F" else img, dtype=np.float32)
                top = float(arr.max(initial=0.0))
                if mode == "F":  # floats: guess the range from the values
                    scale = 1.0 if top <= 1.0 else 255.0 if top <= 255.0 else max(65535.0, top)
                else:  # 16-bit (or 32-bit) integers
                    scale = max(65535.0, top)
                out = Image.fromarray((np.clip(arr / scale, 0.0, 1.0) * 255.0).astype(np.float32))
                if channels == 1:
                    return out
                grey = out.convert("L")
                return Image.merge(_MODES[channels], [grey] * 3 + [Image.new("L", grey.size, 255)] * (channels - 3))
            return img.convert(_MODES[channels])
    except DataError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise DataError(
            f"cannot read image {str(p)!r} ({type(exc).__name__}: {exc}); expected a readable image file "
            f"({', '.join(IMG_EXTENSIONS)}); remove or replace the file"
        ) from exc


#: The likely causes of non-finite images, for a model with trained weights.
NON_FINITE_CAUSES = ("The weights may hold NaN (a diverged run: pick an earlier checkpoint) or the precision "
                     "overflowed (try --precision fp32).")


def require_finite(images: torch.Tensor, what: str, done: str = "nothing was written",
                   causes: str = NON_FINITE_CAUSES) -> torch.Tensor:
    """``images`` unchanged when every value is finite; else a :class:`~vgzoo.errors.NonFiniteOutputError` saying
    how many images (and values) hold NaN or infinity, and ``causes``. Clamping would turn them into black or white
    pictures that look like results and score like them."""
    from ..errors import NonFiniteOutputError

    if isinstance(images, torch.Tensor) and images.is_floating_point():
        if bool(torch.isfinite(images.detach().sum())):  # one reduction: any NaN or inf makes the sum non-finite
            return images
        bad = ~torch.isfinite(images.detach())  # (or the sum overflowed: the count below then finds nothing)
        if bool(bad.any()):
            per_image = bad.reshape(len(bad), -1).any(1) if bad.ndim > 1 else bad
            raise NonFiniteOutputError(
                f"{what}: {int(per_image.sum())} of {len(per_image)} images hold non-finite values (NaN or inf; "
                f"{int(bad.sum())} of {bad.numel()} values); {done}. {causes}"
            )
    return images


def to_uint8(images: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """Float images (N, C, H, W) in ``value_range`` -> uint8 in [0, 255], rounded as when written to PNG."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise DataError(f"images must be an (N, C, H, W) tensor; got {got}.")
    if images.dtype == torch.uint8:
        return images
    lo, hi = value_range
    # clamp makes a new tensor and the rest works in place on it: a batch's every new block is mapped and faulted
    # in afresh, which costs more than the arithmetic
    x = images.detach().float().clamp(lo, hi)
    return x.sub_(lo).div_(hi - lo).mul_(255.0).round_().to(torch.uint8)


#: zlib level of the PNGs vgzoo writes. PNG is lossless at every level; level 1 encodes several times faster than
#: PIL's default (6) for files somewhat larger, and a grid of hundreds of samples spends most of its time there.
PNG_COMPRESS_LEVEL = 1


def save_image(pixels: torch.Tensor | np.ndarray | Image.Image, path: str | os.PathLike) -> Path:
    """Write an image atomically; the suffix picks the format (``.png``, ``.jpg``, ...).

    ``pixels``: a PIL image, or uint8 (H, W, C) / (H, W) with 1, 3 or 4 channels (:func:`to_uint8` then
    ``permute(1, 2, 0)`` turns a model's output into that).
    """
    from .._hub import atomic_write

    # never half-written where one stood
    return atomic_write(path, _image_writer(pixels, Path(path)), to_file=True)


def save_images(images: Sequence[torch.Tensor | np.ndarray | Image.Image], paths: Sequence[str | os.PathLike],
                threads: int = 1) -> list[Path]:
    """Write ``images[i]`` to ``paths[i]`` as :func:`save_image` does, as one batch from ``threads`` threads.

    Each file is written atomically, with one sync of the disk for the batch rather than one per file (see
    :func:`vgzoo._atomic.atomic_write_many`). Every image is checked before any file is written.
    """
    from .._atomic import atomic_write_many

    paths = [Path(p) for p in paths]
    writers = [_image_writer(pixels, path) for pixels, path in zip(images, paths, strict=True)]
    return atomic_write_many(paths, writers, threads=threads)


def _image_writer(pixels: torch.Tensor | np.ndarray | Image.Image, path: Path) -> Callable[[BinaryIO], None]:
    """``write(file)`` encoding ``pixels`` in ``path``'s format, checked now and converted to a PIL image when it
    writes (a batch of thousands holds one copy of its pixels); a :class:`DataError` for what cannot be written."""
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"Cannot write {str(path)!r}: unknown image suffix; use .png, .jpg, ...")
    if isinstance(pixels, Image.Image):
        arr, mode = None, pixels.mode
    else:
        arr = pixels.detach().cpu().numpy() if isinstance(pixels, torch.Tensor) else np.asarray(pixels)
        if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in _MODES):
            raise DataError(f"Cannot write an array of shape {arr.shape} and type {arr.dtype} as an image; expected "
                            "uint8 (H, W) or (H, W, C) with 1, 3 or 4 channels.")
        mode = "RGBA" if arr.ndim == 3 and arr.shape[2] == 4 else ""
    if fmt == "JPEG" and mode == "RGBA":
        raise DataError(f"Cannot write a 4-channel image as JPEG ({str(path)!r}); use .png.")
    options = {"compress_level": PNG_COMPRESS_LEVEL} if fmt == "PNG" else {}

    def write(file: BinaryIO) -> None:
        image = pixels if arr is None else Image.fromarray(arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)
        image.save(file, format=fmt, **options)

    return write


def resize_image(img: Image.Image, size: SizeLike) -> Image.Image:
    """Resize deterministically with bicubic interpolation to ``size`` (an int gives a square, as the reference does).

    ``None`` returns the image unchanged.
    """
    hw = as_hw(size)
    if hw is None or (img.height, img.width) == hw:
        return img
    return img.resize((hw[1], hw[0]), Image.Resampling.BICUBIC)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """A PIL image (``L``, ``RGB`` or ``F`` in [0, 255]) as a float32 ``(C, H, W)`` tensor in [0, 1]."""
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)[None] / 255.0
        return torch.from_numpy(np.clip(arr, 0.0, 1.0))
    # numpy, not torch ops: per-image tensor ops go through torch's thread pool, which stalls on a busy machine
    arr = np.asarray(img, dtype=np.uint8)
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    out = np.ascontiguousarray(arr, dtype=np.float32)  # a fresh C-ordered (C, H, W) array
    out /= np.float32(255.0)
    return torch.from_numpy(out)


def read_image(path: str | os.PathLike, channels: int = 3, load_size: SizeLike = None) -> torch.Tensor:
    """Decode, convert, resize deterministically: a float32 ``(channels, H, W)`` tensor in [0, 1]."""
    return to_tensor(resize_image(load_image(path, channels), load_size))


def check_crop_fits(image: torch.Tensor, crop_size: SizeLike, path: str | os.PathLike, what: str = "image") -> None:
    """Raise a :class:`DataError` naming ``path`` when ``image`` (``(C, H, W)``) is smaller than ``crop_size``."""
    crop = as_hw(crop_size, "crop_size")
    if crop is None:
        return
    h, w = image.shape[-2:]
    if h < crop[0] or w < crop[1]:
        raise DataError(
            f"{what} {str(path)!r} is {h}x{w} (HxW), smaller than the crop {crop[0]}x{crop[1]}; "
            f"expected at least the crop size: set load_size >= crop_size, lower crop_size, or remove the file"
        )


def verify_images(
    paths: Sequence[str | os.PathLike],
    *,
    min_size: SizeLike = None,
    aligned: bool = False,
    decode: bool = False,
    what: str = "dataset",
    progress: bool = False,
) -> None:
    """Check every file up front and report all bad ones in one error, so training does not stop mid-epoch.

    By default the headers are read and Pillow's ``verify()`` runs (for PNG it checks every chunk's CRC, which finds
    damaged and truncated files without decompressing them); ``decode=True`` decodes every image fully, which also
    finds damaged JPEG data. Images whose decoding would exceed :func:`max_image_bytes` are reported too.

    Args:
        paths: the image files.
        min_size: the smallest acceptable ``(height, width)`` (of each half when ``aligned``), e.g. the crop size when
            images keep their native size; ``None`` skips the check.
        aligned: the files hold A|B side by side: require an even width and check ``min_size`` on each half.
        decode: decode the pixel data too.
        what: how the dataset is named in the error.
        progress: show a progress bar.

    Raises:
        DataError: listing every bad file with what was wrong with it.
    """
    from tqdm.auto import tqdm

    need = as_hw(min_size, "min_size")
    problems: list[str] = []
    for path in tqdm(paths, desc="verify data", unit="file", disable=not progress, leave=False):
        try:
            with Image.open(path) as img:
                w, h = img.size
                check_decode_budget(img, path, 3)
                if decode:
                    img.load()
                else:
                    img.verify()
        except DataError as exc:
            problems.append(f"{str(path)!r}: too large ({exc})")
            continue
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            problems.append(f"{str(path)!r}: unreadable ({type(exc).__name__}: {exc})")
            continue
        if aligned:
            if w % 2:
                problems.append(f"{str(path)!r}: odd width {w}, expected A|B halves of equal width")
                continue
            w //= 2
        if need is not None and (h < need[0] or w < need[1]):
            problems.append(
                f"{str(path)!r}: {h}x{w} (HxW{', per half' if aligned else ''}) is smaller than {need[0]}x{need[1]}"
            )
    if problems:
        shown = "\n  ".join(problems)
        raise DataError(
            f"{len(problems)} of {len(paths)} files of the {what} cannot be used:\n  {shown}\n"
            "fix or remove these files"
        )


class RandomCropFlip:
    """Random crop to ``crop_size`` and random horizontal flip, the same for every tensor of one call.

    A plain per-sample stand-in for the batched device pipelines of :mod:`vgzoo.augment`. Call it with one or more
    ``(C, H, W)`` tensors of the same height and width (an aligned pair's A and B); it returns a tuple of the same
    length, or the tensor itself when called with one.

    Args:
        crop_size: the side (or ``(height, width)``) of the crop; ``None`` skips the crop.
        flip: flip horizontally with probability 0.5.
        generator: a ``torch.Generator`` for reproducible draws; the global torch RNG when ``None`` (which DataLoader
            seeds differently in every worker).
    """

    def __init__(self, crop_size: SizeLike = 256, flip: bool = True, generator: torch.Generator | None = None) -> None:
        self.crop_size = as_hw(crop_size, "crop_size")
        self.flip = bool(flip)
        self.generator = generator

    def __call__(self, *images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if not images:
            raise TypeError("RandomCropFlip needs at least one (C, H, W) tensor")
        h, w = images[0].shape[-2:]
        for t in images[1:]:
            if tuple(t.shape[-2:]) != (h, w):
                raise DataError(
                    f"RandomCropFlip got images of different sizes {(h, w)} and {tuple(t.shape[-2:])}; "
                    "paired images must share height and width"
                )
        out = list(images)
        if self.crop_size is not None:
            ch, cw = self.crop_size
            if h < ch or w < cw:
                raise DataError(f"image of {h}x{w} (HxW) is smaller than the crop {ch}x{cw}; lower crop_size")
            top = int(torch.randint(0, h - ch + 1, (1,), generator=self.generator))
            left = int(torch.randint(0, w - cw + 1, (1,), generator=self.generator))
            out = [t[..., top : top + ch, left : left + cw] for t in out]
        if self.flip and bool(torch.rand((), generator=self.generator) < 0.5):
            out = [t.flip(-1) for t in out]
        out = [t.contiguous() for t in out]
        return out[0] if len(out) == 1 else tuple(out)

    def __repr__(self) -> str:
        return f"RandomCropFlip(crop_size={self.crop_size}, flip={self.flip})"
