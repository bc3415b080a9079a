"""Inference as a user runs it: `vgzoo translate` / `vgzoo generate` with their defaults against the reference's
eager fp32 path, same weights, files in and files out.

translate: a folder of 256 px PNGs through the full-size CycleGAN generator (``cyclegan_resnet``'s G_AB, 9 blocks,
ngf 64). *reference*: the loop of pytorch-CycleGAN-and-pix2pix's ``test.py`` (one image at a time: PIL decode,
to [-1, 1], the generator in fp32 eager under ``no_grad``, its ``tensor2im`` and a PIL PNG save). With
``--reference DIR`` (a checkout of junyanz/pytorch-CycleGAN-and-pix2pix) the generator is that checkout's
``ResnetGenerator`` holding vgzoo's weights (mapped key by key with ``vgzoo.convert.reference.generator_key_map``);
without it, vgzoo's generator of the same structure runs that loop (the converter matches the two to 1e-5, see
shared/reference). The images are 256 px, so the reference's resize to ``load_size`` 256 leaves them as they are
and is not run. *vgzoo default*: ``vgzoo.translate.translate`` with every default (``--device auto``,
``--precision auto`` with its first-batch guard, DataLoader workers decoding, a writer thread encoding).

generate: ``cgan_embed`` (32 px, 10 classes). *eager fp32*: the plain loop (``model.sample`` per class in fp32,
``to_uint8`` and a PIL PNG per sample); *vgzoo default*: ``vgzoo.generate.generate`` writing the grid and every
sample. ``--seeded NAME`` adds any :class:`vgzoo.protocols.SeededSampler` (the plugin GAN families: StyleGAN2,
BigGAN, ...): *eager fp32* is the reference scripts' loop (one seed at a time, ``latents_for_seeds`` then
``generate_images`` in fp32, ``img * 127.5 + 128`` to uint8, a PIL PNG); *vgzoo default* is
``vgzoo.generate.generate_seeds``. (A family with its own reference implementation has its own benchmark too, e.g.
benchmarks/bench_stylegan2.py.) A ``--seeded`` model runs with random weights of its architecture (nothing is
downloaded; the table says so): the arithmetic, and so the timing, is that of the published network, the images
are noise.

``--emulate-avx2`` runs every case again in a fresh process started with ``ATEN_CPU_CAPABILITY=avx2`` and
``ONEDNN_MAX_CPU_ISA=AVX2``: torch's and oneDNN's kernels kept to AVX2 on this CPU, which ``--precision auto``
reads as a CPU without bf16 units (``vgzoo.precision.isa_cap``). Those rows are labelled "AVX2 emulated on <CPU>":
an emulation of an AVX2-only CPU's instruction set on this one (its caches, clocks and memory stay), not a
measurement on one.

The table goes to the section ``inference-default-<CPU kind>`` of RESULTS.md (``_results.cpu_kind``: maker, line
and bf16 units), so each CPU kind keeps its own figures.

Each contender runs in a process of its own, built from the same seed (the same weights), as a user's run is:
neither inherits the other's state (glibc's malloc thresholds, which vgzoo sets for its runs, see ``vgzoo._heap``;
warm caches). Every contender runs once per repeat, alternating which goes first, after one warm-up each; the
table gives median seconds per image, IQR, and the ratio reference / vgzoo. What vgzoo ran (device, precision and
why, the guard's finding) is printed and written with the table, and outputs are compared (PSNR of vgzoo's PNGs
against the reference's).

Inputs and outputs go into a new folder in the system's temporary folder, or in ``--workdir DIR``. Where creating a
file is slow (on some disks, and in some folders of one disk, the kernel spends long finding a free inode, one file
at a time), both contenders pay that per file alike and the generate ratios narrow towards 1; the cgan_embed note
says what creating an empty file cost in the folder used.

    python benchmarks/bench_translate_default.py                        # 64 images, 5 repeats; RESULTS.md section
    python benchmarks/bench_translate_default.py --reference ~/pytorch-CycleGAN-and-pix2pix --seeded stylegan2_paper256
    python benchmarks/bench_translate_default.py --seeded stylegan2_paper256 --seeded biggan_deep --emulate-avx2 \
        --crossover --seed-batches                  # also where bf16 starts to pay, and seeds per forward pass
    python benchmarks/bench_translate_default.py --tiny --no-write      # a smoke test (tiny networks, not a timing)
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _results import cpu_kind, iqr, machine, median, write_section
from PIL import Image

import vgzoo
from vgzoo.convert.reference import generator_key_map
from vgzoo.data.images import to_uint8
from vgzoo.generate import CPU_BATCH_PIXELS, generate, generate_seeds, reference_uint8, seed_batch_size
from vgzoo.inference import describe_inference
from vgzoo.precision import CPU_BF16_MIN_FLOPS
from vgzoo.translate import translate

SECTION = "inference-default"  # one section per CPU kind: inference-default-<cpu_kind()>
#: What --emulate-avx2 starts torch with: torch's own kernels and oneDNN's kept to AVX2, as on an AVX2-only CPU
#: (both read at start-up, so the cases run in a fresh process).
AVX2_CAPS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
REFERENCE_REPO = "junyanz/pytorch-CycleGAN-and-pix2pix"


# ------------------------------------------------------------------------------------------ inputs
def write_inputs(folder: Path, count: int, size: int) -> list[Path]:
    """``count`` photo-like PNGs (smooth random colour fields with fine grain), so decode and encode cost what
    real photos cost rather than what noise or flat images cost."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        coarse = rng.random((3, size // 16, size // 16)).astype(np.float32)
        field = torch.nn.functional.interpolate(torch.from_numpy(coarse)[None], size=(size, size), mode="bicubic")[0]
        pixels = (field.numpy().transpose(1, 2, 0) * 200 + rng.normal(0, 8, (size, size, 3)) + 28).clip(0, 255)
        path = folder / f"img{i:04d}.png"
        Image.fromarray(pixels.astype(np.uint8)).save(path)
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------------------ the reference
def reference_generator(checkout: Path, vgzoo_generator: torch.nn.Module, n_blocks: int, ngf: int) -> torch.nn.Module:
    """The checkout's ``ResnetGenerator`` (instance norm as its ``--norm instance``) holding vgzoo's weights."""
    path = checkout / "models" / "networks.py"
    if not path.is_file():
        raise SystemExit(f"{checkout} is not a checkout of {REFERENCE_REPO} (no models/networks.py).")
    spec = importlib.util.spec_from_file_location("reference_networks", path)  # not models/__init__ (its options)
    networks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(networks)
    norm = functools.partial(torch.nn.InstanceNorm2d, affine=False, track_running_stats=False)
    ref = networks.ResnetGenerator(3, 3, ngf, norm_layer=norm, use_dropout=False, n_blocks=n_blocks)
    ours = vgzoo_generator.state_dict()
    mapped = {}
    for vg, rf in generator_key_map(vgzoo_generator):
        for key, value in ours.items():
            if key.startswith(vg + "."):
                mapped[rf + key[len(vg):]] = value
    ref.load_state_dict(mapped, strict=True)
    return ref.eval()


