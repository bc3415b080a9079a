"""StyleGAN2 + ADA on a small set: a few hundred images of ``builtin:digits`` (section "stylegan2-ada" of RESULTS.md).

Usage (CPU; one run at a time)::

    python benchmarks/train_stylegan2_ada.py run       # ADA on --images digits; FID every --eval-every steps
    python benchmarks/train_stylegan2_ada.py extend --also-images 50   # add ADA on 50 images (p against set size)
    python benchmarks/train_stylegan2_ada.py report    # rewrite the section from the stored summary

The run trains ``stylegan2_tiny`` (grey, --size px, widened with --channels) through ``vgzoo.train.fit`` with
``-o augment=ada`` on the first ``--images`` training digits, and scores G_ema's samples every ``--eval-every`` steps
(FID and KID on the digits classifier's features against the held-out digits, ``-o eval_every``). The control is
the same network at its random initialisation (the run's seed), scored the same way. ADA's speed (``ada_kimg``) is
scaled to the run's length: the reference's 500 kimg per unit of p is for runs of 25 000 kimg. With
``--no-aug-control`` a second run without augmentation (``-o augment=none``) shows what ADA buys on the same images.

Writes runs/stylegan2_ada/<run>/ (the run directories), benchmarks/stylegan2_ada/summary.json, curves.png (FID, p
and r_t against thousands of images seen) and samples.png, then the RESULTS.md section.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "stylegan2_ada"
PUBLISHED = ROOT / "benchmarks" / "stylegan2_ada"
SECTION = "stylegan2-ada"


def _model_kwargs(args) -> dict:
    """stylegan2_tiny in grey at ``--size`` px with ``--channels`` channels at every resolution."""
    width = {"channel_base": args.channels * args.size, "channel_max": args.channels}
    return {"img_resolution": args.size, "img_channels": 1, "z_dim": args.latent, "w_dim": args.latent,
            "synthesis_kwargs": width, "D_kwargs": {**width, "epilogue_kwargs": {"mbstd_group_size": 4}},
            "r1_gamma": args.r1_gamma}


def _subset(args, images: int):
    """The first ``images`` training digits (unconditional: images only)."""
    from torch.utils.data import Subset

    from vgzoo.data import create_dataset

    full = create_dataset("builtin:digits", "generation", split="train", size=args.size)
    if images > len(full):
        raise SystemExit(f"{images} images: the digits' training split has {len(full)} images.")
    return Subset(full, range(images))


def _options(args, augment: str) -> dict:
    return {"augment": augment, "ada_kimg": args.ada_kimg, "ada_target": args.ada_target,
            "eval_every": args.eval_every, "eval_data": "builtin:digits", "eval_features": "digits",
            "save_every": args.eval_every, "keep_last": 1, **({"threads": args.threads} if args.threads else {})}


def _cli(args, augment: str, out: Path) -> str:
    """The `vgzoo train` command of a run (on a folder holding the same images)."""
    parts = ["vgzoo", "train", "stylegan2_tiny", "--data", "DIGITS_FOLDER", "--out", str(out.relative_to(ROOT)),
             "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--seed", str(args.seed)]
    for k, v in _model_kwargs(args).items():
        parts += ["-k", f"{k}={json.dumps(v, separators=(',', ':'))}"]
    for k, v in _options(args, augment).items():
        parts += ["-o", f"{k}={v}"]
    return shlex.join(parts)


def _control_fid(args) -> dict:
    """FID/KID of the untrained network (the run's seed gives the run's initial weights)."""
    import vgzoo
    from vgzoo.metrics.training import evaluate_generator, prepare_real_features

    torch.manual_seed(args.seed)
    model = vgzoo.create("stylegan2_tiny", **_model_kwargs(args))
    real = prepare_real_features("builtin:digits", "digits", split="val")
    return evaluate_generator(model, real, seed=args.seed)


def _train(args, augment: str, images: int) -> dict:
    from vgzoo.train import fit

    out = RUNS / (augment if images == args.images else f"{augment}-{images}")
    shutil.rmtree(out, ignore_errors=True)
    t, load = time.perf_counter(), os.getloadavg()[0]
    fit("stylegan2_tiny", _subset(args, images), out, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
        device="cpu", model_kwargs=_model_kwargs(args), options=_options(args, augment), progress=args.progress,
        log=print)
    wall = time.perf_counter() - t
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    val = [r for r in rows if r["split"] == "val" and "fid" in r]
    kimg = args.batch_size / 1000
    summary = {
        "augment": augment, "images": images, "wall_s": wall, "load": [load, os.getloadavg()[0]],
        "cli_equivalent": _cli(args, augment, out),
        "fid": [(r["step"] * kimg, r["fid"], r["kid"]) for r in val],
        "p": [(r["step"] * kimg, r.get("ada_p", 0.0)) for r in train],
        "rt": [(r["step"] * kimg, r["ada_rt"]) for r in train if "ada_rt" in r],
        "final_fid": val[-1]["fid"] if val else None, "best_fid": min((r["fid"] for r in val), default=None),
        "final_kid": val[-1]["kid"] if val else None, "final_p": train[-1].get("ada_p", 0.0) if train else None,
    }
    src, where = out / "samples" / "final.png", PUBLISHED if args.publish else RUNS
    if src.is_file():
        where.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, where / f"samples_{out.name}.png")
    return summary


def _curves(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    control = summary["control"]["fid"]
    for run in summary["runs"]:
        if run["fid"]:
            x, fid, _ = zip(*run["fid"], strict=True)
            axes[0].plot(x, fid, marker="o", label=_label(run, summary))
        if run["augment"] == "ada":
            axes[1].plot(*zip(*run["p"], strict=True), label=f"p, {_images(run, summary)} images")
            if run["rt"]:
                axes[2].plot(*zip(*run["rt"], strict=True), label=f"r_t, {_images(run, summary)} images", alpha=0.7)
    axes[0].axhline(control, color="grey", linestyle="--", label="random init (control)")
    axes[0].set(title="FID of G_ema against held-out digits", xlabel="kimg", ylabel="FID (digits features)")
    axes[1].set(title="ADA: augmentation probability p", xlabel="kimg", ylabel="p")
    axes[2].axhline(summary["settings"]["ada_target"], color="grey", linestyle="--", label="target")
    axes[2].set(title="ADA: r_t = E[sign(D(reals))]", xlabel="kimg", ylabel="r_t")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"stylegan2_tiny, {summary['settings']['images']} digits, batch {summary['settings']['batch_size']}, "
                 f"seed {summary['settings']['seed']}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _load(run: dict) -> str:
    """The 1-minute load average at a run's start and end: wall times are a speed figure only on an idle machine."""
    return " (load {:.1f} / {:.1f})".format(*run["load"]) if "load" in run else ""


