"""FLOP accounting: FlopCounterMode for everything it gets right, analytic counts for attention.

Attention follows "Attention Is All You Need" (Vaswani et al., 2017): ``softmax(Q K^T / sqrt(d)) V``. One forward
costs two batched matmuls, ``2*B*h*Sq*Sk*d`` each, so ``4*B*h*S^2*d`` per layer for self-attention. The backward of
the math path is four matmuls of the same size (2x the forward); kernels that recompute ``Q K^T`` in the backward
(FlashAttention, Dao et al., 2022) do five (2.5x the forward), the FlashAttention paper's convention.

On CPU, ``torch.utils.flop_counter.FlopCounterMode`` has no formula for ``_scaled_dot_product_flash_attention_for_cpu``
and silently counts 0 for ``F.scaled_dot_product_attention``, which drops exactly the quadratic term this harness is
about. :func:`count_flops` adds analytic formulas for every fused SDPA kernel (CPU and CUDA) and reports the
attention FLOPs separately, with the shapes it saw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = [
    "BACKWARD_FACTOR_MATH",
    "BACKWARD_FACTOR_RECOMPUTE",
    "FlopCount",
    "attention_flops",
    "count_flops",
    "matmul_flops",
    "clip_to_peak",
    "measure_matmul_peak",
]

BACKWARD_FACTOR_MATH = 2.0
BACKWARD_FACTOR_RECOMPUTE = 2.5


def attention_flops(batch: int, heads: int, seq_q: int, head_dim: int, *, seq_k: int | None = None,
                    head_dim_v: int | None = None, backward: bool = False, recompute: bool = False) -> int:
    """Analytic FLOPs of ``softmax(Q K^T / sqrt(d)) V`` (matmuls only, as FlopCounterMode counts them).

    Args:
        batch: Batch size B.
        heads: Number of heads h.
        seq_q: Query length S (also the key length unless ``seq_k`` is given).
        head_dim: Per-head dimension d of queries and keys.
        seq_k: Key/value length; defaults to ``seq_q``.
        head_dim_v: Per-head dimension of the values; defaults to ``head_dim``.
        backward: Count the backward pass instead of the forward.
        recompute: For the backward, a kernel that recomputes ``Q K^T`` (flash/efficient/cudnn): 2.5x the forward
            instead of 2x.

    Returns:
        The FLOP count (a multiply-add counts as 2), ``4*B*h*S^2*d`` for a self-attention forward.
    """
    seq_k = seq_q if seq_k is None else seq_k
    head_dim_v = head_dim if head_dim_v is None else head_dim_v
    forward = 2 * batch * heads * seq_q * seq_k * head_dim + 2 * batch * heads * seq_q * seq_k * head_dim_v
    if not backward:
        return forward
    return int(forward * (BACKWARD_FACTOR_RECOMPUTE if recompute else BACKWARD_FACTOR_MATH))


def matmul_flops(m: int, n: int, k: int) -> int:
    """FLOPs of an ``(m, k) @ (k, n)`` matmul: ``2*m*n*k``."""
    return 2 * m * n * k


@dataclass
class FlopCount:
    """What :func:`count_flops` found.

    Attributes:
        total: All FLOPs, attention included (analytic for fused SDPA kernels).
        attention: FLOPs of fused SDPA kernels (analytic). Attention written out as matmuls is in ``total`` only.
        linear: FLOPs of ``mm``/``addmm``/``bmm``-family ops outside fused attention (linear layers, naive attention).
        conv: FLOPs of convolutions.
        builtin_total: What plain FlopCounterMode reports for the same call (0 for SDPA on CPU).
        attention_calls: ``(B, h, Sq, Sk, d)`` of every fused SDPA forward seen.
        by_op: FLOPs per aten op name.
    """

    total: int = 0
    attention: int = 0
    linear: int = 0
    conv: int = 0
    builtin_total: int = 0
    attention_calls: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    by_op: dict[str, int] = field(default_factory=dict)


def _sdpa_formulas(recorder: list, builtin: list, recompute_bwd: bool) -> dict[Any, Callable]:
    """Analytic formulas for the fused SDPA ops; ``builtin`` collects what stock FlopCounterMode would count."""
    from torch.utils.flop_counter import flop_registry

    aten = torch.ops.aten

    def make(packet, is_backward: bool) -> Callable:
        stock = flop_registry.get(packet)

        def formula(*args, out_val=None, **kwargs) -> int:
            q, k, v = args[1:4] if is_backward else args[:3]
            b, h, sq, d = q.shape
            sk, dv = k.shape[-2], v.shape[-1]
            if not is_backward:
                recorder.append((b, h, sq, sk, d))
            builtin.append(int(stock(*args, out_val=out_val, **kwargs)) if stock is not None else 0)
            return attention_flops(b, h, sq, d, seq_k=sk, head_dim_v=dv, backward=is_backward,
                                   recompute=recompute_bwd)

        formula._get_raw = True  # receive the tensors, so the stock formula can be asked too
        return formula

    mapping: dict[Any, Callable] = {}
    for fwd_name, bwd_name in (
        ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention_for_cpu_backward"),
        ("_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_backward"),
        ("_scaled_dot_product_efficient_attention", "_scaled_dot_product_efficient_attention_backward"),
        ("_scaled_dot_product_cudnn_attention", "_scaled_dot_product_cudnn_attention_backward"),
    ):
        if hasattr(aten, fwd_name):
            mapping[getattr(aten, fwd_name)] = make(getattr(aten, fwd_name), False)
        if hasattr(aten, bwd_name):
            mapping[getattr(aten, bwd_name)] = make(getattr(aten, bwd_name), True)
    return mapping


_LINEAR_OPS = ("mm", "addmm", "bmm", "baddbmm", "_scaled_mm")
_CONV_OPS = ("convolution", "_convolution", "convolution_backward", "conv2d", "cudnn_convolution")


def _op_name(op) -> str:
    name = getattr(op, "__name__", str(op))
    return name.split(".")[0]


def count_flops(fn: Callable[[], Any], *, recompute_backward: bool = True) -> FlopCount:
    """Count the FLOPs of ``fn()`` (forward, or forward and backward if ``fn`` calls ``backward()``).

    One pass under FlopCounterMode with analytic formulas for the fused SDPA kernels; what stock FlopCounterMode
    would have reported for the same pass (its own formula where it has one, else 0) is kept in ``builtin_total``.

    Args:
        fn: A zero-argument callable that runs the work to count.
        recompute_backward: Count fused-SDPA backwards with the recompute factor (2.5x); ``False`` gives 2x.

    Returns:
        A :class:`FlopCount`.
    """
    calls: list = []
    builtin: list = []
    result = FlopCount()
    mapping = _sdpa_formulas(calls, builtin, recompute_backward)
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn()
    for op, flops in counter.get_flop_counts().get("Global", {}).items():
        name = _op_name(op)
        result.by_op[name] = result.by_op.get(name, 0) + int(flops)
        if op in mapping:
            result.attention += int(flops)
        elif name in _LINEAR_OPS:
            result.linear += int(flops)
        elif name in _CONV_OPS:
            result.conv += int(flops)
    result.total = int(counter.get_total_flops())
    result.attention_calls = calls
    result.builtin_total = result.total - result.attention + sum(builtin)
    return result


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


#: Matrix sides tried for the peak: one size alone can sit in a cache-unfriendly spot or leave a GPU launch-bound.
PEAK_SIZES = {"cpu": (256, 512, 1024), "cuda": (2048, 4096, 8192)}


def measure_matmul_peak(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, size: int | None = None,
                        repeats: int = 5, sizes: tuple[int, ...] | None = None, budget_s: float = 1.0) -> float:
    """Best achieved FLOP/s of a square matmul in ``dtype``, the reference "peak" the harness quotes percentages of.

    A peak is a maximum: the best of ``repeats`` calls at each of several sizes, so that a single unlucky size or
    a noisy neighbour does not make the reference too low. Rows of a ``dtype`` run are compared with the peak of
    that dtype (a bf16 model against a bf16 matmul), and :func:`clip_to_peak` raises it to any row that still beats
    it, so no row reads above 100%. A dtype the hardware only emulates (bf16 on a CPU without bf16 units runs
    orders of magnitude slower than fp32) would make the big sizes take many seconds, so repeats stop after
    ``budget_s`` per size, and a next size whose call would take longer than ``budget_s`` is not tried.

    Args:
        device: Where to measure.
        dtype: Element type (fp32 by default); the TF32 settings in force apply to fp32 on CUDA.
        size: One matrix side (overrides ``sizes``).
        repeats: Timed repeats per size after one warm-up.
        sizes: Matrix sides, ascending (default :data:`PEAK_SIZES` for the device).
        budget_s: Seconds of timed calls per size.

    Returns:
        FLOP/s.
    """
    import time

    device = torch.device(device)
    if size is not None:
        sizes = (size,)
    sizes = sizes or PEAK_SIZES.get(device.type, PEAK_SIZES["cpu"])
    best_rate = 0.0
    with torch.inference_mode():
        for n in sorted(sizes):
            if best_rate and matmul_flops(n, n, n) / best_rate > budget_s:
                break  # one call of this size would take longer than the budget
            a = torch.randn(n, n, device=device, dtype=dtype)
            b = torch.randn(n, n, device=device, dtype=dtype)
            a @ b
            _sync(device)
            best, spent = float("inf"), 0.0
            for _ in range(max(1, repeats)):
                start = time.perf_counter()
                a @ b
                _sync(device)
                took = time.perf_counter() - start
                best, spent = min(best, took), spent + took
                if spent > budget_s:
                    break
            best_rate = max(best_rate, matmul_flops(n, n, n) / max(best, 1e-12))
    return best_rate


def clip_to_peak(doc: dict) -> None:
    """Make ``doc["matmul_peak_flops"]`` an upper bound of its rows' FLOP/s and recompute ``pct_of_peak``.

    A row that beats the measured matmul peak (a fused kernel, a lucky repeat) raises the reference to its own rate
    and a note says so; every row then reads at most 100%.
    """
    rows = [r for r in doc.get("rows", []) if r.get("flops_per_s")]
    peak = doc.get("matmul_peak_flops")
    if not rows or not peak:
        return
    best = max(rows, key=lambda r: r["flops_per_s"])
    if best["flops_per_s"] > peak:
        doc["notes"].append(
            f"peak raised from the measured {doc['dtype']} matmul rate {peak / 1e9:.1f} GFLOP/s to the fastest row "
            f"({best.get('model') or best.get('operator')}: {best['flops_per_s'] / 1e9:.1f} GFLOP/s); % of peak is "
            "relative to it")
        doc["matmul_peak_measured_flops"] = peak
        doc["matmul_peak_flops"] = peak = best["flops_per_s"]
    for r in rows:  # the ratio first: x / x is exactly 1, (100 * x) / x may round above 100
        r["pct_of_peak"] = 100.0 * (r["flops_per_s"] / peak)
