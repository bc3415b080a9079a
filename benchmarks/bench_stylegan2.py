"""StyleGAN2 image generation: vgzoo against the reference implementation's own CPU path, same weights.

Run: python benchmarks/bench_stylegan2.py [--reference DIR] [--repeats 5] [--repeats-1024 3] [--sizes 256,1024]
     [--threads N] [--no-write]

The reference is NVlabs/stylegan2-ada-pytorch: ``--reference`` names a checkout of it (``git clone
https://github.com/NVlabs/stylegan2-ada-pytorch``); without it the script clones it into a temporary folder that
is removed afterwards (it is never part of vgzoo). Its ``training/networks.py`` is imported from there; off CUDA
its resampling and bias/activation ops take their reference paths (``upfirdn2d._upfirdn2d_ref`` and
``bias_act._bias_act_ref``), which is what a CPU user of the reference runs.

Both generators get the same weights (vgzoo's ``G_ema``, random, copied key by key into the reference's
``Generator`` built with the same arguments) and generate one image per call as the reference's ``generate.py``
does: ``G(z, c, truncation_psi=0.7, noise_mode='const')`` with ``z = RandomState(seed).randn(1, 512)``, at 256 px
(the ``paper256`` configuration) and 1024 px (``stylegan2``). The reference runs its fp16 blocks in float16 on the
CPU as well (its default); it is timed both that way and with ``force_fp32=True`` (the float32 arithmetic vgzoo
runs off CUDA), and vgzoo's ratio is taken against the faster of the two. Timings alternate between the
contenders on every repeat (one warm-up each) so machine noise hits them alike; medians and ratios go to the
"stylegan2" section of RESULTS.md. The outputs are compared too (float32 against float32, max abs difference).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _results import iqr, machine, median, write_section

import vgzoo

REFERENCE_REPO = "https://github.com/NVlabs/stylegan2-ada-pytorch"
CASES = [("stylegan2_paper256", 256), ("stylegan2", 1024)]


def reference_networks(path: Path):
    """The reference's ``training.networks`` module, imported from a checkout."""
    if not (path / "training" / "networks.py").is_file():
        raise SystemExit(f"{path} is not a checkout of {REFERENCE_REPO} (no training/networks.py).")
    sys.path.insert(0, str(path))
    warnings.filterwarnings("ignore")
    from training import networks

    return networks


def timed(fn) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        fn()
    return time.perf_counter() - start


def bench_case(networks, name: str, repeats: int) -> dict:
    torch.manual_seed(0)
    model = vgzoo.create(name).eval()
    G = model.G_ema
    with torch.no_grad():
        G.mapping.w_avg.normal_()  # a tracked average, so truncation does work
    config = model.config
    ref = networks.Generator(z_dim=config["z_dim"], c_dim=0, w_dim=config["w_dim"],
                             img_resolution=config["img_resolution"], img_channels=config["img_channels"],
                             mapping_kwargs=config["mapping_kwargs"],
                             synthesis_kwargs=config["synthesis_kwargs"]).eval().requires_grad_(False)
    ref.load_state_dict(G.state_dict(), strict=True)
    z = torch.from_numpy(np.random.RandomState(0).randn(1, config["z_dim"]))
    c = torch.zeros(1, 0)
    contenders = {
        "vgzoo": lambda: G(z, c, truncation_psi=0.7, noise_mode="const"),
        "reference": lambda: ref(z, c, truncation_psi=0.7, noise_mode="const"),
        "reference fp32": lambda: ref(z, c, truncation_psi=0.7, noise_mode="const", force_fp32=True),
    }
    with torch.no_grad():
        diff = float((contenders["vgzoo"]() - contenders["reference fp32"]()).abs().max())
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for fn in contenders.values():  # warm-up
        timed(fn)
    for _ in range(repeats):
        for key, fn in contenders.items():
            times[key].append(timed(fn))
    return {"times": times, "diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=None, help="a checkout of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--repeats", type=int, default=5, help="repeats at 256 px")
    parser.add_argument("--repeats-1024", type=int, default=3, help="repeats at 1024 px")
    parser.add_argument("--sizes", default="256,1024", help="which of 256 and 1024 px to run (comma list)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--no-write", action="store_true", help="print only, do not update RESULTS.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start, load_start = time.time(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="stylegan2-ada-pytorch-") as tmp:
        path = args.reference
        if path is None:
            path = Path(tmp) / "stylegan2-ada-pytorch"
            subprocess.run(["git", "clone", "--depth", "1", "-q", REFERENCE_REPO, str(path)], check=True)
        commit = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip() or "unknown"
        networks = reference_networks(path)
        lines = [
            "## stylegan2: image generation, vgzoo vs the reference implementation (CPU)",
            "",
            f"`python benchmarks/bench_stylegan2.py` on {machine()}, {torch.get_num_threads()} intra-op threads; "
            f"reference NVlabs/stylegan2-ada-pytorch at {commit}, its CPU path. One image per call as its "
            "generate.py (psi 0.7, noise const), same random weights in both. The reference runs its fp16 blocks in "
            "float16 on the CPU by default; `force_fp32` is its float32 path (vgzoo's arithmetic off CUDA).",
            "",
            "| image | vgzoo ms | reference ms | reference fp32 ms | vgzoo speed-up vs the faster reference "
            "| max abs diff (fp32) |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        sizes = {int(s) for s in args.sizes.split(",")}
        for name, size in (case for case in CASES if case[1] in sizes):
            row = bench_case(networks, name, args.repeats if size <= 256 else args.repeats_1024)
            t = {k: (median(v) * 1e3, iqr(v) * 1e3) for k, v in row["times"].items()}
            best = min(t["reference"][0], t["reference fp32"][0])
            lines.append(f"| {size}x{size} (`{name}`) | {t['vgzoo'][0]:.0f} ± {t['vgzoo'][1]:.0f} "
                         f"| {t['reference'][0]:.0f} ± {t['reference'][1]:.0f} "
                         f"| {t['reference fp32'][0]:.0f} ± {t['reference fp32'][1]:.0f} "
                         f"| {best / t['vgzoo'][0]:.2f}x | {row['diff']:.1e} |")
    lines += ["", f"Median ± IQR over {args.repeats} repeats at 256 px and {args.repeats_1024} at 1024 px, "
              f"contenders alternating. Whole run: {time.time() - start:.0f} s. 1-minute load average at start / "
              f"end: {load_start:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("stylegan2", body)


if __name__ == "__main__":
    main()
