"""Augmentation throughput: batched Kornia vs per-sample torchvision, and augmentation vs training step.

Run: python benchmarks/bench_augment.py [--repeats 7] [--device cpu|cuda] [--workers N]

Part 1. The vgzoo classification pipeline (Kornia, batched: RandomResizedCrop 224, flip, ColorJitter 0.4
with torchvision's formulas, normalise, RandomErasing 0.25) against a torchvision.transforms.v2 pipeline
doing the same operations one sample at a time in DataLoader workers on the CPU (``--workers``; 0 = in the main
process), the batch then copied to the device from pinned memory: the usual torchvision input pipeline. Batch 64
of 256 px float images; Kornia gets the same images already on the device. On CPU the pipeline runs its per-image
stages in sub-batches (its default); the same pipeline with the whole batch in one Kornia call is timed alongside.

Part 2. Each family's augmentation (``create_transform(model)``) against its model's training step at the
same batch size (forward, backward, optimizer step; GANs: generator then discriminator step): augmentation
should never be the bottleneck (target >= 10x the step's images/s). DiffAugment is timed on the
discriminator's input of the pix2pix step.

Timings alternate between the contenders on every repeat so machine noise hits them alike; medians and
ratios go to the "augment" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable

import torch
from _results import iqr, machine, median, precision_line, resolve_device, section, write_section
from tqdm import tqdm

import vgzoo
from vgzoo.augment import ClassificationTrainTransform, DiffAugment, create_transform
from vgzoo.augment.classification import CPU_CHUNK_IMAGES

warnings.filterwarnings("ignore", category=UserWarning)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _PerSample(torch.utils.data.Dataset):
    """CPU images through a per-sample transform, as a torchvision input pipeline feeds a DataLoader.

    ``length`` items cycle through ``images``: the loader must hold several batches per worker, or all but one
    worker sit idle and the baseline measures one process.
    """

    def __init__(self, images: torch.Tensor, transform, length: int) -> None:
        self.images, self.transform, self.length = images, transform, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(self.images[i % len(self.images)])


def timed(fn: Callable[[], object], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def alternate(contenders: dict[str, Callable[[], object]], repeats: int, device: torch.device,
              desc: str) -> dict[str, list[float]]:
    """One warm-up call each, then ``repeats`` rounds calling every contender in turn."""
    for fn in contenders.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in tqdm(range(repeats), desc=desc, leave=False):
        for name, fn in contenders.items():
            times[name].append(timed(fn, device))
    return times


# ---------------------------------------------------------------- part 1


def kornia_vs_torchvision(repeats: int, device: torch.device, workers: int = 0, batch: int = 64, size: int = 224,
                          src: int = 256) -> tuple[list[str], dict]:
    from torchvision.transforms import v2

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    x_cpu = torch.rand(batch, 3, src, src)
    x = x_cpu.to(device)
    kornia_t = ClassificationTrainTransform(input_size=(3, size, size), mean=mean, std=std, interpolation="bilinear",
                                           color_jitter=0.4, re_prob=0.25)
    tv_t = v2.Compose([
        v2.RandomResizedCrop(size, scale=(0.08, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.ColorJitter(0.4, 0.4, 0.4),
        v2.Normalize(mean, std),
        v2.RandomErasing(0.25),
    ])
    whole_t = ClassificationTrainTransform(input_size=(3, size, size), mean=mean, std=std, interpolation="bilinear",
                                           color_jitter=0.4, re_prob=0.25, chunk_size=batch)
    contenders = {"vgzoo (Kornia, batched)": lambda: kornia_t(x)}
    if device.type == "cpu":
        contenders[f"vgzoo, one Kornia call for all {batch}"] = lambda: whole_t(x)
    n_batches = 2 * max(1, workers)  # two batches per worker and timed call: every worker busy, as in training
    loader = torch.utils.data.DataLoader(_PerSample(x_cpu, tv_t, n_batches * batch), batch_size=batch,
                                         num_workers=workers, pin_memory=device.type == "cuda",
                                         persistent_workers=workers > 0)

    def torchvision_loader():
        for images in loader:
            images.to(device, non_blocking=True)

    tv_name = f"torchvision v2 (per sample, DataLoader on CPU, {workers} workers)"
    times = alternate({**contenders, tv_name: torchvision_loader}, repeats, device, "kornia vs torchvision")
    times[tv_name] = [t / n_batches for t in times[tv_name]]  # seconds per batch, as for the others
    rows = ["| pipeline | median s / batch | IQR (s) | images/s |", "| --- | --- | --- | --- |"]
    ips = {}
    for name, ts in times.items():
        ips[name] = batch / median(ts)
        rows.append(f"| {name} | {median(ts):.3f} | {iqr(ts):.3f} | {ips[name]:.0f} |")
        print(f"{name:32s} {median(ts):.3f} s/batch  {ips[name]:.0f} img/s")
    ratio = ips["vgzoo (Kornia, batched)"] / ips[tv_name]
    rows.append(
        f"\nKornia batched / torchvision per-sample: **{ratio:.2f}x** (batch {batch}, {src} px in, {size} px out)."
    )
    print(f"ratio {ratio:.2f}x")
    return rows, {"ratio": ratio, "images_per_s": ips, "workers": workers, "batch": batch}


# ---------------------------------------------------------------- part 2


def classification_step(name: str, batch: int, device: torch.device):
    model = vgzoo.create(name).to(device).train()
    c, h, w = model.pretrained_cfg["input_size"]
    t = create_transform(model, mixup=True, cutmix=True, label_smoothing=0.1)
    x = torch.rand(batch, c, h + 32, w + 32, device=device)  # datasets resize deterministically, a bit larger
    y = torch.randint(0, model.pretrained_cfg["num_classes"], (batch,), device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    xa, ya = t(x, y)

    def step():
        loss = torch.nn.functional.cross_entropy(model(xa), ya)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return (lambda: t(x, y)), step


def gan_step(name: str, batch: int, device: torch.device, **kwargs):
    model = vgzoo.create(name, **kwargs).to(device).train()
    cfg = model.pretrained_cfg
    t = create_transform(model)
    example = model.example_batch(batch)
    opt_g = torch.optim.Adam(model.generator_parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(model.discriminator_parameters(), lr=2e-4, betas=(0.5, 0.999))
    if cfg["task"] in ("paired_translation", "unpaired_translation"):
        load = cfg["load_size"]
        raw = {k: torch.rand(v.shape[0], v.shape[1], load, load, device=device) for k, v in example.items()}
        augment = lambda: t(raw["A"], raw["B"])  # noqa: E731
        a, b = augment()
        ready = {"A": a, "B": b}
    else:
        raw = {k: v.to(device) for k, v in example.items()}
        image = (raw["image"].clamp(-1, 1) + 1) / 2
        rest = [v for k, v in raw.items() if k != "image"]
        augment = lambda: t(image, *rest)  # noqa: E731
        ready = raw

    def step():
        loss_g, _ = model.generator_loss(ready)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        loss_d, _ = model.discriminator_loss(ready)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

    return augment, step


def family_vs_step(repeats: int, device: torch.device) -> list[str]:
    gpu = device.type == "cuda"
    # On CPU the GAN steps are slow: smaller batches, and CycleGAN at 64 px (its augmentation scales alike).
    cyclegan_kwargs = {} if gpu else {"img_size": 64}
    cases = [
        ("classification", "vit_s16_scratch", 64 if gpu else 8,
         lambda b: classification_step("vit_s16_scratch", b, device)),
        ("paired_translation", "pix2pix_unet", 16 if gpu else 1, lambda b: gan_step("pix2pix_unet", b, device)),
        ("unpaired_translation", "cyclegan_resnet" + ("" if gpu else " (img_size=64)"), 4 if gpu else 1,
         lambda b: gan_step("cyclegan_resnet", b, device, **cyclegan_kwargs)),
        ("conditional_generation", "cgan_embed_digits", 64, lambda b: gan_step("cgan_embed_digits", b, device)),
    ]
    diffaugment = DiffAugment("color,translation,cutout")
    extra: list[str] = []
    rows = ["| task | model | batch | augmentation img/s | training step img/s | augmentation / step |",
            "| --- | --- | --- | --- | --- | --- |"]
    for task, name, batch, make in cases:
        try:
            augment, step = make(batch)
        except vgzoo.PluginError as exc:
            print(f"skip {name}: {exc}")
            rows.append(f"| {task} | {name} | {batch} | not available | | |")
            continue
        contenders = {"augment": augment, "step": step}
        if task == "paired_translation":  # DiffAugment on the discriminator's input (A and B stacked)
            d_input = torch.rand(batch, 6, 256, 256, device=device) * 2 - 1
            contenders["diffaugment"] = lambda: diffaugment(d_input)  # noqa: B023
        times = alternate(contenders, repeats, device, name)
        aug_ips, step_ips = batch / median(times["augment"]), batch / median(times["step"])
        if "diffaugment" in times:
            da_ips = batch / median(times["diffaugment"])
            extra.append(f"| DiffAugment (D input, 6 x 256 x 256) | `{name}` | {batch} | {da_ips:.0f} | "
                         f"{step_ips:.3g} | **{da_ips / step_ips:.0f}x** |")
            print(f"DiffAugment {da_ips:.0f} img/s vs {name} step {step_ips:.1f} img/s")
        verdict = "" if aug_ips >= 10 * step_ips else " (below 10x)"
        rows.append(f"| {task} | `{name}` | {batch} | {aug_ips:.0f} | {step_ips:.3g} | "
                    f"**{aug_ips / step_ips:.0f}x**{verdict} |")
        print(f"{name:24s} augment {aug_ips:.0f} img/s, step {step_ips:.1f} img/s, ratio {aug_ips / step_ips:.0f}x")

    return rows + extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="auto", help="cpu, cuda[:N] or auto (CUDA when visible)")
    parser.add_argument("--workers", type=int, default=None,
                        help="DataLoader workers of the torchvision baseline (default: 0 on CPU, one per core up "
                             "to 8 on CUDA)")
    parser.add_argument("--batch", type=int, default=64, help="part 1 batch")
    parser.add_argument("--part1-only", action="store_true", help="skip the per-family comparison")
    parser.add_argument("--no-write", action="store_true", help="print only, do not update RESULTS.md")
    parser.add_argument("--json", default=None, help="also write part 1's numbers to this JSON file")
    args = parser.parse_args()
    device = torch.device(resolve_device(args.device))
    workers = args.workers if args.workers is not None else (0 if device.type == "cpu" else min(8, os.cpu_count() or 1))
    torch.manual_seed(0)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    part1, summary = kornia_vs_torchvision(args.repeats, device, workers, args.batch)
    part2 = [] if args.part1_only else family_vs_step(args.repeats, device)
    elapsed = time.perf_counter() - start
    load = f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores"
    body = "\n".join([
        "## Augmentation throughput (`benchmarks/bench_augment.py`)",
        "",
        f"Command: `python benchmarks/bench_augment.py --repeats {args.repeats} --device {device.type} --workers "
        f"{workers}`; {args.repeats} alternating repeats after one warm-up each, medians; {elapsed:.0f} s in all. "
        f"Device: {device.type}. Machine: {machine(str(device))}. Precision: {precision_line(str(device))}. "
        + (f"The machine is shared by several engineers ({load}), so absolute numbers are noisy: read the ratios."
            if device.type == "cpu" else f"CPU: {machine()} ({load})."),
        "",
        "### Batched Kornia vs per-sample torchvision.transforms.v2 (same operations)",
        "",
        "RandomResizedCrop(224, scale 0.08-1, bilinear) + horizontal flip + colour jitter 0.4 (brightness, "
        "contrast, saturation; no hue; torchvision's formulas on both sides) + normalise + random erasing 0.25, "
        f"on 64 float images of 256 x 256. On CPU the Kornia pipeline runs in sub-batches of {CPU_CHUNK_IMAGES}: "
        "whole-batch temporaries (38.5 MB) exceed glibc's 32 MiB mmap threshold, so each is a fresh mapping "
        "that page-faults on first touch (the second row shows that cost).",
        "",
        *part1,
        "",
        "### Augmentation vs training step, per family",
        "",
        "`create_transform(model)` at the model's full default size (classification with MixUp/CutMix and label "
        "smoothing; translation from `load_size` to `crop_size`) against one training step of the same batch "
        "(AdamW/Adam; GANs: generator step then discriminator step).",
        "",
        *part2,
    ])
    if args.json:
        import json

        with open(args.json, "w") as fh:
            json.dump({"device": str(device), "machine": machine(str(device)), **summary}, fh, indent=2)
    if args.no_write:
        print(body)
    else:
        print(f"wrote {write_section(section('augment', str(device)), body)}")


if __name__ == "__main__":
    main()
