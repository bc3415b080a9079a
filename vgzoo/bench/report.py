"""Result documents of the benchmark harness as files: text tables, JSON, CSV and PNG plots (the envelope they share
is :mod:`vgzoo.bench.envelope`).

The schema is documented in docs/bench.md and pinned by tests/test_bench.py. Plots use matplotlib's Agg backend
(no display needed). The scaling plots follow the presentation of the FlashAttention paper (Dao et al., 2022):
log-log axes with reference slopes, so a quadratic cost reads as a line of slope 2.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

from .envelope import ENVELOPE_KEYS, row_fields

__all__ = ["ENVELOPE_KEYS", "FIT_FIELDS", "format_table", "to_json", "write_results"]

def _clean(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def to_json(doc: dict[str, Any]) -> str:
    """The document as indented JSON (NaN/inf become null)."""
    return json.dumps(_clean(doc), indent=2, default=str)


FIT_FIELDS = ("name", "x", "time_exponent", "memory_exponent", "time_r2", "time_exponent_min",
              "forward_backward_time_exponent", "forward_backward_memory_exponent", "flops_exponent")


def write_results(doc: dict[str, Any], out_dir: str | os.PathLike, *, plots: bool = True) -> list[Path]:
    """Write ``<kind>.json``, ``<kind>.csv``, ``<kind>_fits.csv`` and the ``<kind>*.png`` plots into ``out_dir``.

    Returns:
        The paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kind = doc["kind"]
    written = []
    path = out / f"{kind}.json"
    path.write_text(to_json(doc) + "\n")
    written.append(path)
    path = out / f"{kind}.csv"
    fields = row_fields(kind) or (tuple(doc["rows"][0]) if doc["rows"] else ())
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in doc["rows"]:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fields})
    written.append(path)
    if doc.get("fits"):
        path = out / f"{kind}_fits.csv"
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=FIT_FIELDS, extrasaction="ignore")
            writer.writeheader()
            for name, fit in doc["fits"].items():
                writer.writerow({k: ("" if v is None else v) for k, v in dict(fit, name=name).items()})
        written.append(path)
    if plots and doc["rows"]:
        from . import plots as _plots

        written.extend(_plots.plot(doc, out))
    return written


def _fmt(value, spec: str = ".3g") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def _mib(value) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=False)))

    lines = [line(header), "  ".join("-" * w for w in widths)]
    lines += [line(r) for r in rows]
    return "\n".join(lines)


def format_table(doc: dict[str, Any]) -> str:
    """A plain-text report: one table of measurements, one of fits (and crossovers for scaling runs)."""
    kind = doc["kind"]
    rows = doc["rows"]
    parts = []
    peak = doc.get("matmul_peak_flops")
    where = doc["machine"].get("gpu") if str(doc["device"]).startswith("cuda") else None
    where = where or f"{doc['machine']['cpu']}, {doc['machine']['torch_threads']} threads"
    prec = doc.get("precision") or {}
    tf32 = prec.get("allow_tf32_matmul")
    parts.append(f"vgzoo bench {kind} on {doc['device']} ({where}), {doc['dtype']}; {doc['dtype']} matmul peak "
                 f"{_fmt(peak / 1e9 if peak else None, '.1f')} GFLOP/s; SDPA picks {doc.get('sdpa_backend', '-')}"
                 + ("" if tf32 is None else f"; TF32 matmul {'on' if tf32 else 'off'}"))
    if kind == "scaling":
        header = ["model", "px", "tokens", "ms", "iqr ms", "img/s", "GFLOP", "attn %FLOP", "attn %time", "MiB",
                  "%peak"]
        body = [[r["model"], str(r["img_size"]), _fmt(r.get("tokens"), "d") if r.get("tokens") else "-",
                 _fmt(r["median_s"] * 1e3, ".2f"), _fmt(r["iqr_s"] * 1e3, ".2f"), _fmt(r["images_per_s"], ".1f"),
                 _fmt(r["flops"] / 1e9 if r["flops"] else None, ".2f"),
                 _fmt(100 * r["attention_flop_share"] if r.get("attention_flop_share") is not None else None, ".1f"),
                 _fmt(100 * r["attention_time_share"] if r.get("attention_time_share") is not None else None, ".1f"),
                 _mib(r["peak_mem_bytes"]), _fmt(r["pct_of_peak"], ".1f")] for r in rows]
    elif kind == "attention":
        header = ["operator", "mode", "S", "ms", "iqr ms", "MiB", "GFLOP/s", "%peak"]
        body = [[r["operator"], r["mode"], str(r["seq_len"]), _fmt(r["median_s"] * 1e3, ".2f"),
                 _fmt(r["iqr_s"] * 1e3, ".2f"), _mib(r["peak_mem_bytes"]),
                 _fmt(r["flops_per_s"] / 1e9 if r["flops_per_s"] else None, ".1f"), _fmt(r["pct_of_peak"], ".1f")]
                for r in rows]
    else:
        header = ["model", "mode", "batch", "px", "ms/step", "iqr ms", "samples/s", "GFLOP/step", "MiB", "%peak"]
        body = [[r["model"], r["mode"], str(r["batch_size"]), str(r["img_size"] or "-"),
                 _fmt(r["median_s"] * 1e3, ".2f"), _fmt(r["iqr_s"] * 1e3, ".2f"), _fmt(r["samples_per_s"], ".1f"),
                 _fmt(r["flops"] / 1e9 if r["flops"] else None, ".2f"), _mib(r["peak_mem_bytes"]),
                 _fmt(r["pct_of_peak"], ".1f")] for r in rows]
    parts.append(_table(header, body))
    if doc.get("fits"):
        header = ["fit", "x", "time exp", "memory exp", "time r2"]
        fit_rows = [[name, f["x"], _fmt(f.get("time_exponent"), ".2f"), _fmt(f.get("memory_exponent"), ".2f"),
                     _fmt(f.get("time_r2"), ".3f")] for name, f in doc["fits"].items()]
        if kind == "attention":
            header += ["fwd+bwd time exp", "fwd+bwd memory exp"]
            for row, f in zip(fit_rows, doc["fits"].values(), strict=False):
                row += [_fmt(f.get("forward_backward_time_exponent"), ".2f"),
                        _fmt(f.get("forward_backward_memory_exponent"), ".2f")]
        parts.append(_table(header, fit_rows))
    if doc.get("crossover"):
        header = ["crossover", "predicted px (S=6D)", "FLOPs px", "how", "time px", "how"]
        body = [[name, _fmt(c.get("predicted_px"), ".0f"), _fmt(c.get("flops_px"), ".0f"), c.get("flops_method") or "-",
                 _fmt(c.get("time_px"), ".0f"), c.get("time_method") or "-"] for name, c in doc["crossover"].items()]
        parts.append(_table(header, body))
    if doc.get("ratio"):
        parts.append("\n".join(f"{k}: {_fmt(v, '.3f')}" for k, v in doc["ratio"].items()))
    for note in doc.get("notes", []):
        parts.append(f"note: {note}")
    if doc.get("interrupted"):
        parts.append("interrupted: the results above are partial")
    return "\n\n".join(parts)