def reference_translate(generator: torch.nn.Module, files: list[Path], out: Path) -> None:
    """pytorch-CycleGAN-and-pix2pix's test loop: one image at a time, fp32 eager, tensor2im, PIL save."""
    out.mkdir(parents=True, exist_ok=True)
    for path in files:
        image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
        x = (torch.from_numpy(image.transpose(2, 0, 1)) - 0.5) / 0.5  # ToTensor + Normalize((0.5,)*3, (0.5,)*3)
        with torch.no_grad():
            y = generator(x[None])
        pixels = (np.transpose(y[0].cpu().float().numpy(), (1, 2, 0)) + 1) / 2.0 * 255.0  # tensor2im
        Image.fromarray(pixels.astype(np.uint8)).save(out / f"{path.stem}.png")


def plain_generate(model, classes: list[int], per_class: int, seed: int, out: Path) -> None:
    """The plain loop: ``model.sample`` per class in fp32 eager, a PNG per sample."""
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for c in classes:
            images = to_uint8(model.sample(torch.full((per_class,), c, dtype=torch.long), generator=g))
            for i, img in enumerate(images.permute(0, 2, 3, 1).numpy()):
                Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(out / f"class{c}_{i:03d}.png")


def plain_seeds(model, seeds: list[int], out: Path) -> None:
    """The reference scripts' loop: one seed at a time, fp32 eager, ``img * 127.5 + 128`` to uint8, a PNG."""
    out.mkdir(parents=True, exist_ok=True)
    psi = model.default_truncation
    labels = torch.zeros(1, dtype=torch.long) if model.class_count() else None
    with torch.no_grad():
        for seed in seeds:
            img = reference_uint8(model.generate_images(model.latents_for_seeds([seed], psi), labels, psi))[0]
            Image.fromarray(img.numpy()).save(out / f"seed{seed:04d}.png")