def _images(run: dict, summary: dict) -> int:
    return run.get("images", summary["settings"]["images"])  # summaries written before --also-images lack it


def _label(run: dict, summary: dict) -> str:
    images = _images(run, summary)
    return f"augment={run['augment']}" + ("" if images == summary["settings"]["images"] else f", {images} images")


def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)  # the control's scoring; the runs take it as -o threads
    settings = {k: getattr(args, k) for k in ("images", "steps", "batch_size", "size", "channels", "latent",
                                              "r1_gamma", "ada_kimg", "ada_target", "eval_every", "seed",
                                              "threads", "also_images")}
    summary = {"settings": settings, "command": "python benchmarks/train_stylegan2_ada.py run " + " ".join(
        f"--{k.replace('_', '-')} {','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in settings.items()
        if v != []) + (" --no-aug-control" if args.no_aug_control
                                                                         else ""),
        "machine": machine(), "threads": torch.get_num_threads(), "control": _control_fid(args), "runs": []}
    plan = [("ada", args.images)] + ([("none", args.images)] if args.no_aug_control else [])
    plan += [("ada", n) for n in args.also_images]
    for augment, images in plan:
        summary["runs"].append(_train(args, augment, images))
        _save(summary, PUBLISHED if args.publish else RUNS)
    return summary


def extend(args) -> dict:
    """Add ADA runs on ``--also-images`` set sizes to the published summary, with its settings."""
    summary = json.loads((PUBLISHED / "summary.json").read_text())
    settings = summary["settings"]
    for k, v in settings.items():
        if k != "also_images":
            setattr(args, k, v)
    if args.threads:
        torch.set_num_threads(args.threads)
    for images in args.also_images:
        summary["runs"] = [r for r in summary["runs"] if (r["augment"], _images(r, summary)) != ("ada", images)]
        summary["runs"].append(_train(args, "ada", images))
    settings["also_images"] = sorted({*settings.get("also_images", []), *args.also_images})
    summary["command"] += " --also-images " + ",".join(map(str, settings["also_images"]))
    _save(summary, PUBLISHED)
    return summary


