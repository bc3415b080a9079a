"""Train the small digits classifier that scores conditional digit generators (``vgzoo.quality``).

Trains :class:`vgzoo.quality.DigitsClassifier` on ``DigitsDataset(split="train")`` (the stratified 80 % of
scikit-learn's 1,797 handwritten digits at 16x16, seed 0) with random +-1 pixel shifts, reports the accuracy
on the held-out ``"val"`` split, and writes the weights to ``vgzoo/weights/digits_classifier.safetensors``
(float32, ~150 KB) plus the ``digits-classifier`` section of ``benchmarks/RESULTS.md``. These are the
scores of the quality measure for the conditional GAN of Mirza & Osindero (2014).

Usage::

    python benchmarks/train_digits_classifier.py [--epochs 60] [--seed 0]

CPU only, about a minute on two cores. Refuses to write weights that stay below 97 % held-out accuracy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _results import machine, write_section  # noqa: E402

from vgzoo._hub import save_state_dict  # noqa: E402
from vgzoo.data.digits import DigitsDataset  # noqa: E402
from vgzoo.quality import DigitsClassifier  # noqa: E402

OUT = ROOT / "vgzoo" / "weights" / "digits_classifier.safetensors"
TARGET = 0.97


def random_shift(x: torch.Tensor, g: torch.Generator, max_shift: int = 1) -> torch.Tensor:
    """Shift each image by up to ``max_shift`` pixels in x and y (zero fill)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=g)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=g)
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


@torch.no_grad()
def accuracy(model: DigitsClassifier, ds: DigitsDataset) -> float:
    model.eval()
    return float((model(ds.images).argmax(1) == ds.labels).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    train, val = DigitsDataset(split="train"), DigitsDataset(split="val")
    model = DigitsClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = -(-len(train) // args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    start = time.perf_counter()
    bar = tqdm(range(args.epochs), desc="digits classifier", unit="epoch")
    for _ in bar:
        model.train()
        order = torch.randperm(len(train), generator=g)
        for idx in order.split(args.batch_size):
            x = random_shift(train.images[idx], g)
            loss = F.cross_entropy(model(x), train.labels[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    seconds = time.perf_counter() - start
    train_acc, val_acc = accuracy(model, train), accuracy(model, val)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"train accuracy {train_acc:.4f}  val accuracy {val_acc:.4f}  ({len(val)} held-out digits, "
          f"{n_params} parameters, {seconds:.0f} s)")
    if val_acc < TARGET:
        raise SystemExit(f"val accuracy {val_acc:.4f} is below the {TARGET} target; weights not written.")
    meta = {"val_accuracy": f"{val_acc:.4f}", "train_accuracy": f"{train_acc:.4f}", "epochs": str(args.epochs),
            "seed": str(args.seed), "data": "DigitsDataset(split='train', size=16, val_fraction=0.2, seed=0)"}
    save_state_dict(model.state_dict(), args.out, meta)
    print(f"wrote {args.out}")
    write_section("digits-classifier", f"""
## Digits classifier (quality measure for conditional digit GANs)

`python benchmarks/train_digits_classifier.py --epochs {args.epochs} --seed {args.seed}`

| split | images | accuracy |
|---|---|---|
| train (80 %, stratified, seed 0) | {len(train)} | {train_acc:.4f} |
| val (held out) | {len(val)} | {val_acc:.4f} |

`vgzoo.quality.DigitsClassifier`, {n_params:,} parameters, AdamW + one-cycle, +-1 px shifts, {args.epochs} epochs,
{seconds:.0f} s on a shared 2-core machine ({machine()}). Weights: `vgzoo/weights/digits_classifier.safetensors`.
""")


if __name__ == "__main__":
    main()