def fill_standing_statistics(model) -> str:
    """A random-weight model with per-truncation batch-norm statistics (BigGAN's ``standing_statistics``) holds
    placeholder ones (mean 0, variance 1), under which its activations overflow to NaN; fill the rows its default
    truncation reads from its own samples, as a trained model's were. Returns what was done, for the notes."""
    fill = getattr(model, "standing_statistics", None)
    n_stats = next((m.n_stats for m in model.modules() if isinstance(getattr(m, "n_stats", None), int)), None)
    if fill is None or n_stats is None:
        return ""
    position = model.default_truncation * (n_stats - 1)
    rows = sorted({math.floor(position), min(math.ceil(position), n_stats - 1)})
    fill(rows=rows, batches=2, batch_size=8)
    return f"; standing statistics for truncation {model.default_truncation:g} from 2 x 8 of its own samples"


# ------------------------------------------------------------------------------------------ timing
#: A case whose contenders have not yet run this long each gets more repeats (up to :data:`MAX_REPEATS`): a run of a
#: fraction of a second (cgan_embed's 320 small files) moves with the disk, and its median needs more of them.
MIN_SECONDS = 10.0
MAX_REPEATS = 40


def alternate(contenders: dict[str, Callable[[Path], dict[str, Any]]], workdir: Path, repeats: int,
              min_seconds: float = MIN_SECONDS) -> tuple[dict[str, list[float]], dict[str, Path], dict[str, Any]]:
    """Each contender writes into a fresh folder once per repeat, alternating who goes first; one warm-up each.

    A contender is a :class:`Contender` (a process of its own): it times its own run. At least ``repeats`` timed
    repeats, more while a contender's timed total is under ``min_seconds``. Returns the times, each contender's last
    output folder (kept for the comparison) and its last run's record."""
    times: dict[str, list[float]] = {k: [] for k in contenders}
    last: dict[str, Path] = {}
    records: dict[str, Any] = {}
    names = list(contenders)
    r = 0
    while r <= repeats or (r <= MAX_REPEATS and min(sum(t) for t in times.values()) < min_seconds):
        for name in names if r % 2 == 0 else names[::-1]:
            out = workdir / f"{name.replace(' ', '_')}-{r}"
            result = contenders[name](out)
            if r:
                times[name].append(result["seconds"])
            records[name] = result["record"]
            if name in last:
                shutil.rmtree(last[name])
            last[name] = out
        r += 1
    return times, last, records


# ------------------------------------------------------------------------------------------ one process a contender
#: What a contender process writes to stdout for the benchmark (other output of the libraries passes through).
WORKER_LINE = "@bench "


def build_contender(case: str, who: str, args: argparse.Namespace) -> tuple[Callable[[Path], Any], str]:
    """In this process, the run of ``who`` ("reference" or "vgzoo") for ``case`` ("translate", "cgan_embed" or a
    ``--seeded`` name): ``run(out_folder)`` returning what vgzoo ran (None for the reference), and a note. Each
    process seeds torch before building, so both contenders hold the same weights."""
    torch.manual_seed(0)
    if case == "translate":
        tiny = dict(ngf=8, ndf=8, n_blocks=1) if args.tiny else {}
        G = vgzoo.create("cyclegan_resnet", img_size=args.size, **tiny).eval().G_AB
        n_blocks, ngf = len(G.blocks), G.stem.conv.out_channels
        if who == "vgzoo":
            return lambda out: translate(G, args.inputs, out, progress=False).inference, f"{n_blocks} blocks, ngf {ngf}"
        files = sorted(args.inputs.glob("*.png"))
        if args.reference is None:
            return (lambda out: reference_translate(G, files, out),
                    "vgzoo's generator of the same structure (no --reference)")
        ref_G = reference_generator(args.reference, G, n_blocks, ngf)
        return lambda out: reference_translate(ref_G, files, out), f"{REFERENCE_REPO} checkout"
    if case == "cgan_embed":
        cgan = vgzoo.create("cgan_embed", **({"ngf": 8, "ndf": 8} if args.tiny else {})).eval()
        if who == "vgzoo":
            return (lambda out: generate(cgan, out=out / "grid.png", per_class=args.per_class, out_dir=out,
                                         seed=0).inference), ""
        return lambda out: plain_generate(cgan, list(range(cgan.num_classes)), args.per_class, 0, out), ""
    seeded = vgzoo.create(case).eval()
    standing = fill_standing_statistics(seeded)
    seeds = list(range(args.seeds))
    if who == "vgzoo":
        return lambda out: generate_seeds(seeded, seeds=seeds, out_dir=out).inference, standing
    return lambda out: plain_seeds(seeded, seeds, out), standing


