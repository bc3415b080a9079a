"""BigGAN against the cGAN on the built-in digits, for the same wall-time budget (CPU).

Run: python benchmarks/train_biggan_digits.py [--minutes 10] [--out runs/biggan-vs-cgan] [--threads N] [--no-write]
     python benchmarks/train_biggan_digits.py --minutes 0.3 --no-write        (a smoke test, about a minute)

Trains ``biggan`` (BigGAN-deep generator and BigGAN discriminator, 32 px, BigGAN's recipe with ``-o ema=true``)
and ``cgan_embed_digits`` (vgzoo's teaching cGAN, 16 px, its default recipe) on ``builtin:digits``, one after the
other, each until ``--minutes`` of training wall time have passed (a callback ends the run after the step that
crosses the budget). The checkpoints at epoch ends are part of the recipes and count (BigGAN's with its standing
statistics); the end-of-run checkpoint, final folders and scoring come after the last step and do not. Then scores
both with ``vgzoo eval generate`` (``eval_generate``, digits features, the val split): FID/KID, mean per-class FID,
and the class-conditional accuracy of the digits classifier; and the within-class
diversity of 16 samples per class against that of the real images (``pairwise_diversity``, the trainer's
mode-collapse measure). BigGAN is scored from ``final_ema/`` (its EMA weights with standing statistics), the cGAN
from ``final/``. The table goes to the "biggan-digits" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from _results import machine, write_section

import vgzoo
from vgzoo.metrics.evaluate import eval_generate
from vgzoo.train import fit
from vgzoo.train.callbacks import Callback
from vgzoo.train.recipes import pairwise_diversity

CONTENDERS = {
    "biggan": {"options": {"ema": True}, "folder": "final_ema"},
    "cgan_embed_digits": {"options": {}, "folder": "final"},
}


class TimeBudget(Callback):
    """Ends the run after the step that passes ``seconds`` of training (counted from the first step)."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.start, self.steps, self.elapsed = seconds, 0.0, 0, 0.0

    def on_start(self, run, st):
        self.start = time.perf_counter()

    def on_step(self, run, st):
        self.steps, self.elapsed = st.step, time.perf_counter() - self.start  # up to the end of the last step
        if self.elapsed >= self.seconds:
            st.total = st.step  # the loop ends after this step; the end-of-run saves follow


@torch.no_grad()
def within_class_diversity(model, per_class: int = 16) -> float:
    """Mean pairwise distance of ``per_class`` samples of each class, averaged over the classes (images in [0, 1])."""
    model.eval()
    k = int(model.num_classes)
    labels = torch.arange(k).repeat_interleave(per_class)
    images = (model.sample(labels, generator=torch.Generator().manual_seed(4321)) + 1) / 2
    images = images.view(k, per_class, *images.shape[1:])
    return sum(pairwise_diversity(x) for x in images) / k


def real_within_class_diversity(size: int, per_class: int = 16) -> float:
    from vgzoo.data import create_dataset

    ds = create_dataset("builtin:digits", "conditional_generation", split="val")
    images = torch.stack([ds[i]["image"] for i in range(len(ds))])
    labels = torch.tensor([int(ds[i]["label"]) for i in range(len(ds))])
    images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    per = [pairwise_diversity(images[labels == c][:per_class]) for c in labels.unique().tolist()]
    return sum(per) / len(per)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall time per model")
    parser.add_argument("--out", type=Path, default=Path("runs/biggan-vs-cgan"))
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--no-write", action="store_true", help="print only, do not update RESULTS.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    rows = []
    for name, how in CONTENDERS.items():
        budget = TimeBudget(args.minutes * 60)
        result = fit(name, "builtin:digits", args.out / name, steps=10**7, device="cpu", progress=False,
                     overwrite=True, options=how["options"], callbacks=[budget], log=lambda message: None)
        folder = result.run_dir / how["folder"]
        scores = eval_generate(f"local-dir:{folder}", real="builtin:digits", split="val",
                               features="digits", progress=False)
        model = vgzoo.create(f"local-dir:{folder}")
        size = int(model.pretrained_cfg["input_size"][-1])
        rows.append({"name": name, "steps": budget.steps, "seconds": budget.elapsed, "fid": scores["fid"],
                     "kid": scores["kid_mean"], "class_fid": scores["class_fid_mean"],
                     "accuracy": scores.get("accuracy"), "diversity": within_class_diversity(model),
                     "real_diversity": real_within_class_diversity(size), "size": size, "folder": folder})
    lines = [
        "## biggan-digits: BigGAN vs the cGAN on builtin:digits, same wall time (CPU)",
        "",
        f"`python benchmarks/train_biggan_digits.py --minutes {args.minutes:g}` on {machine()}, "
        f"{torch.get_num_threads()} intra-op threads. Each model trains for {args.minutes:g} min of wall time with "
        "its default recipe (BigGAN with `-o ema=true`, scored from final_ema/); scores from `vgzoo eval generate` "
        "(digits features, val split) and the within-class diversity of 16 samples per class (real images at the "
        "model's size for reference).",
        "",
        "| model | image | steps | train s | FID | KID | mean per-class FID | accuracy | diversity (real) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        acc = f"{r['accuracy']:.3f}" if r["accuracy"] is not None else "-"
        lines.append(f"| `{r['name']}` | {r['size']} px | {r['steps']} | {r['seconds']:.0f} | {r['fid']:.2f} | "
                     f"{r['kid']:.4f} | {r['class_fid']:.2f} | {acc} | {r['diversity']:.3f} "
                     f"({r['real_diversity']:.3f}) |")
    lines += ["", f"1-minute load average at start / end: {load_start:.1f} / {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores. Runs in {args.out}."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("biggan-digits", body)


if __name__ == "__main__":
    main()
