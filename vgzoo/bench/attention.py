"""The attention operator alone: naive ``softmax(Q K^T / sqrt(d)) V`` against ``scaled_dot_product_attention``.

Attention is from "Attention Is All You Need" (Vaswani et al., 2017); the fused kernels SDPA dispatches to are
FlashAttention (Dao et al., 2022), memory-efficient attention (Rabe & Staats, 2021; xFormers) and cuDNN's. The naive
operator materialises the ``S x S`` weights, so its memory grows like ``S^2``; the fused kernels tile the softmax
and keep memory linear in S while the FLOPs stay quadratic. This module times each operator forward and
forward+backward over a range of sequence lengths and fits the log-log slopes of time and memory.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .envelope import declare_rows, progress_bar, torch_dtype
from .fit import fit_power_law
from .flops import attention_flops, clip_to_peak, measure_matmul_peak
from .memory import profile_call
from .timing import load_note, threads, time_fn

__all__ = ["ATTENTION_ROW_FIELDS", "DEFAULT_SEQ_LENS", "OPERATORS", "available_operators", "naive_attention",
           "run_attention"]

DEFAULT_SEQ_LENS = (256, 384, 512, 768, 1024, 1536, 2048)
OPERATORS = ("naive", "sdpa_math", "sdpa_flash", "sdpa_efficient", "sdpa_cudnn")
MODES = ("forward", "forward_backward")

ATTENTION_ROW_FIELDS = declare_rows("attention", (
    "operator", "mode", "seq_len", "batch_size", "heads", "head_dim", "dtype", "device",
    "median_s", "iqr_s", "repeats", "min_s", "peak_mem_bytes", "flops", "flops_per_s", "pct_of_peak",
))


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``softmax(Q K^T / sqrt(d)) V`` written out (the ViT's own math path)."""
    from ..layers.attention import attention_math

    return attention_math(q, k, v)[0]


def _sdpa_backend(name: str):
    from torch.nn.attention import SDPBackend

    return {"sdpa_math": SDPBackend.MATH, "sdpa_flash": SDPBackend.FLASH_ATTENTION,
            "sdpa_efficient": SDPBackend.EFFICIENT_ATTENTION, "sdpa_cudnn": SDPBackend.CUDNN_ATTENTION}[name]


def _operator_fn(name: str) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    if name == "naive":
        return naive_attention
    from torch.nn.attention import sdpa_kernel

    backend = _sdpa_backend(name)

    def run(q, k, v):
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q, k, v)

    return run


def available_operators(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                        head_dim: int = 64) -> dict[str, dict[str, Any]]:
    """Which operators run here: ``{name: {"available": bool, "reason": str}}`` (a tiny forward and backward)."""
    device = torch.device(device)
    out: dict[str, dict[str, Any]] = {}
    for name in OPERATORS:
        q = torch.randn(1, 2, 64, head_dim, device=device, dtype=dtype, requires_grad=True)
        with warnings.catch_warnings(record=True) as caught:
            # torch says *why* a backend cannot run (dtype, head_dim, GPU generation) in warnings; the error
            # itself is the generic "No available kernel"
            warnings.simplefilter("always")
            try:
                _operator_fn(name)(q, q, q).sum().backward()
                out[name] = {"available": True, "reason": ""}
                continue
            except (RuntimeError, NotImplementedError) as exc:
                error = " ".join(str(exc).split())
        why = [" ".join(str(w.message).split()) for w in caught if "kernel" in str(w.message).lower()
               or "requires" in str(w.message).lower() or "support" in str(w.message).lower()]
        if device.type != "cuda" and name in ("sdpa_efficient", "sdpa_cudnn"):
            why.insert(0, f"{name.removeprefix('sdpa_')} attention has CUDA kernels only, none for {device.type}")
        out[name] = {"available": False, "reason": "; ".join(dict.fromkeys(why))[:400] or error[:200]}
    return out


def _uses_recompute(name: str) -> bool:
    return name not in ("naive", "sdpa_math")