def serve_contender(case: str, who: str, args: argparse.Namespace) -> None:
    """A contender's process: build, say ready, then run into each folder read from stdin and report the time."""
    run, note = build_contender(case, who, args)
    print(WORKER_LINE + json.dumps({"note": note}), flush=True)
    for line in sys.stdin:
        out = Path(line.strip())
        start = time.perf_counter()
        record = run(out)
        print(WORKER_LINE + json.dumps({"seconds": time.perf_counter() - start, "record": record}), flush=True)


class Contender:
    """A contender in a process of its own, as a user's run is: neither contender inherits the other's state (the
    allocator's thresholds, which vgzoo sets for its runs, warm caches, thread pools)."""

    def __init__(self, case: str, who: str, args: argparse.Namespace) -> None:
        argv = [f"--images={args.images}", f"--size={args.size}", f"--per-class={args.per_class}",
                f"--seeds={args.seeds}", f"--inputs={args.inputs}", "--worker", case, who]
        argv += ["--tiny"] * args.tiny + ([f"--reference={args.reference}"] if args.reference else [])
        argv += [f"--threads={args.threads}"] if args.threads else []
        self.what = f"{who} {case}"
        self.process = subprocess.Popen([sys.executable, __file__, *argv], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.note = self._answer()["note"]

    def _answer(self) -> dict[str, Any]:
        for line in self.process.stdout:
            if line.startswith(WORKER_LINE):
                return json.loads(line[len(WORKER_LINE):])
            print(line, end="")
        raise RuntimeError(f"the {self.what} process ended (exit status {self.process.wait()}); see its output above")

    def __call__(self, out: Path) -> dict[str, Any]:
        self.process.stdin.write(f"{out}\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def psnr_folders(a: Path, b: Path) -> float:
    """PSNR (dB, 8-bit peak) over every same-named PNG of two folders."""
    sq, n = 0.0, 0
    for path in sorted(a.glob("*.png")):
        x = np.asarray(Image.open(path), dtype=np.float64)
        y = np.asarray(Image.open(b / path.name), dtype=np.float64)
        sq += float(((x - y) ** 2).sum())
        n += x.size
    mse = sq / max(n, 1)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def row(label: str, times: dict[str, list[float]], per: int, base: str, fast: str, extra: str) -> str:
    b, f = median(times[base]) / per, median(times[fast]) / per
    digits = 2 if min(b, f) < 0.01 else 1  # ms: a row of small images keeps two decimals

    def ms(seconds: float) -> str:
        return f"{seconds * 1e3:.{digits}f}"

    return (f"| {label} | {ms(b)} (IQR {ms(iqr(times[base]) / per)}) | {ms(f)} (IQR {ms(iqr(times[fast]) / per)}) "
            f"| **{b / f:.2f}x** | {len(times[fast])} | {extra} |")


def file_create_us(folder: Path, count: int = 200, rounds: int = 3) -> float:
    """Median microseconds to create (and close) an empty file in a new sub-folder of ``folder``: the part of
    writing a PNG that both contenders pay alike, and that on some disks costs more than encoding it."""
    per_round = []
    for r in range(rounds):
        sub = folder / f"create-probe-{r}"
        sub.mkdir()
        start = time.perf_counter()
        for i in range(count):
            os.close(os.open(sub / f"{i}.png", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        per_round.append((time.perf_counter() - start) / count * 1e6)
        shutil.rmtree(sub)
    return median(per_round)


def run_cases(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Every case, timed: table rows and notes (what vgzoo ran)."""
    rows, notes = [], []
    timed = functools.partial(alternate, repeats=args.repeats, min_seconds=0.0 if args.tiny else MIN_SECONDS)
    with tempfile.TemporaryDirectory(prefix="vgzoo-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        write_inputs(work / "inputs", args.images, args.size)
        args.inputs = work / "inputs"
        for case in ["translate", "cgan_embed", *args.seeded]:
            contenders = {"reference" if case == "translate" else "eager fp32": Contender(case, "reference", args),
                          "vgzoo": Contender(case, "vgzoo", args)}
            base = next(iter(contenders))
            try:
                times, last, records = timed(contenders, work)
            finally:
                for contender in contenders.values():
                    contender.close()
            what = describe_inference(records["vgzoo"])
            if case == "translate":
                psnr = psnr_folders(last[base], last["vgzoo"])
                rows.append(row(f"translate `cyclegan_resnet` ({contenders['vgzoo'].note}), {args.images} x "
                                f"{args.size} px PNG", times, args.images, base, "vgzoo", f"{psnr:.1f} dB"))
                notes.append(f"translate: reference = {contenders[base].note}; vgzoo: {what}")
            elif case == "cgan_embed":
                rows.append(row(f"generate `cgan_embed`, 10 classes x {args.per_class} (PNG each; vgzoo also a grid)",
                                times, 10 * args.per_class, base, "vgzoo", "-"))
                notes.append(f"generate cgan_embed: vgzoo: {what}; creating an empty file in the benchmark's folder "
                             f"(under {work.parent}) took {file_create_us(work):.0f} us (each contender creates one "
                             "per sample)")
            else:
                psnr = psnr_folders(last[base], last["vgzoo"])
                rows.append(row(f"generate `{case}` (random weights) --seeds 0-{args.seeds - 1}", times, args.seeds,
                                base, "vgzoo", f"{psnr:.1f} dB"))
                notes.append(f"generate {case}: random weights of the architecture (no download; timing only, the "
                             f"images are noise{contenders[base].note}); vgzoo: {what}")
            print(rows[-1], "\n", notes[-1], flush=True)
    return rows, notes


def emulate_avx2(argv: list[str]) -> tuple[list[str], list[str]]:
    """The same cases in a fresh process whose torch starts with :data:`AVX2_CAPS`, rows relabelled."""
    cpu = machine().split(",")[0]
    argv = [a for a in argv if a not in ("--emulate-avx2", "--no-write")]
    label = f"AVX2 emulated on {cpu} ({', '.join(f'{k}={v}' for k, v in AVX2_CAPS.items())})"
    print(f"{label}: running the cases again in a fresh process", flush=True)
    with tempfile.TemporaryDirectory(prefix="vgzoo-avx2-") as tmp:
        out = Path(tmp) / "rows.json"
        subprocess.run([sys.executable, __file__, *argv, "--no-write", "--rows-json", str(out)],
                       env={**os.environ, **AVX2_CAPS}, check=True)
        found = json.loads(out.read_text())
    return ([r.replace("| ", f"| {label}: ", 1) for r in found["rows"]],
            [f"{label}: {n}" for n in found["notes"]])


def crossover(repeats: int = 50) -> list[str]:
    """Where bf16 autocast starts to pay on this CPU (what ``vgzoo.precision.CPU_BF16_MIN_FLOPS`` rests on): the
    ``cgan_embed`` generator alone at batch 1 to 32, fp32 eager against bf16 autocast, alternating."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    net = vgzoo.create("cgan_embed").eval()
    lines = ["| batch | GFLOP per call | fp32 ms (IQR) | bf16 autocast ms (IQR) | fp32 / bf16 |",
             "| --- | --- | --- | --- | --- |"]
    for batch in (1, 2, 4, 8, 16, 32):
        z, labels = net.sample_z(batch), torch.zeros(batch, dtype=torch.long)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net(z, labels)

        def fp32(z=z, labels=labels):
            with torch.no_grad():
                return net(z, labels)

        def bf16(z=z, labels=labels):
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                return net(z, labels).float()

        times = {"fp32": [], "bf16": []}
        for r in range(repeats + 2):
            for name, fn in ((("fp32", fp32), ("bf16", bf16)) if r % 2 else (("bf16", bf16), ("fp32", fp32))):
                start = time.perf_counter()
                fn()
                if r >= 2:  # two warm-up calls each (oneDNN's first-call primitive creation)
                    times[name].append(time.perf_counter() - start)
        a, b = median(times["fp32"]), median(times["bf16"])
        gflop = counter.get_total_flops() / 1e9
        lines.append(f"| {batch} | {gflop:.3f} | {a * 1e3:.2f} ({iqr(times['fp32']) * 1e3:.2f}) | {b * 1e3:.2f} "
                     f"({iqr(times['bf16']) * 1e3:.2f}) | {a / b:.2f}x |")
        print(lines[-1], flush=True)
    return lines


def seed_batches(names: list[str], repeats: int = 5) -> list[str]:
    """What ``vgzoo.generate.CPU_BATCH_PIXELS`` rests on: ms per image of each ``--seeded`` model's
    ``generate_images`` at batch 1 to 8, in fp32 and under bf16 autocast, batch sizes alternating."""
    lines = ["| model | image | precision | " + " | ".join(f"batch {b} ms/img" for b in (1, 2, 4, 8))
             + " | vgzoo's batch |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in names:
        torch.manual_seed(0)
        model = vgzoo.create(name).eval()
        fill_standing_statistics(model)
        psi, side = model.default_truncation, model.pretrained_cfg["input_size"][-1]
        for precision in ("fp32", "bf16"):
            calls = {}
            for batch in (1, 2, 4, 8):
                z = model.latents_for_seeds(list(range(batch)), psi)
                labels = torch.zeros(batch, dtype=torch.long) if model.class_count() else None

                def call(z=z, labels=labels, precision=precision, model=model, psi=psi):
                    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
                        model.generate_images(z, labels, psi)

                calls[batch] = call
            times = {b: [] for b in calls}
            for r in range(repeats + 1):
                for b in (list(calls) if r % 2 == 0 else list(calls)[::-1]):
                    start = time.perf_counter()
                    calls[b]()
                    if r:  # one warm-up each
                        times[b].append((time.perf_counter() - start) / b)
            lines.append(f"| `{name}` | {side} px | {precision} | " + " | ".join(
                f"{median(times[b]) * 1e3:.1f} (IQR {iqr(times[b]) * 1e3:.1f})" for b in calls)
                + f" | {seed_batch_size(model, torch.device('cpu'))} |")
            print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64,
                        help="images in the translated folder (the guard's one fp32 pass of the first batch is part of "
                             "the measured default, as in a user's run)")
    parser.add_argument("--size", type=int, default=256, help="image side in px")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference", type=Path, default=None, help=f"a checkout of {REFERENCE_REPO}")
    parser.add_argument("--per-class", type=int, default=32, help="cgan_embed samples per class (10 classes)")
    parser.add_argument("--seeded", action="append", default=[], metavar="NAME",
                        help="a SeededSampler model (a plugin family) to time too; repeatable")
    parser.add_argument("--seeds", type=int, default=32,
                        help="seeds per --seeded model (batched as vgzoo.generate.seed_batch_size picks; under 3 "
                             "forward calls auto stays fp32)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the inputs and every contender's outputs go (a new folder inside it; default: the "
                             "system's temporary folder). Where creating a file is slow, both contenders pay it per "
                             "file: the cgan_embed note gives what it costs there")
    parser.add_argument("--tiny", action="store_true", help="tiny networks and inputs: a smoke test, not a timing")
    parser.add_argument("--emulate-avx2", action="store_true",
                        help="also run every case again in a subprocess started with " + " ".join(
                            f"{k}={v}" for k, v in AVX2_CAPS.items()) + " (torch and oneDNN kept to AVX2 kernels, "
                        "as on an AVX2-only CPU), rows labelled 'AVX2 emulated on <this CPU>': an emulation, not an "
                        "AVX2 machine")
    parser.add_argument("--crossover", action="store_true",
                        help="also time the cgan_embed generator alone at batch 1-32, fp32 against bf16 autocast: "
                             "where bf16 starts to pay (vgzoo.precision.CPU_BF16_MIN_FLOPS)")
    parser.add_argument("--seed-batches", action="store_true",
                        help="also time each --seeded model's generate_images at batch 1-8, fp32 and bf16: the "
                             "batch size vgzoo picks on a CPU (vgzoo.generate.CPU_BATCH_PIXELS)")
    parser.add_argument("--no-write", action="store_true", help="print only, do not update RESULTS.md")
    parser.add_argument("--rows-json", type=Path, default=None, help=argparse.SUPPRESS)  # the emulation's child
    parser.add_argument("--worker", nargs=2, default=None, help=argparse.SUPPRESS)  # a contender's process
    parser.add_argument("--inputs", type=Path, default=None, help=argparse.SUPPRESS)  # its translate inputs
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tiny:
        args.images, args.size, args.repeats, args.per_class, args.seeds = 3, 32, 1, 2, 2
    if args.worker is not None:
        serve_contender(*args.worker, args)
        return
    load_before, started = os.getloadavg(), time.perf_counter()
    rows, notes = run_cases(args)
    if args.rows_json is not None:
        args.rows_json.write_text(json.dumps({"rows": rows, "notes": notes}))
        return
    if args.emulate_avx2:
        emulated_rows, emulated_notes = emulate_avx2(sys.argv[1:])
        rows, notes = rows + emulated_rows, notes + emulated_notes
    crossover_lines = []
    if args.crossover:
        crossover_lines = ["", f"Where bf16 autocast pays (`--crossover`): the `cgan_embed` generator alone, median of "
                           f"50 alternating calls after 2 warm-ups each; `auto` picks bf16 on a CPU from "
                           f"{CPU_BF16_MIN_FLOPS / 1e9:g} GFLOP per call (`vgzoo.precision.CPU_BF16_MIN_FLOPS`).",
                           "", *crossover()]
    if args.seed_batches:
        crossover_lines += ["", f"Seeds per forward pass (`--seed-batches`): each `--seeded` model's `generate_images`"
                            f" alone, median ms per image of {args.repeats} alternating calls after one warm-up; on a "
                            f"CPU vgzoo batches at most {CPU_BATCH_PIXELS} output pixels "
                            "(`vgzoo.generate.CPU_BATCH_PIXELS`), the last column.", "",
                            *seed_batches(args.seeded, args.repeats)]
    elapsed, load_after = time.perf_counter() - started, os.getloadavg()
    command = "python benchmarks/bench_translate_default.py" + "".join(
        f" {flag}" for flag in sys.argv[1:] if flag != "--no-write")
    body = "\n".join([
        f"## inference-default ({cpu_kind()}): `vgzoo translate` / `vgzoo generate` defaults against the "
        "reference's eager fp32",
        "",
        f"`{command}` (at least {args.repeats} timed repeats after one warm-up, more for a case under "
        f"{MIN_SECONDS:g} s a contender, at most {MAX_REPEATS}; contenders in processes of their own, alternating; "
        f"{elapsed / 60:.1f} min). Machine: {machine()}. 1-minute load average at start / end: "
        f"{load_before[0]:.1f} / {load_after[0]:.1f}." + (" **Tiny networks: a smoke test, not a timing.**"
                                                           if args.tiny else ""),
        "",
        "Median ms per image (IQR), whole pipeline: decode, network, encode, files written. Ratio = reference / vgzoo."
        " PSNR: vgzoo's PNGs against the reference's (8-bit peak; bf16 autocast shows here)."
        + (" Rows labelled *AVX2 emulated* ran in a process started with "
           + ", ".join(f"`{k}={v}`" for k, v in AVX2_CAPS.items())
           + ": this CPU kept to AVX2 kernels, an emulation of an AVX2-only CPU, not one."
           if args.emulate_avx2 else ""),
        "",
        "| case | reference eager fp32 ms/img | vgzoo default ms/img | ratio | repeats | PSNR vs reference |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        *[f"- {note}" for note in notes],
        *crossover_lines,
    ])
    print(body)
    if not args.no_write:
        print(f"wrote {write_section(f'{SECTION}-{cpu_kind()}', body)}")


if __name__ == "__main__":
    main()
