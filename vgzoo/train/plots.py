"""Pictures of a training run: loss curves and sample grids (PNG), drawn with matplotlib and Pillow.

The grids follow what the papers show: A | G(A) | B triplets for image-to-image translation
(Isola et al. 2017; Zhu et al. 2017) and a class-by-sample grid for the conditional GAN (Mirza &
Osindero 2014).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from .._hub import atomic_write


def _smooth(values: list[float], width: int) -> list[float]:
    if width <= 1 or len(values) < 3:
        return values
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= width:
            acc -= values[i - width]
        out.append(acc / min(i + 1, width))
    return out


def plot_loss_curves(records: Sequence[dict], path: str | Path, title: str = "") -> Path | None:
    """Draw every numeric train key against the step, and val metrics in a second panel.

    Args:
        records: rows of metrics (``{"step": int, "split": "train"|"val", key: value, ...}``).
        path: the PNG to (over)write, atomically.
        title: a title for the figure.

    Returns:
        The path, or None when there is nothing to draw.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    skip = {"step", "epoch", "split", "time", "lr"}
    train: dict[str, tuple[list[int], list[float]]] = {}
    val: dict[str, tuple[list[int], list[float]]] = {}
    for row in records:
        target = val if row.get("split") == "val" else train
        for k, v in row.items():
            if k in skip or not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                continue
            xs, ys = target.setdefault(k, ([], []))
            xs.append(int(row["step"]))
            ys.append(float(v))
    if not train and not val:
        return None
    grads = {k: v for k, v in train.items() if "grad_norm" in k}
    train = {k: v for k, v in train.items() if k not in grads}
    panels = 1 + bool(grads) + bool(val)
    fig, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 4.2), squeeze=False)
    for ax, series, name in ((axes[0][0], train, "training losses"),
                             (axes[0][1] if grads else None, grads, "gradient norms")):
        if ax is None:
            continue
        for k, (xs, ys) in sorted(series.items()):
            ax.plot(xs, _smooth(ys, max(1, len(ys) // 50)), label=k, linewidth=1.2)
        ax.set_xlabel("step")
        ax.set_ylabel("moving average")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize=7, loc="best")
    if val:
        ax = axes[0][panels - 1]
        for k, (xs, ys) in sorted(val.items()):
            ax.plot(xs, ys, marker="o", markersize=3, label=k)
        ax.set_xlabel("step")
        ax.set_title("validation")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(left=0.12 / panels, right=0.98, bottom=0.13, top=0.85 if title else 0.9, wspace=0.25)
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    plt.close(fig)
    return path


def to_unit(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Undo the normalisation ``(x - mean) / std`` and clamp to [0, 1]."""
    c = images.shape[1]
    m = torch.as_tensor(list(mean)[:c], dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    s = torch.as_tensor(list(std)[:c], dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    return (images * s + m).clamp(0, 1)


def save_grid(rows: Sequence[Sequence[torch.Tensor]] | torch.Tensor, path: str | Path, scale: int = 1) -> Path:
    """Save a grid of [0, 1] images (rows of (C, H, W) tensors, or a (R, K, C, H, W) tensor) as a PNG."""
    from PIL import Image

    if isinstance(rows, torch.Tensor):
        rows = [list(r) for r in rows]
    rows = [[im.detach().float().cpu() for im in r] for r in rows]
    c, h, w = rows[0][0].shape
    ncol = max(len(r) for r in rows)
    pad = 2
    canvas = torch.ones(3, len(rows) * (h + pad) + pad, ncol * (w + pad) + pad)
    for i, r in enumerate(rows):
        for j, im in enumerate(r):
            im = im.expand(3, -1, -1) if im.shape[0] == 1 else im[:3]
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            canvas[:, y : y + h, x : x + w] = im
    array = (canvas.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    image = Image.fromarray(array)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    path = Path(path)
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
    return path