def run_attention(
    seq_lens: Sequence[int] = DEFAULT_SEQ_LENS,
    *,
    operators: Sequence[str] | None = None,
    modes: Sequence[str] = MODES,
    batch_size: int = 1,
    heads: int = 6,
    head_dim: int = 64,
    device: str = "cpu",
    dtype: str = "float32",
    repeats: int = 7,
    warmup: int = 1,
    budget_s: float | None = 60.0,
    num_threads: int | str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Time and memory of each attention operator over sequence lengths; see docs/bench.md for the result schema.

    Args:
        seq_lens: Sequence lengths S.
        operators: Subset of :data:`OPERATORS`; default all, unavailable ones are skipped and reported.
        modes: ``"forward"`` and/or ``"forward_backward"``.
        batch_size: B.
        heads: h (6 and 64 are ViT-S/16's).
        head_dim: d.
        device: ``cpu`` or ``cuda[:i]``.
        dtype: ``float32``, ``float16`` or ``bfloat16``.
        repeats: Most timed repeats per point (after ``warmup``).
        warmup: Untimed calls per point.
        budget_s: Rough wall-clock budget for the whole sweep; repeats shrink (down to 3) to fit it. ``None``: no cap.
        num_threads: ``torch.set_num_threads`` (``"auto"``: 1 on a busy machine, see
            :func:`vgzoo.bench.timing.resolve_threads`) for the sweep (``None``: torch's default, all cores).
        progress: Show a tqdm progress bar.

    Returns:
        The result document (``kind="attention"``): ``config``, ``operators``, ``rows``, ``fits``, ``interrupted``.
        Ctrl-C stops the sweep and returns what was measured, with ``interrupted=True``.
    """
    with threads(num_threads):
        return _run_attention(seq_lens, operators, modes, batch_size, heads, head_dim, device, dtype, repeats,
                              warmup, budget_s, progress)


def _run_attention(seq_lens, operators, modes, batch_size, heads, head_dim, device, dtype, repeats, warmup,
                   budget_s, progress):
    from .envelope import envelope

    unknown = [o for o in (operators or ()) if o not in OPERATORS]
    if unknown:
        raise ValueError(f"unknown attention operator(s) {unknown}; expected some of {list(OPERATORS)}")
    bad_modes = [m for m in modes if m not in MODES]
    if bad_modes:
        raise ValueError(f"unknown mode(s) {bad_modes}; expected some of {list(MODES)}")
    if not seq_lens or any(int(s) < 1 for s in seq_lens):
        raise ValueError(f"sequence lengths must be positive integers, got {list(seq_lens)}")
    dtype_ = torch_dtype(dtype)
    dev = torch.device(device)
    status = available_operators(dev, dtype_, head_dim)
    chosen = [o for o in (operators or OPERATORS) if status[o]["available"]]
    doc = envelope("attention", device=str(dev), dtype=dtype)
    doc["config"] = {"seq_lens": [int(s) for s in seq_lens], "batch_size": batch_size, "heads": heads,
                     "head_dim": head_dim, "modes": list(modes), "repeats": repeats, "warmup": warmup,
                     "budget_s": budget_s}
    if (note := load_note()) is not None:
        doc["notes"].append(note)
    doc["operators"] = {o: dict(status[o], measured=o in chosen) for o in (operators or OPERATORS)}
    for o, st in doc["operators"].items():
        if not st["available"]:
            doc["notes"].append(f"{o} skipped: not available on {dev} {dtype} ({st['reason']})")
    doc["matmul_peak_flops"] = peak = measure_matmul_peak(dev, dtype_)
    points = [(s, o, m) for s in sorted(int(s) for s in seq_lens) for m in modes for o in chosen]
    # Cost of a point grows like S^2: share the budget accordingly.
    weights = [s * s * (3 if m == "forward_backward" else 1) for s, _, m in points]
    total_w = sum(weights) or 1
    rows: list[dict[str, Any]] = doc["rows"]
    bar = progress_bar(len(points), "attention", progress)
    out_of_memory: set[tuple[str, str]] = set()
    try:
        for (s, op, mode), w in zip(points, weights, strict=False):
            bar.set_postfix_str(f"{op} {mode} S={s}")
            if (op, mode) in out_of_memory:  # a longer sequence needs more: skip it rather than fail again
                doc["notes"].append(f"{op} {mode} S={s} skipped: a shorter sequence ran out of memory")
            else:
                try:
                    rows.append(_measure_point(op, mode, s, batch_size, heads, head_dim, dev, dtype_, dtype,
                                               repeats, warmup, None if budget_s is None else budget_s * w / total_w,
                                               peak))
                except torch.OutOfMemoryError:
                    out_of_memory.add((op, mode))
                    doc["notes"].append(f"{op} {mode} S={s}: out of memory on {dev}; longer sequences skipped")
                    _release_memory(dev)
            bar.update(1)
    except KeyboardInterrupt:
        doc["interrupted"] = True
    finally:
        bar.close()
    doc["fits"] = attention_fits(rows)
    clip_to_peak(doc)
    return doc


def _release_memory(dev: torch.device) -> None:
    """Give the blocks an out-of-memory point left in the caching allocator back, so the next point starts clean."""
    if dev.type == "cuda":
        torch.cuda.empty_cache()


def attention_fits(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Log-log slopes of time and memory against S, per operator (forward; forward+backward alongside)."""
    fits: dict[str, dict[str, Any]] = {}
    for op in dict.fromkeys(r["operator"] for r in rows):
        entry: dict[str, Any] = {"x": "seq_len"}
        for mode, prefix in (("forward", ""), ("forward_backward", "forward_backward_")):
            sel = [r for r in rows if r["operator"] == op and r["mode"] == mode]
            t = fit_power_law([r["seq_len"] for r in sel], [r["median_s"] for r in sel])
            tmin = fit_power_law([r["seq_len"] for r in sel], [r["min_s"] for r in sel])
            m = fit_power_law([r["seq_len"] for r in sel], [r["peak_mem_bytes"] for r in sel])
            entry[prefix + "time_exponent"] = t.exponent if t else None
            entry[prefix + "memory_exponent"] = m.exponent if m else None
            entry[prefix + "time_r2"] = t.r2 if t else None
            entry[prefix + "time_exponent_min"] = tmin.exponent if tmin else None
        fits[op] = entry
    return fits


def _measure_point(op, mode, s, b, h, d, dev, torch_dtype, dtype_name, repeats, warmup, budget, peak) -> dict:
    fn_op = _operator_fn(op)
    backward = mode == "forward_backward"
    q, k, v = (torch.randn(b, h, s, d, device=dev, dtype=torch_dtype, requires_grad=backward) for _ in range(3))

    if backward:
        grad = torch.ones(b, h, s, d, device=dev, dtype=torch_dtype)

        def fn():
            for t in (q, k, v):
                t.grad = None
            fn_op(q, k, v).backward(grad)
    else:
        def fn():
            with torch.inference_mode():
                fn_op(q, k, v)

    timing = time_fn(fn, repeats=repeats, warmup=warmup, device=dev, budget_s=budget, min_repeats=min(3, repeats))
    for t in (q, k, v):
        t.grad = None
    mem = profile_call(fn, dev)
    flops = attention_flops(b, h, s, d)
    if backward:
        flops += attention_flops(b, h, s, d, backward=True, recompute=_uses_recompute(op))
    fps = flops / timing.median if timing.median > 0 else None
    return {"operator": op, "mode": mode, "seq_len": s, "batch_size": b, "heads": h, "head_dim": d,
            "dtype": dtype_name, "device": str(dev), "median_s": timing.median, "iqr_s": timing.iqr,
            "repeats": len(timing.times), "min_s": timing.min, "peak_mem_bytes": mem.peak_bytes, "flops": flops,
            "flops_per_s": fps,
            "pct_of_peak": 100.0 * fps / peak if fps and peak else None}
