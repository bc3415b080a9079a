"""ViT-B/16 throughput: vgzoo's vit_b16_scratch against timm's vit_base_patch16_224, side by side.

Run: python benchmarks/bench_vit.py [--repeats 7] [--batch 8] [--compile] [--device cuda]

Both models hold the same weights and run in one process with the same threads, on CPU, batch 8 at
224 px (``--device cuda``: on the GPU, batch 256 inference / 128 training by default, section "vit-cuda"). Timings
alternate between the contenders on every repeat (one warm-up call each first), so machine noise hits them alike;
medians, IQRs and ratios go to the "vit" section of RESULTS.md.

1. fp32 eager: inference images/s (``torch.inference_mode``) and one training step (forward,
   cross-entropy, backward, AdamW step). Same arithmetic as timm, so the target is parity.
2. vgzoo's fast modes against timm fp32 eager, with the deviation of their logits from the fp32 logits:
   bf16 autocast (fp32 weights cast per call, LayerNorm/softmax statistics in fp32), the whole model cast
   to bf16 (``model.to(torch.bfloat16)``, no per-call casts), and with ``--compile`` ``torch.compile``
   under bf16 autocast. Training is timed with bf16 autocast (fp32 master weights).
3. fp32 and bf16 matmul peaks measured in the same run (best of several sizes, raised to any row that beats
   them so no row reads above 100%); achieved FLOP/s of each mode against the peak of its own dtype
   (FLOPs counted analytically: 2 per multiply-add of every Linear, the patch conv and both attention
   matmuls; a training step counts as 3x the forward).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from _results import iqr, machine, median, precision_line, resolve_device, section, sync, write_section
from tqdm import tqdm

import vgzoo
from vgzoo.convert import from_timm_vit

warnings.filterwarnings("ignore", category=UserWarning)


PAIRS = {"base": ("vit_base_patch16_224", "vit_b16_scratch"), "tiny": ("vit_tiny_patch16_224", "vit_ti16_scratch")}


DEVICE = "cpu"


def timed(fn: Callable[[], object]) -> float:
    sync(DEVICE)
    start = time.perf_counter()
    fn()
    sync(DEVICE)
    return time.perf_counter() - start


def alternate(contenders: dict[str, Callable[[], object]], repeats: int, desc: str) -> dict[str, list[float]]:
    """One warm-up call each, then ``repeats`` rounds calling every contender in turn (order reversed every round)."""
    for fn in contenders.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders)
    for i in tqdm(range(repeats), desc=desc, leave=False):
        for name in order if i % 2 == 0 else order[::-1]:  # ABBA: neither contender always runs first
            times[name].append(timed(contenders[name]))
    return times


def vit_forward_flops(img_size: int = 224, patch: int = 16, dim: int = 768, depth: int = 12, classes: int = 1000,
                      chans: int = 3) -> float:
    """FLOPs (2 per multiply-add) of one ViT forward pass on one image."""
    s = (img_size // patch) ** 2
    t = s + 1
    macs = s * dim * chans * patch * patch  # patch conv
    macs += depth * (t * 12 * dim * dim + 2 * t * t * dim)  # qkv + proj + MLP(4x), QK^T and AV
    macs += dim * classes  # head on the class token
    return 2.0 * macs


def matmul_peak(dtype: torch.dtype) -> float:
    """Best FLOP/s of a square matmul in ``dtype`` over several sizes and repeats (a peak is a maximum)."""
    from vgzoo.bench.flops import measure_matmul_peak

    return measure_matmul_peak(DEVICE, dtype, repeats=7)


def make_train_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, autocast: bool = False):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def make_infer(model: torch.nn.Module, x: torch.Tensor, autocast: bool = False):
    def infer() -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
            return model(x)

    return infer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=None, help="inference batch (default 8 on CPU, 256 on CUDA)")
    parser.add_argument("--train-batch", type=int, default=None, help="training batch (default: --batch on CPU, "
                        "128 on CUDA)")
    parser.add_argument("--device", default="auto", help="cpu, cuda[:N] or auto (CUDA when visible)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--infer-repeats", type=int, default=11, help="repeats of the (cheaper) inference comparisons")
    parser.add_argument("--bf16-train", action="store_true",
                        help="also time a bf16-autocast training step against timm fp32 (adds ~3 minutes)")
    parser.add_argument("--fast-train-repeats", type=int, default=5, help="repeats of the --bf16-train comparison")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile under bf16 autocast")
    parser.add_argument("--no-write", action="store_true", help="print only, do not update RESULTS.md")
    parser.add_argument("--pair", choices=sorted(PAIRS), default="base",
                        help="which ViT to compare (the section is written for 'base' only)")
    args = parser.parse_args()
    import timm

    global DEVICE
    DEVICE = resolve_device(args.device)
    dev = torch.device(DEVICE)
    on_gpu = dev.type == "cuda"
    args.batch = args.batch or (256 if on_gpu else 8)
    train_batch = args.train_batch or (128 if on_gpu else args.batch)
    started = time.perf_counter()
    torch.manual_seed(0)
    timm_name, ours_name = PAIRS[args.pair]
    ref = timm.create_model(timm_name, pretrained=False).eval()
    ours = vgzoo.create(ours_name).eval()
    ours.load_state_dict(from_timm_vit(ref.state_dict()))
    ref, ours = ref.to(dev), ours.to(dev)
    x = torch.randn(args.batch, 3, 224, 224, generator=torch.Generator().manual_seed(1)).to(dev)
    y = torch.randint(0, 1000, (args.batch,), generator=torch.Generator().manual_seed(2)).to(dev)
    xt, yt = x[:train_batch], y[:train_batch]
    if train_batch > args.batch:
        raise SystemExit(f"--train-batch {train_batch} is larger than --batch {args.batch}; lower it")
    flops_fwd = vit_forward_flops(dim=ours.embed_dim, depth=len(ours.blocks)) * args.batch
    bar = tqdm(total=4 + args.compile + args.bf16_train, desc="bench_vit")

    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    bar.update()

    # 1. fp32 eager inference and training, alternating.
    infer = alternate({"timm": make_infer(ref, x), "vgzoo": make_infer(ours, x)}, args.infer_repeats, "fp32 inference")
    bar.update()
    ref_train, ours_train = copy.deepcopy(ref).train(), copy.deepcopy(ours).train()
    train = alternate({"timm": make_train_step(ref_train, xt, yt), "vgzoo": make_train_step(ours_train, xt, yt)},
                      args.repeats, "fp32 train step")
    del ref_train, ours_train
    bar.update()

    # 2. fastest modes against timm fp32 eager.
    with torch.inference_mode():
        logits32 = ours(x).float()
    ours_bf16 = copy.deepcopy(ours).to(torch.bfloat16)
    fast_infer = {
        "timm fp32": make_infer(ref, x),
        "vgzoo bf16 autocast": make_infer(ours, x, autocast=True),
        "vgzoo bf16 weights": make_infer(ours_bf16, x.to(torch.bfloat16)),
    }
    compile_s = None
    if args.compile:
        compiled = torch.compile(ours)
        compile_s = timed(make_infer(compiled, x, autocast=True))
        fast_infer["vgzoo bf16 autocast + compile"] = make_infer(compiled, x, autocast=True)
        bar.update()
    fast = alternate(fast_infer, args.infer_repeats, "fastest inference")
    bar.update()
    deviation = {}
    for name, fn in fast_infer.items():
        if name.startswith("vgzoo"):
            out = fn().float()
            deviation[name] = (
                float((out - logits32).abs().max()),
                float((out.argmax(-1) == logits32.argmax(-1)).float().mean()),
            )
    fast_train = None
    if args.bf16_train:
        ref_train, ours_train = copy.deepcopy(ref).train(), copy.deepcopy(ours).train()
        fast_train = alternate(
            {"timm fp32": make_train_step(ref_train, xt, yt),
             "vgzoo bf16 autocast": make_train_step(ours_train, xt, yt, True)},
            args.fast_train_repeats, "bf16 train step")
        bar.update()
    bar.close()

    # ------------------------------------------------------------------ report
    b = args.batch
    per_image = flops_fwd / args.batch

    def batch_of(factor: float) -> int:
        return train_batch if factor == 3 else b

    def ips(ts: list[float], factor: float = 1.0) -> float:
        return batch_of(factor) / median(ts)

    def tflops(ts: list[float], factor: float = 1.0) -> float:
        return factor * per_image * batch_of(factor) / median(ts) / 1e12

    # a robust peak: no row may beat it (a row that does raises it, and the note says so)
    rows_for_peak = {"fp32": [(infer[k], 1) for k in infer] + [(train[k], 3) for k in train]
                     + [(fast["timm fp32"], 1)], "bf16": [(fast[k], 1) for k in fast if k.startswith("vgzoo")]}
    if fast_train is not None:
        rows_for_peak["fp32"].append((fast_train["timm fp32"], 3))
        rows_for_peak["bf16"].append((fast_train["vgzoo bf16 autocast"], 3))
    measured_peaks = dict(peaks)
    for key, rs in rows_for_peak.items():
        peaks[key] = max([peaks[key]] + [tflops(ts, f) * 1e12 for ts, f in rs])
    json_rows = []

    def row(label: str, ts: list[float], base: list[float], factor: float, peak: str) -> str:
        achieved = tflops(ts, factor)
        json_rows.append({"mode": label, "device": DEVICE, "dtype": "bfloat16" if peak == "bf16" else "float32",
                          "batch_size": batch_of(factor), "median_s": median(ts), "iqr_s": iqr(ts),
                          "samples_per_s": ips(ts, factor), "vs_timm_fp32": median(base) / median(ts),
                          "flops_per_s": achieved * 1e12, "pct_of_peak": 100 * achieved * 1e12 / peaks[peak]})
        return (f"| {label} | {ips(ts, factor):.2f} | {median(ts) * 1e3:.0f} ± {iqr(ts) * 1e3:.0f} "
                f"| {median(base) / median(ts):.3f}x "
                f"| {achieved * 1e3:.0f} | {100 * achieved * 1e12 / peaks[peak]:.0f}% of {peak} |")

    lines = [
        f"## vit: {ours_name} vs timm {timm_name}",
        "",
        f"`{' '.join(['python', 'benchmarks/bench_vit.py', *sys.argv[1:]])}` on {machine(DEVICE)}.",
        f"Precision: {precision_line(DEVICE)}.",
        "Shared 2-core machine with other jobs running: absolute numbers are noisy; the ratios come from "
        "alternating the contenders on every repeat (order reversed every round, one warm-up each, medians ± IQR)."
        if not on_gpu else "Ratios come from alternating the contenders on every repeat (medians ± IQR).",
        "",
        f"In-run matmul peaks (best of several sizes): fp32 {measured_peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 "
        f"{measured_peaks['bf16'] / 1e9:.0f} GFLOP/s "
        f"(bf16/fp32 = {measured_peaks['bf16'] / measured_peaks['fp32']:.2f}x"
        f"; used: fp32 {peaks['fp32'] / 1e9:.0f}, bf16 {peaks['bf16'] / 1e9:.0f}, raised to any faster row). "
        f"{ours_name} forward = {per_image / 1e9:.1f} GFLOP per image; a training step is counted as 3x the forward.",
        "",
        f"| mode (batch {b}, train batch {train_batch}, 224 px) | img/s | ms per batch | vs timm fp32 | GFLOP/s "
        "| of peak |",
        "| --- | --- | --- | --- | --- | --- |",
        row("inference, timm fp32 eager", infer["timm"], infer["timm"], 1, "fp32"),
        row("inference, vgzoo fp32 eager", infer["vgzoo"], infer["timm"], 1, "fp32"),
        row("train step, timm fp32 eager", train["timm"], train["timm"], 3, "fp32"),
        row("train step, vgzoo fp32 eager", train["vgzoo"], train["timm"], 3, "fp32"),
        row("inference, timm fp32 eager (fast-mode run)", fast["timm fp32"], fast["timm fp32"], 1, "fp32"),
    ]
    for name in fast_infer:
        if name.startswith("vgzoo"):
            lines.append(row(f"inference, {name}", fast[name], fast["timm fp32"], 1, "bf16"))
    if fast_train is not None:
        lines += [
            row("train step, timm fp32 eager (bf16-train run)", fast_train["timm fp32"], fast_train["timm fp32"], 3,
                "fp32"),
            row("train step, vgzoo bf16 autocast", fast_train["vgzoo bf16 autocast"], fast_train["timm fp32"], 3,
                "bf16"),
        ]
    lines += [
        "",
        f"Repeats: inference rows {args.infer_repeats}, fp32 train rows {args.repeats}"
        + (f", bf16 train rows {args.fast_train_repeats}" if fast_train is not None else "")
        + ". Logits of the fast modes against vgzoo fp32 eager (same weights, random init, same batch):",
        "",
    ]
    for name, (dev, agree) in deviation.items():
        lines.append(f"- {name}: max |Δlogit| = {dev:.3g}, top-1 agreement {100 * agree:.0f}%")
    if compile_s is not None:
        lines.append(f"- torch.compile's first call (compilation) took {compile_s:.0f} s.")
    ratio_inf = median(infer["timm"]) / median(infer["vgzoo"])
    ratio_train = median(train["timm"]) / median(train["vgzoo"])
    best = max((n for n in fast_infer if n.startswith("vgzoo")), key=lambda n: -median(fast[n]))
    ratio_fast = median(fast["timm fp32"]) / median(fast[best])
    lines += [
        "",
        f"Summary: fp32 eager parity {ratio_inf:.3f}x (inference) and {ratio_train:.3f}x (train step), "
        "target >= 0.97x; "
        f"fastest mode ({best}) {ratio_fast:.2f}x timm fp32 eager inference, target >= 1.8x.",
    ]
    lines.append(f"Whole run: {time.perf_counter() - started:.0f} s.")
    body = "\n".join(lines)
    print(body)
    if args.json:
        import json

        with open(args.json, "w") as fh:
            json.dump({"device": DEVICE, "machine": machine(DEVICE), "precision": precision_line(DEVICE),
                       "peaks_flops": peaks, "measured_peaks_flops": measured_peaks, "rows": json_rows}, fh, indent=2)
    if not args.no_write and args.pair == "base":
        print(f"wrote {write_section(section('vit', DEVICE), body)}")


if __name__ == "__main__":
    main()
