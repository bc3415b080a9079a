"""ViT-B/16 throughput: vgzoo's vit_b16_scratch against timm's vit_base_patch16_224, side by side.

Run: python benchmarks/bench_vit.py [--repeats 7] [--batch 8] [--compile]

Both models hold the same weights and run in one process with the same threads, on CPU, batch 8 at
224 px. Timings alternate between the contenders on every repeat (one warm-up call each first), so
machine noise hits them alike; medians, IQRs and ratios go to the "vit" section of RESULTS.md.

1. fp32 eager: inference images/s (``torch.inference_mode``) and one training step (forward,
   cross-entropy, backward, AdamW step). Same arithmetic as timm, so the target is parity.
2. vgzoo's fast modes against timm fp32 eager, with the deviation of their logits from the fp32 logits:
   bf16 autocast (fp32 weights cast per call, LayerNorm/softmax statistics in fp32), the whole model cast
   to bf16 (``model.to(torch.bfloat16)``, no per-call casts), and with ``--compile`` ``torch.compile``
   under bf16 autocast. Training is timed with bf16 autocast (fp32 master weights).
3. fp32 and bf16 2048^3 matmul peaks measured in the same run; achieved FLOP/s of each mode against them
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
from _results import iqr, machine, median, write_section
from tqdm import tqdm

import vgzoo
from vgzoo.convert import from_timm_vit

warnings.filterwarnings("ignore", category=UserWarning)


PAIRS = {"base": ("vit_base_patch16_224", "vit_b16_scratch"), "tiny": ("vit_tiny_patch16_224", "vit_ti16_scratch")}


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
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


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 7) -> float:
    """Median FLOP/s of an n^3 matmul in ``dtype``."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    times = [timed(lambda: a @ b) for _ in range(repeats)]
    return 2.0 * n**3 / median(times)


def make_train_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, autocast: bool = False):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def make_infer(model: torch.nn.Module, x: torch.Tensor, autocast: bool = False):
    def infer() -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            return model(x)

    return infer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=8)
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

    started = time.perf_counter()
    torch.manual_seed(0)
    timm_name, ours_name = PAIRS[args.pair]
    ref = timm.create_model(timm_name, pretrained=False).eval()
    ours = vgzoo.create(ours_name).eval()
    ours.load_state_dict(from_timm_vit(ref.state_dict()))
    x = torch.randn(args.batch, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 1000, (args.batch,), generator=torch.Generator().manual_seed(2))
    flops_fwd = vit_forward_flops(dim=ours.embed_dim, depth=len(ours.blocks)) * args.batch
    bar = tqdm(total=4 + args.compile + args.bf16_train, desc="bench_vit")

    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    bar.update()

    # 1. fp32 eager inference and training, alternating.
    infer = alternate({"timm": make_infer(ref, x), "vgzoo": make_infer(ours, x)}, args.infer_repeats, "fp32 inference")
    bar.update()
    ref_train, ours_train = copy.deepcopy(ref).train(), copy.deepcopy(ours).train()
    train = alternate({"timm": make_train_step(ref_train, x, y), "vgzoo": make_train_step(ours_train, x, y)},
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
            {"timm fp32": make_train_step(ref_train, x, y),
             "vgzoo bf16 autocast": make_train_step(ours_train, x, y, True)},
            args.fast_train_repeats, "bf16 train step")
        bar.update()
    bar.close()

    # ------------------------------------------------------------------ report
    b = args.batch

    def ips(ts: list[float]) -> float:
        return b / median(ts)

    def tflops(ts: list[float], factor: float = 1.0) -> float:
        return factor * flops_fwd / median(ts) / 1e12

    def row(label: str, ts: list[float], base: list[float], factor: float, peak: str) -> str:
        achieved = tflops(ts, factor)
        return (f"| {label} | {ips(ts):.2f} | {median(ts) * 1e3:.0f} ± {iqr(ts) * 1e3:.0f} | {median(base) / median(ts):.3f}x "
                f"| {achieved * 1e3:.0f} | {100 * achieved * 1e12 / peaks[peak]:.0f}% of {peak} |")

    lines = [
        f"## vit: {ours_name} vs timm {timm_name}",
        "",
        f"`{' '.join(['python', 'benchmarks/bench_vit.py', *sys.argv[1:]])}` on {machine()}.",
        "Shared 2-core machine with other jobs running: absolute numbers are noisy; the ratios come from "
        "alternating the contenders on every repeat (order reversed every round, one warm-up each, medians ± IQR).",
        "",
        f"In-run matmul peaks (2048^3): fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s "
        f"(bf16/fp32 = {peaks['bf16'] / peaks['fp32']:.2f}x). {ours_name} forward = {flops_fwd / args.batch / 1e9:.1f} GFLOP "
        "per image; a training step is counted as 3x the forward.",
        "",
        f"| mode (batch {b}, 224 px) | img/s | ms per batch | vs timm fp32 | GFLOP/s | of peak |",
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
        f"Summary: fp32 eager parity {ratio_inf:.3f}x (inference) and {ratio_train:.3f}x (train step), target >= 0.97x; "
        f"fastest mode ({best}) {ratio_fast:.2f}x timm fp32 eager inference, target >= 1.8x.",
    ]
    lines.append(f"Whole run: {time.perf_counter() - started:.0f} s.")
    body = "\n".join(lines)
    print(body)
    if not args.no_write and args.pair == "base":
        print(f"wrote {write_section('vit', body)}")


if __name__ == "__main__":
    main()
