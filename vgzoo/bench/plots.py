"""PNG plots of the benchmark documents (matplotlib, Agg backend: no display needed).

Log-log axes with dotted reference slopes (S^1, S^2), as in the FlashAttention paper (Dao et al., 2022), so a cost's
exponent can be read off as a slope.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _reference_slopes(ax, xs, ys, slopes=(1, 2)) -> None:
    if not xs or not ys:
        return
    x0, x1 = min(xs), max(xs)
    y0 = min(ys)
    for k, style in zip(slopes, (":", "--"), strict=False):
        ax.plot([x0, x1], [y0, y0 * (x1 / x0) ** k], color="grey", linestyle=style, linewidth=0.8,
                label=f"slope {k} (reference)")


def plot(doc: dict[str, Any], out: Path) -> list[Path]:
    """Write the plots of ``doc`` into ``out``; returns the paths."""
    if doc["kind"] == "scaling":
        return [_plot_scaling(doc, out / "scaling.png")]
    if doc["kind"] == "attention":
        return [_plot_attention(doc, out / "attention.png")]
    return [_plot_model(doc, out / "model.png")]


def _plot_scaling(doc: dict[str, Any], path: Path) -> Path:
    plt = _pyplot()
    from matplotlib.ticker import NullFormatter

    rows = doc["rows"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    names = list(dict.fromkeys(r["model"] for r in rows))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for idx, name in enumerate(names):
        color = colors[idx % len(colors)]
        sel = sorted((r for r in rows if r["model"] == name), key=lambda r: r["img_size"])
        px = [r["pixels"] for r in sel]
        fit = doc.get("fits", {}).get(name, {})
        label = f"{name} (t~x^{fit['time_exponent']:.2f})" if fit.get("time_exponent") is not None else name
        axes[0].errorbar(px, [r["median_s"] * 1e3 for r in sel], yerr=[r["iqr_s"] * 1e3 / 2 for r in sel],
                         marker="o", capsize=2, label=label, color=color)
        axes[1].plot(px, [max(r["peak_mem_bytes"], 1) / 2**20 for r in sel], marker="o", label=name, color=color)
        if sel[0]["kind"] == "vit":
            axes[2].plot([r["img_size"] for r in sel], [100 * (r["attention_flop_share"] or 0) for r in sel],
                         marker="o", label=f"{name} FLOPs", color=color)
            if any(r.get("attention_time_share") is not None for r in sel):
                axes[2].plot([r["img_size"] for r in sel], [100 * (r["attention_time_share"] or 0) for r in sel],
                             marker="x", linestyle="--", label=f"{name} time", color=color)
    all_px = [r["pixels"] for r in rows]
    _reference_slopes(axes[0], all_px, [r["median_s"] * 1e3 for r in rows])
    for ax, title, ylabel in ((axes[0], "Latency (median, IQR bars)", "ms per batch"),
                              (axes[1], "Peak memory during forward", "MiB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("pixels per image (H x W)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    ax = axes[2]
    for name, c in doc.get("crossover", {}).items():
        if c.get("predicted_px"):
            ax.axvline(c["predicted_px"], color="grey", linestyle=":", linewidth=0.8)
            ax.text(c["predicted_px"], 2, f"{name}\nS=6D: {c['predicted_px']:.0f}px", fontsize=6, rotation=90,
                    va="bottom")
    ax.axhline(50, color="black", linewidth=0.5)
    ax.set_xlabel("image side (px)")
    ax.set_ylabel("% of model")
    ax.set_title("Attention share of FLOPs and operator time (ViTs)")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    m = doc["machine"]
    fig.suptitle(f"vgzoo bench scaling: {doc['device']}, {m['cpu']}, torch threads: {m['torch_threads']}, "
                 f"batch {doc['config'].get('batch_size')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_attention(doc: dict[str, Any], path: Path) -> Path:
    plt = _pyplot()
    rows = doc["rows"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    styles = {"forward": "-", "forward_backward": "--"}
    for op in dict.fromkeys(r["operator"] for r in rows):
        for mode, style in styles.items():
            sel = sorted((r for r in rows if r["operator"] == op and r["mode"] == mode), key=lambda r: r["seq_len"])
            if not sel:
                continue
            fit = doc.get("fits", {}).get(op, {})
            key = "time_exponent" if mode == "forward" else "forward_backward_time_exponent"
            exp = f" (~S^{fit[key]:.2f})" if fit.get(key) is not None else ""
            s = [r["seq_len"] for r in sel]
            axes[0].plot(s, [r["median_s"] * 1e3 for r in sel], linestyle=style, marker="o", label=f"{op} {mode}{exp}")
            axes[1].plot(s, [max(r["peak_mem_bytes"], 1) / 2**20 for r in sel], linestyle=style, marker="o",
                         label=f"{op} {mode}")
    seqs = [r["seq_len"] for r in rows]
    _reference_slopes(axes[0], seqs, [r["median_s"] * 1e3 for r in rows])
    _reference_slopes(axes[1], seqs, [max(r["peak_mem_bytes"], 1) / 2**20 for r in rows])
    for ax, title, ylabel in ((axes[0], "Attention time", "ms"), (axes[1], "Attention peak memory", "MiB")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length S")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    c = doc["config"]
    fig.suptitle(f"vgzoo bench attention: {doc['device']} {doc['dtype']}, B={c.get('batch_size')} "
                 f"h={c.get('heads')} d={c.get('head_dim')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_model(doc: dict[str, Any], path: Path) -> Path:
    plt = _pyplot()
    rows = doc["rows"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.barh([r["model"] for r in rows], [r["samples_per_s"] or 0 for r in rows],
            xerr=[(r["samples_per_s"] or 0) * r["iqr_s"] / (2 * r["median_s"]) if r["median_s"] else 0 for r in rows])
    ax.set_xlabel("samples/s")
    ax.set_title(f"{rows[0]['mode']} throughput, batch {rows[0]['batch_size']}, {doc['device']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
