"""CPU inference latency of exported models: onnxruntime against PyTorch eager, on the same inputs.

The CycleGAN generator (``cyclegan_resnet``'s G_AB, 9 ResNet blocks) at 256 px and ViT-B/16
(``vit_b16_scratch``) at 224 px, batch 1 and 8, fp32, random weights (latency does not depend on them).
Each model is exported once with ``vgzoo.export.trace_model`` (the path of ``vgzoo export --format onnx``);
onnxruntime runs on the CPU execution provider with as many intra-op threads as torch uses. On every repeat
both contenders run once, in alternating order, after one warm-up each; the table gives medians and IQRs.

    python benchmarks/bench_export.py                  # 11 repeats at batch 1, 5 at batch 8
    python benchmarks/bench_export.py --repeats 5 --repeats-batch 3 --no-write
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from _results import iqr, machine, median, write_section

import vgzoo
from vgzoo.export import OnnxModel, trace_model

CASES = [("cyclegan_resnet", "CycleGAN G_AB (9 blocks)", 256), ("vit_b16_scratch", "ViT-B/16", 224)]


def timed(fn, x) -> float:
    start = time.perf_counter()
    fn(x)
    return time.perf_counter() - start


def bench_case(name: str, size: int, batches: list[int], repeats: dict[int, int], folder: Path) -> list[dict]:
    torch.manual_seed(0)
    model = vgzoo.create(name).eval()
    traced = trace_model(model)
    path = folder / f"{name}.onnx"
    traced.save(path, "onnx")
    net = traced.target.module
    runner = OnnxModel(path)
    rows = []
    with torch.inference_mode():
        for batch in batches:
            x = torch.rand(batch, 3, size, size) * 2 - 1
            diff = float((runner(x) - net(x)).abs().max())  # also the warm-up of both
            times = {"eager": [], "onnxruntime": []}
            for r in range(repeats[batch]):
                order = ["eager", "onnxruntime"] if r % 2 == 0 else ["onnxruntime", "eager"]
                for who in order:
                    times[who].append(timed(net if who == "eager" else runner, x))
            rows.append({"batch": batch, "diff": diff, "repeats": repeats[batch],
                         **{k: (median(v) * 1e3, iqr(v) * 1e3) for k, v in times.items()}})
            print(name, batch, rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11, help="repeats at batch 1")
    parser.add_argument("--repeats-batch", type=int, default=5, help="repeats at batch 8")
    parser.add_argument("--no-write", action="store_true", help="print only, do not update RESULTS.md")
    args = parser.parse_args()
    import onnxruntime

    start, load_start = time.time(), os.getloadavg()[0]
    repeats = {1: args.repeats, 8: args.repeats_batch}
    lines = [
        "## export: onnxruntime vs PyTorch eager, CPU inference",
        "",
        f"`python benchmarks/bench_export.py` on {machine()}, onnxruntime {onnxruntime.__version__} (CPU provider, "
        f"{torch.get_num_threads()} intra-op threads).",
        "Shared 2-core machine with other jobs running: absolute numbers are noisy; the two contenders alternate "
        "on every repeat (one warm-up each), so their ratio is the steadier number. fp32, random weights.",
        "",
        "| model | input | eager ms | onnxruntime ms | onnxruntime speed-up | max abs diff |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, label, size in CASES:
            for row in bench_case(name, size, [1, 8], repeats, Path(tmp)):
                eager, ort = row["eager"], row["onnxruntime"]
                lines.append(f"| {label} (`{name}`) | {row['batch']}x3x{size}x{size} | {eager[0]:.0f} ± {eager[1]:.0f} "
                             f"| {ort[0]:.0f} ± {ort[1]:.0f} | {eager[0] / ort[0]:.2f}x | {row['diff']:.1e} |")
    lines += ["", f"Repeats: {args.repeats} at batch 1, {args.repeats_batch} at batch 8 (median ± IQR). "
              f"Whole run: {time.time() - start:.0f} s. 1-minute load average at start / end: {load_start:.1f} / "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: above the core count, torch's OpenMP pool loses "
              "more to oversubscription than onnxruntime's, so a loaded machine overstates the speed-up."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("export", body)


if __name__ == "__main__":
    main()
