"""Sample grids from class-conditional generators: the library behind ``vgzoo generate``.

For a conditional GAN in the sense of Mirza & Osindero, "Conditional Generative Adversarial Nets"
(2014) -- any model with ``num_classes`` and ``sample(labels, generator=None)`` returning images in
[-1, 1], such as ``cgan_embed`` and ``cgan_embed_digits`` -- :func:`generate` draws ``per_class``
samples for each requested class with a seeded latent draw and writes a PNG grid with one row per
class (in the order asked), and optionally every sample as its own PNG.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._hub import atomic_write
from .layers.label_map import validate_labels
from .protocols import ConditionalSampler

__all__ = ["GenerateResult", "generate", "make_grid", "parse_labels", "resolve_model_source", "to_uint8"]

MIN_CELL_PIXELS = 64  # automatic scale: upscale small images until a cell is at least this wide


@dataclass
class GenerateResult:
    """What :func:`generate` wrote."""

    grid: Path
    labels: list[int]
    per_class: int
    seed: int
    model: str
    weight_source: str | None = None
    images: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "grid": str(self.grid), "images": [str(p) for p in self.images]}


def parse_labels(text: str) -> list[int]:
    """``"0,1, 2"`` -> ``[0, 1, 2]``.

    Raises:
        ValueError: an entry that is not an integer, or no entries at all.
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError(f"labels {text!r} name no class; expected comma-separated class indices such as 0,1,2.")
    try:
        return [int(p) for p in parts]
    except ValueError:
        bad = [p for p in parts if not p.lstrip("-").isdigit()]
        raise ValueError(
            f"labels {text!r}: {bad} are not integers; expected comma-separated class indices such as 0,1,2."
        ) from None


def resolve_model_source(model_or_dir: str | os.PathLike) -> str:
    """A model name, ``local-dir:``/``hf-hub:`` source, or a folder path (turned into ``local-dir:PATH``).

    The same resolution as every other command: :func:`vgzoo._factory.resolve_source`.
    """
    from ._factory import resolve_source

    return resolve_source(model_or_dir)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (N, C, H, W) -> uint8 (N, H, W, C) in [0, 255]."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous()


def make_grid(images: torch.Tensor, rows: int, padding: int = 2, scale: int = 1, pad_value: int = 128) -> torch.Tensor:
    """Arrange uint8 images (N, H, W, C) in ``rows`` rows (row-major) -> one uint8 image (H', W', C).

    Each image is upscaled ``scale`` times (nearest neighbour); cells are separated by ``padding`` pixels of
    ``pad_value``.
    """
    n, h, w, c = images.shape
    if rows < 1 or n % rows:
        raise ValueError(f"make_grid: {n} images do not fill {rows} rows evenly.")
    cols = n // rows
    if scale > 1:
        images = images.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
        h, w = h * scale, w * scale
    grid = torch.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c), pad_value, dtype=torch.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        top, left = padding + r * (h + padding), padding + k * (w + padding)
        grid[top : top + h, left : left + w] = images[i]
    return grid


def _save_png(array: torch.Tensor, path: Path) -> Path:
    from PIL import Image

    data = array.numpy()
    image = Image.fromarray(data[..., 0] if data.shape[-1] == 1 else data)  # uint8: "L" or "RGB"
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def _load(model_or_dir: str | nn.Module, pretrained: bool) -> tuple[nn.Module, str]:
    from ._factory import load_model
    from ._runtime import run_model_folder

    final = None if isinstance(model_or_dir, nn.Module) else run_model_folder(model_or_dir)
    if final is not None:  # a `vgzoo train` run directory: its finished model
        import warnings

        warnings.warn(f"{str(model_or_dir)!r} is a training run; using its final model {str(final)!r}", stacklevel=3)
        model_or_dir = final

    model = load_model(model_or_dir, pretrained=pretrained, warn_random=False)  # the result names its weights
    if isinstance(model_or_dir, nn.Module):
        return model, getattr(model, "pretrained_cfg", {}).get("architecture", type(model).__name__)
    return model, resolve_model_source(model_or_dir)


@torch.no_grad()
def generate(
    model_or_dir: str | os.PathLike | nn.Module,
    *,
    out: str | os.PathLike,
    pretrained: bool = False,
    labels: list[int] | None = None,
    per_class: int = 8,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    scale: int | None = None,
    device: str | torch.device | None = None,
) -> GenerateResult:
    """Sample ``per_class`` images of each class and write a grid PNG, one row per class.

    Args:
        model_or_dir: a model name (``cgan_embed_digits``), a folder written by ``vgzoo.save_pretrained``,
            a ``local-dir:``/``hf-hub:`` source, or an already built model.
        out: path of the grid PNG.
        pretrained: load a named model's published weights (folders and Hub sources carry their own).
        labels: the classes, one grid row each, in this order (default: every class).
        per_class: samples per class (grid columns).
        seed: seed of the latent draws; the same seed gives the same images.
        out_dir: also write every sample as ``class{c}_{i}.png`` (native resolution) into this folder.
        scale: nearest-neighbour upscaling of the grid cells (default: enough for cells of >= 64 px).
        device: where to sample (default CPU).

    Returns:
        A :class:`GenerateResult` naming the files written.

    Raises:
        ValueError: the model is not a class-conditional generator, a label outside ``[0, num_classes)``,
            or ``per_class`` < 1.
    """
    if not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be an int >= 1; got {per_class!r}.")
    from ._runtime import check_device

    device = check_device(device)
    model, name = _load(model_or_dir, pretrained)
    num_classes = getattr(model, "num_classes", None)
    task = getattr(model, "pretrained_cfg", {}).get("task")
    if not isinstance(model, ConditionalSampler) or not isinstance(num_classes, int):
        raise ValueError(
            f"{name} is not a class-conditional generator (task {task!r}); `generate` needs a model with num_classes "
            "and sample(labels, generator=None), e.g. cgan_embed_digits."
        )
    rows = list(range(num_classes)) if labels is None else [int(c) for c in labels]
    validate_labels(rows, num_classes, what="labels")
    if not rows:
        raise ValueError("labels is empty; name at least one class or leave it out for every class.")
    model.eval()
    model.to(device)
    g = torch.Generator().manual_seed(int(seed))
    samples = torch.cat([model.sample(torch.full((per_class,), c, dtype=torch.long), generator=g).cpu() for c in rows])
    pixels = to_uint8(samples)
    if pixels.shape[-1] not in (1, 3):
        raise ValueError(f"{name} makes {pixels.shape[-1]}-channel images; PNG grids need 1 or 3 channels.")
    if scale is None:
        scale = max(1, MIN_CELL_PIXELS // max(pixels.shape[1], pixels.shape[2]))
    grid_path = _save_png(make_grid(pixels, rows=len(rows), scale=scale), Path(out))
    result = GenerateResult(grid=grid_path, labels=rows, per_class=per_class, seed=int(seed), model=name,
                            weight_source=getattr(model, "pretrained_cfg", {}).get("weight_source"))
    if out_dir is not None:
        folder = Path(out_dir)
        counts: dict[int, int] = {}
        for j, image in enumerate(pixels):
            c = rows[j // per_class]
            i = counts[c] = counts.get(c, -1) + 1  # a class asked twice continues its numbering
            result.images.append(_save_png(image, folder / f"class{c}_{i:03d}.png"))
    return result
