"""Pictures of a training run: loss curves and sample grids (PNG), drawn with matplotlib and Pillow.

The grids follow what the papers show: A | G(A) | B triplets for image-to-image translation
(Isola et al. 2017; Zhu et al. 2017) and a class-by-sample grid for the conditional GAN (Mirza &
Osindero 2014). Pictures are for people: grids carry column headers, row labels and a title naming the
model, step and seed, and small images are upscaled nearest-neighbour so single pixels can be judged.
Loss curves put each scale on its own panel and give every network one colour and every loss term one
line style, so the many series of a CycleGAN can be told apart.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from .._hub import atomic_write

#: the smallest side, in pixels, a grid cell is upscaled to (nearest-neighbour, integer factor)
MIN_CELL = 96

#: column headers of the recipes' grids
PAIRED_HEADERS = ("A (input)", "G(A)", "B (target)")
CYCLE_HEADERS = ("A", "G_AB(A)", "G_BA(G_AB(A))", "B", "G_BA(B)", "G_AB(G_BA(B))")
RESTORATION_HEADERS = ("input", "restored", "target")


def run_title(model: str, step: int | None = None, seed: int | None = None, what: str = "") -> str:
    """``"cyclegan_resnet6 | samples | step 24 | seed 0"``: the title grids and curves carry."""
    parts = [str(model)] + ([what] if what else [])
    if step is not None:
        parts.append(f"step {int(step)}")
    if seed is not None:
        parts.append(f"seed {int(seed)}")
    return " | ".join(parts)


# ------------------------------------------------------------------------------------------ loss curves
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


# (panel, test) in order: the first panel whose test matches a key takes it
_PANELS: list[tuple[str, Any]] = [
    ("augmentation (ADA p, r_t)", lambda k: k.startswith("ada_") or k.endswith("real_sign")),
    ("gradient norms", lambda k: "grad_norm" in k),
    ("discriminator logits", lambda k: "logit" in k.lower()),
    ("generator: total loss", lambda k: k in ("G_loss", "G_total", "g_total", "g_loss")),
    ("discriminator loss", lambda k: re.match(r"^[Dd]_", k) is not None),
    ("generator: reconstruction / L1",
     lambda k: re.search(r"cycle|idt|l1|recon|pretrain|perceptual", k.lower()) is not None),
    ("generator: adversarial", lambda k: re.match(r"^[Gg]_", k) is not None or "adv" in k.lower()),
    ("loss", lambda k: "loss" in k.lower()),
]
_VAL_GROUPS = [("psnr", "PSNR (dB)"), ("ssim", "SSIM"), ("fid", "FID"), ("kid", "KID"), ("top", "accuracy (%)"),
               ("diversity", "diversity ratio"), ("l1", "L1"), ("loss", "loss")]

# one colour per network (by role and domain side), one line style per loss term
_NET_COLOURS = {("G", ""): "tab:blue", ("G", "A"): "tab:blue", ("G", "B"): "tab:green", ("D", ""): "tab:red",
                ("D", "A"): "tab:orange", ("D", "B"): "tab:purple", ("M", ""): "tab:gray"}
_SPARE_COLOURS = ["tab:brown", "tab:pink", "tab:olive", "tab:cyan", "black", "gold", "navy", "teal", "maroon"]
_TERM_STYLES = [("fake_logit", (0, (1, 1))), ("real_logit", "-."), ("cycle", "--"), ("idt", ":"), ("l1", "--"),
                ("pretrain", ":"), ("grad_norm", "-"), ("total", "-"), ("loss", "-"), ("adv", "-")]
_SPARE_STYLES = ["-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (3, 3))]


def _network(key: str) -> tuple[str, str]:
    """(role G/D/M, domain side A/B/'') of the network a logged key belongs to."""
    role = "D" if re.match(r"^[Dd]_", key) else "G" if (re.match(r"^[Gg]_", key) or re.search(
        r"cycle|idt|l1|recon|pretrain", key.lower())) else "M"
    side = ""
    if re.search(r"_(AB|A)(_|$)", key):
        side = "A"
    elif re.search(r"_(BA|B)(_|$)", key):
        side = "B"
    return role, side


def _style(key: str) -> tuple[str, Any]:
    colour = _NET_COLOURS.get(_network(key), "tab:gray")
    low = key.lower()
    style = next((s for term, s in _TERM_STYLES if term in low), "-")
    return colour, style


def _styled(keys: Iterable[str]) -> dict[str, tuple[str, Any]]:
    """Colour and line style per key, made unique within a panel so no series hides behind a twin."""
    out: dict[str, tuple[str, Any]] = {}
    spare = iter(_SPARE_COLOURS)
    for k in sorted(keys):
        colour, style = _style(k)
        if (colour, style) in out.values():
            for s in _SPARE_STYLES:
                if (colour, s) not in out.values():
                    style = s
                    break
            else:
                colour = next(spare, "black")
        out[k] = (colour, style)
    return out


def _series(records: Sequence[dict]) -> tuple[dict, dict]:
    skip = {"step", "epoch", "split", "time"}
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
    return train, val


def _drop_twins(series: dict) -> dict[str, str]:
    """Remove series identical to another (G_total is G_loss): {dropped: kept}, so the legend can say so."""
    twins: dict[str, str] = {}
    keys = sorted(series, key=lambda k: (not k.endswith("_loss"), k))
    for i, a in enumerate(keys):
        if a in twins:
            continue
        for b in keys[i + 1:]:
            if b not in twins and series[a] == series[b]:
                twins[b] = a
    for b in twins:
        series.pop(b)
    return twins


def _load_findings(findings, path: Path) -> list[dict]:
    if findings is None:
        health = path.parent / "health.json"
        try:
            findings = json.loads(health.read_text(encoding="utf-8")).get("findings", [])
        except (OSError, ValueError):
            findings = []
    out = []
    for f in findings or []:
        f = f if isinstance(f, dict) else vars(f)
        out.append({"kind": str(f.get("kind", "finding")), "step": int(f.get("step", 0)),
                    "severity": str(f.get("severity", "warning"))})
    return out


def loss_figure(records: Sequence[dict], title: str = "", findings: Sequence[Any] | None = (),
                seed: int | None = None):
    """The matplotlib figure of :func:`plot_loss_curves` (None when there is nothing to draw)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    train, val = _series(records)
    if not train and not val:
        return None
    twins, panels, val_panels = _panels(train, val)
    all_names = list(panels) + sorted(val_panels)
    ncols = 2 if len(all_names) > 1 else 1
    nrows = math.ceil(len(all_names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.5 * ncols, 2.9 * nrows + 0.6), squeeze=False,
                             layout="constrained")
    findings = list(findings or [])
    last_step = max((int(r["step"]) for r in records if "step" in r), default=0)
    for i, name in enumerate(all_names):
        is_val = name in val_panels
        _draw_panel(axes[i // ncols][i % ncols], name, val_panels[name] if is_val else panels[name], is_val, twins,
                    findings, last_step, legend_findings=i == 0)
    for j in range(len(all_names), nrows * ncols):
        axes[j // ncols][j % ncols].set_axis_off()
    head = title or "training"
    if last_step:
        head = run_title(head, last_step, seed) if " | step " not in head else head
    if findings:
        head += "  (dashed verticals: health findings " + ", ".join(
            sorted({f"{f['kind']} @ {f['step']}" for f in findings})) + ")"
    fig.suptitle(head, fontsize=11)
    return fig


def _panels(train: dict, val: dict) -> tuple[dict[str, str], dict[str, dict], dict[str, dict]]:
    """Twin series dropped, training series grouped into panels (in reading order, learning rate last) and
    validation series into their own panels."""
    lr = train.pop("lr", None)
    twins = _drop_twins(train)
    grouped: dict[str, dict] = {}
    for k, xy in train.items():
        name = next((p for p, test in _PANELS if test(k)), "other")
        grouped.setdefault(name, {})[k] = xy
    order = ["generator: adversarial", "generator: reconstruction / L1", "discriminator loss", "loss",
             "generator: total loss", "discriminator logits", "augmentation (ADA p, r_t)", "gradient norms", "other"]
    panels = {name: grouped[name] for name in sorted(grouped, key=order.index)}
    if lr is not None and len(set(lr[1])) > 1:
        panels["learning rate"] = {"lr": lr}
    val_panels: dict[str, dict] = {}
    for k, xy in val.items():
        label = next((lab for key, lab in _VAL_GROUPS if key in k.lower()), k)
        val_panels.setdefault(f"validation: {label}", {})[k] = xy
    return twins, panels, val_panels


def _draw_panel(ax, name: str, series: dict, is_val: bool, twins: dict[str, str], findings: list,
                last_step: int, legend_findings: bool) -> None:
    """One panel: its series (smoothed for training), the health findings as verticals, a legend outside (the
    findings' entries in the first panel's only)."""
    from matplotlib.ticker import MaxNLocator

    styles = _styled(series)
    for k in sorted(series):
        xs, ys = series[k]
        colour, style = styles[k]
        label = k + "".join(f" (= {b})" for b, a in twins.items() if a == k)
        if is_val:
            ax.plot(xs, ys, color=colour, linestyle=style, marker="o", markersize=3.5, label=label)
        else:
            width = 2.0 if k.endswith(("_loss", "_total")) or k == "loss" else 1.3
            ax.plot(xs, _smooth(ys, max(1, len(ys) // 50)), color=colour, linestyle=style, linewidth=width,
                    label=label)
    if name == "gradient norms" and series:
        lo = min(min(ys) for _, ys in series.values())
        hi = max(max(ys) for _, ys in series.values())
        if lo > 0 and hi / lo > 100:
            ax.set_yscale("log")
    seen: set[str] = set()
    for f in findings:  # the health monitor's findings on the time axis, one legend entry per kind
        legend = legend_findings and f["kind"] not in seen
        line = ax.axvline(f["step"], color="crimson" if f["severity"] == "fatal" else "0.35",
                          linestyle=(0, (2, 2)), linewidth=1.0,
                          label=f"health: {f['kind']}" if legend else "_nolegend_")
        line.set_gid("health-finding")
        seen.add(f["kind"])
    ax.set_title(name, fontsize=10, loc="left")
    ax.set_xlabel("step")
    ax.set_ylabel("value" if is_val else "moving average" if name != "learning rate" else "lr")
    ax.set_xlim(0, max(last_step, 1))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
                  frameon=False)


def plot_loss_curves(records: Sequence[dict], path: str | Path, title: str = "", *,
                     findings: Sequence[Any] | None = None, seed: int | None = None) -> Path | None:
    """Draw a run's metrics: one panel per scale, validation metrics each on their own axes, findings marked.

    Args:
        records: rows of metrics.jsonl (``{"step": int, "split": "train"|"val", key: value, ...}``).
        path: the PNG to (over)write, atomically.
        title: the figure's title (the model name); the last step and ``seed`` are appended.
        findings: the health monitor's findings (:class:`~vgzoo.train.monitor.Finding` or their dicts), drawn as
            dashed verticals at their step; None reads ``health.json`` beside ``path`` when there is one.
        seed: the run's seed, shown in the title.

    Returns:
        The path, or None when there is nothing to draw.
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    fig = loss_figure(records, title, _load_findings(findings, path), seed=seed)
    if fig is None:
        return None
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------ sample grids
def to_unit(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Undo the normalisation ``(x - mean) / std`` and clamp to [0, 1]."""
    c = images.shape[1]
    m = torch.as_tensor(list(mean)[:c], dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    s = torch.as_tensor(list(std)[:c], dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    return (images * s + m).clamp(0, 1)


@functools.lru_cache(maxsize=16)
def _font(size: int):
    from PIL import ImageFont

    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)
    except Exception:  # no matplotlib font: Pillow's own
        return ImageFont.load_default(size)


def _fit(draw, text: str, font, width: int) -> str:
    """``text`` shortened with an ellipsis until it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def grid_image(rows: Sequence[Sequence[torch.Tensor]] | torch.Tensor, scale: int = 1, *,
               headers: Sequence[str] | None = None, row_labels: Sequence[str] | None = None,
               title: str | None = None, min_cell: int = MIN_CELL):
    """The PIL image of :func:`save_grid`."""
    import numpy as np
    from PIL import Image, ImageDraw

    if isinstance(rows, torch.Tensor):
        rows = [list(r) for r in rows]
    rows = [[im.detach().float().cpu() for im in r] for r in rows]
    if not rows or not rows[0]:
        raise ValueError("save_grid: no images to draw; pass rows of (C, H, W) tensors.")
    _, h, w = rows[0][0].shape
    ncol = max(len(r) for r in rows)
    if headers is not None and len(headers) != ncol:
        raise ValueError(f"save_grid: {len(headers)} headers for {ncol} columns; pass one header per column.")
    if row_labels is not None and len(row_labels) != len(rows):
        raise ValueError(f"save_grid: {len(row_labels)} row labels for {len(rows)} rows; pass one per row.")
    s = max(int(scale), math.ceil(min_cell / max(h, w)), 1)
    ch, cw, pad = h * s, w * s, 2
    size = 13
    font = _font(size)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left = 0
    if row_labels:
        left = min(int(max(probe.textlength(str(t), font=font) for t in row_labels)) + 8, 160)
    top_title = size + 10 if title else 0
    top_head = size + 8 if headers else 0
    gw, gh = ncol * (cw + pad) + pad, len(rows) * (ch + pad) + pad
    width = max(left + gw, math.ceil(probe.textlength(title, font=font)) + 14 if title else 0)
    canvas = np.full((top_title + top_head + gh, width, 3), 255, dtype=np.uint8)
    for i, r in enumerate(rows):
        for j, im in enumerate(r):
            im = im.expand(3, -1, -1) if im.shape[0] == 1 else im[:3]
            arr = (im.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            arr = arr.repeat(s, axis=0).repeat(s, axis=1)  # nearest-neighbour upscaling
            y = top_title + top_head + pad + i * (ch + pad)
            x = left + pad + j * (cw + pad)
            canvas[y:y + arr.shape[0], x:x + arr.shape[1]] = arr[:ch, :cw]
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((6, 4), _fit(draw, title, font, width - 12), fill=(0, 0, 0), font=font)
    if headers:
        small = min((_font(k) for k in range(size, 8, -1)
                     if max(draw.textlength(str(t), font=_font(k)) for t in headers) <= cw), default=_font(9),
                    key=lambda f: -f.size)  # the largest size at which every header fits its column
        for j, text in enumerate(headers):
            text = _fit(draw, str(text), small, cw)
            x = left + pad + j * (cw + pad) + (cw - draw.textlength(text, font=small)) / 2
            draw.text((x, top_title + 3 + (size - small.size)), text, fill=(0, 0, 0), font=small)
    if row_labels:
        for i, text in enumerate(row_labels):
            text = _fit(draw, str(text), font, left - 6)
            y = top_title + top_head + pad + i * (ch + pad) + (ch - size) / 2
            draw.text((left - 4 - draw.textlength(text, font=font), y), text, fill=(0, 0, 0), font=font)
    image.info["grid"] = {"rows": len(rows), "cols": ncol, "cell": (ch, cw), "scale": s, "origin":
                          (top_title + top_head + pad, left + pad)}
    return image


def save_grid(rows: Sequence[Sequence[torch.Tensor]] | torch.Tensor, path: str | Path, scale: int = 1, *,
              headers: Sequence[str] | None = None, row_labels: Sequence[str] | None = None,
              title: str | None = None, min_cell: int = MIN_CELL) -> Path:
    """Save a grid of [0, 1] images (rows of (C, H, W) tensors, or a (R, K, C, H, W) tensor) as a PNG.

    Args:
        rows: the images, row by row.
        path: the PNG to (over)write, atomically.
        scale: the least integer upscaling; cells are upscaled nearest-neighbour to at least ``min_cell`` pixels.
        headers: one caption per column (``("A", "G(A)", "B")``, ``("input", "restored", "target")``).
        row_labels: one caption per row (``"class 3"`` for a cGAN, ``"real"``/``"fake"``).
        title: a line above the grid, e.g. :func:`run_title` (model, step, seed).

    The captions are also stored as PNG text chunks (``title``, ``headers``, ``row_labels``), so tools and tests
    can read them back with ``PIL.Image.open(path).text``.
    """
    from PIL.PngImagePlugin import PngInfo

    image = grid_image(rows, scale, headers=headers, row_labels=row_labels, title=title, min_cell=min_cell)
    meta = PngInfo()
    if title:
        meta.add_text("title", str(title))
    if headers:
        meta.add_text("headers", json.dumps([str(h) for h in headers]))
    if row_labels:
        meta.add_text("row_labels", json.dumps([str(r) for r in row_labels]))
    path = Path(path)
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG", pnginfo=meta))
    return path