def _save(summary: dict, where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    (where / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _curves(summary, where / "curves.png")


def report(summary: dict | None = None, results: Path | None = None) -> str:
    """The RESULTS.md section of ``summary`` (default: the published one), written into ``results`` (RESULTS.md)."""
    summary = summary or json.loads((PUBLISHED / "summary.json").read_text())
    s = summary["settings"]
    lines = [f"## {SECTION}: StyleGAN2 + ADA on {s['images']} digits (`benchmarks/train_stylegan2_ada.py`)", "",
             f"`stylegan2_tiny` (grey, {s['size']} px, {s['channels']} channels, z = w = {s['latent']}, "
             f"R1 gamma {s['r1_gamma']}) trained on the first {s['images']} training digits for {s['steps']} steps of "
             f"batch {s['batch_size']} ({s['steps'] * s['batch_size'] / 1000:g} kimg), ADA target {s['ada_target']}, "
             f"ada_kimg {s['ada_kimg']} (the reference's 500 is for 25 000-kimg runs). FID and KID of G_ema's "
             "samples against the held-out digits on the digits classifier's features; the control is the same "
             "network at its random initialisation.", "",
             "| run | final p | mean p | highest p | FID (final) | FID (best) | KID (final) | wall time |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |",
             f"| random init (control) | - | - | - | {summary['control']['fid']:.2f} | - | "
             f"{summary['control']['kid']:.4f} | - |"]
    for r in summary["runs"]:
        top = max((p for _, p in r["p"]), default=0.0)
        mean = sum(p for _, p in r["p"]) / max(len(r["p"]), 1)
        lines.append(f"| {_label(r, summary)} | {r['final_p']:.3f} | {mean:.3f} | {top:.3f} | {r['final_fid']:.2f} | "
                     f"{r['best_fid']:.2f} | {r['final_kid']:.4f} | {r['wall_s'] / 60:.1f} min{_load(r)} |")
    lines += ["", f"Command: `{summary['command']}`", "",
              "The same run from the command line, on a folder holding those digits: "
              f"`{summary['runs'][0]['cli_equivalent']}`", "",
              f"Machine: {summary['machine']}.", "", *([summary["note"], ""] if summary.get("note") else []),
              "![FID, p and r_t](stylegan2_ada/curves.png)", "", "![samples](stylegan2_ada/samples_ada.png)"]
    body = "\n".join(lines)
    write_section(SECTION, body, results)
    return body


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("run", "extend", "report"),
                        help="extend: add the --also-images runs to the published summary (its settings)")
    parser.add_argument("--images", type=int, default=300, help="training digits (the small set)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--size", type=int, default=16, help="image side (the digits are 8x8, shown at 16)")
    parser.add_argument("--channels", type=int, default=64, help="channels at every resolution of G and D")
    parser.add_argument("--latent", type=int, default=64, help="z_dim = w_dim")
    parser.add_argument("--r1-gamma", type=float, default=0.01, help="R1 weight (the cifar config's; small images)")
    parser.add_argument("--ada-kimg", type=float, default=10.0, help="kimg for p to move by 1")
    parser.add_argument("--ada-target", type=float, default=0.6)
    parser.add_argument("--eval-every", type=int, default=250, help="steps between FID evaluations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: fit's default, the cores)")
    parser.add_argument("--no-aug-control", action="store_true", help="also train without augmentation")
    parser.add_argument("--also-images", type=lambda s: [int(n) for n in s.split(",") if n], default=[],
                        help="comma-separated set sizes to also train with ADA (p against the set's size)")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--no-publish", dest="publish", action="store_false",
                        help="a smoke test: keep everything under runs/stylegan2_ada/, leave RESULTS.md alone")
    args = parser.parse_args(argv)
    if args.what == "report":
        print(report())
    elif args.what == "extend":
        print(report(extend(args)))
    elif args.publish:
        print(report(run(args)))
    else:
        summary = run(args)
        print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=1))
        for r in summary["runs"]:
            print(r["augment"], "final p", r["final_p"], "final FID", r["final_fid"], f"{r['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
