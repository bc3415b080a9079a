"""Reproduce the committed `vgzoo bench` CPU results: the default scaling sweep and the attention-operator sweep.

Writes benchmarks/bench_default/ (scaling.* and attention.* as JSON, CSV, PNG) and the "bench" section of
benchmarks/RESULTS.md. Equivalent to `vgzoo bench --out benchmarks/bench_default` followed by
`vgzoo bench attention --out benchmarks/bench_default`, with `--threads 1` (see THREADS).

    python benchmarks/bench_default.py            # one torch thread (steady on a shared machine)
    VGZOO_BENCH_THREADS=0 python benchmarks/bench_default.py   # torch's default threads, as `vgzoo bench` does
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import machine, write_section  # noqa: E402

from vgzoo.bench import run_attention, run_scaling, write_results  # noqa: E402

OUT = Path(__file__).resolve().parent / "bench_default"
# One torch thread: on the shared development machine (load average 5-16 on 2 cores while this was committed),
# two OpenMP threads per process made a ViT-Ti forward at 64 px take 1.5 s instead of 16 ms; one thread is steady.
# On a quiet machine pass --threads 0 to use torch's default (all cores), as `vgzoo bench` does.
THREADS = int(os.environ.get("VGZOO_BENCH_THREADS", "1")) or None


def _f(value, spec=".2f") -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    load_before = os.getloadavg()
    started = time.perf_counter()
    scaling = run_scaling(num_threads=THREADS)
    scaling_s = time.perf_counter() - started
    write_results(scaling, OUT)
    t0 = time.perf_counter()
    attention = run_attention(num_threads=THREADS)
    attention_s = time.perf_counter() - t0
    write_results(attention, OUT)
    load_after = os.getloadavg()

    lines = [
        "## bench: attention O(S^2) against convolution throughput (`vgzoo bench`)",
        "",
        f"Machine: {machine()}. A **shared 2-core machine**: other engineers' jobs ran at the same time "
        f"(load average {load_before[0]:.1f} before, {load_after[0]:.1f} after, on 2 cores), so absolute times are "
        "pessimistic and noisy; read medians, exponents and ratios. "
        f"fp32 matmul peak measured in the run: {scaling['matmul_peak_flops'] / 1e9:.1f} GFLOP/s.",
        "",
        f"`vgzoo bench --threads {THREADS or 'default'}` (defaults: batch 1, fp32, 64..448 px) took {scaling_s:.0f} s; "
        f"`vgzoo bench attention --threads {THREADS or 'default'}` took {attention_s:.0f} s "
        "(one torch thread: with two, contention from the other jobs made times meaningless). "
        "Files: `benchmarks/bench_default/`; schema and "
        "how to read the plots: `docs/bench.md`. Reproduce: `python benchmarks/bench_default.py`.",
        "",
        "![scaling](bench_default/scaling.png)",
        "",
        "| model | px | tokens | median ms | IQR ms | img/s | GFLOP | attention % of FLOPs | attention % of op time "
        "| peak MiB | % of matmul peak |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in scaling["rows"]:
        lines.append(
            f"| {r['model']} | {r['img_size']} | {r['tokens'] or '-'} | {r['median_s'] * 1e3:.1f} | "
            f"{r['iqr_s'] * 1e3:.1f} | {_f(r['images_per_s'], '.1f')} | {r['flops'] / 1e9:.2f} | "
            f"{_f(100 * r['attention_flop_share'] if r['attention_flop_share'] is not None else None, '.1f')} | "
            f"{_f(100 * r['attention_time_share'] if r['attention_time_share'] is not None else None, '.1f')} | "
            f"{r['peak_mem_bytes'] / 2**20:.1f} | {_f(r['pct_of_peak'], '.1f')} |")
    lines += ["", "Log-log fits (exponent of time / peak memory / FLOPs against tokens for ViTs, pixels for convnets):",
              "", "| model | x | time exponent (medians) | time exponent (fastest repeat) | time exponent, upper half "
              "| memory exponent | FLOPs exponent |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for name, f in scaling["fits"].items():
        lines.append(f"| {name} | {f['x']} | {_f(f['time_exponent'])} | {_f(f['time_exponent_min'])} | "
                     f"{_f(f['time_exponent_upper_half'])} | "
                     f"{_f(f['memory_exponent'])} | {_f(f['flops_exponent'])} |")
    lines += ["", "Where attention catches up with the linear layers (px):", "",
              "| model | predicted, S = 6D | from FLOP counts | from operator time |", "|---|---:|---:|---:|"]
    for name, c in scaling["crossover"].items():
        lines.append(f"| {name} | {c['predicted_px']:.0f} | {_f(c['flops_px'], '.0f')} ({c['flops_method'] or '-'}) | "
                     f"{_f(c['time_px'], '.0f')} ({c['time_method'] or '-'}) |")
    lines += ["", "![attention](bench_default/attention.png)", "",
              "Attention operator alone (B=1, h=6, d=64, fp32), exponents against S = 256..2048:", "",
              "| operator | time exp (fwd) | time exp (fwd, fastest) | memory exp (fwd) | time exp (fwd+bwd) | "
              "memory exp (fwd+bwd) | "
              "ms at S=2048 fwd | MiB at S=2048 fwd |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for op, f in attention["fits"].items():
        top = [r for r in attention["rows"] if r["operator"] == op and r["mode"] == "forward"]
        top = max(top, key=lambda r: r["seq_len"]) if top else None
        lines.append(f"| {op} | {_f(f['time_exponent'])} | {_f(f['time_exponent_min'])} | {_f(f['memory_exponent'])} | "
                     f"{_f(f['forward_backward_time_exponent'])} | {_f(f['forward_backward_memory_exponent'])} | "
                     f"{_f(top['median_s'] * 1e3 if top else None, '.1f')} | "
                     f"{_f(top['peak_mem_bytes'] / 2**20 if top else None, '.1f')} |")
    for note in scaling["notes"] + attention["notes"]:
        lines.append(f"\nNote: {note}")
    write_section("bench", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
