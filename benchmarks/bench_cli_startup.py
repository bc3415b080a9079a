"""Whole-process start-up cost of the registry: `vgzoo list` and `vgzoo info NAME` against timm's listing.

Run: python benchmarks/bench_cli_startup.py [--repeats 9]

Each command runs as a fresh process, alternating between the commands on every repeat so machine
noise hits them alike; medians and ratios go to the "cli-startup" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time

from _results import iqr, machine, median, write_section

COMMANDS = {
    "vgzoo list": [shutil.which("vgzoo") or "vgzoo", "list"],
    "vgzoo info vit_ti16_scratch": [shutil.which("vgzoo") or "vgzoo", "info", "vit_ti16_scratch"],
    "python -c 'import vgzoo; vgzoo.list_models()'": [sys.executable, "-c", "import vgzoo; vgzoo.list_models()"],
    "python -c 'import timm; timm.list_models()'": [sys.executable, "-c", "import timm; timm.list_models()"],
}


def time_once(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    for cmd in COMMANDS.values():  # warm the OS file cache once
        time_once(cmd)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, cmd in COMMANDS.items():
            times[name].append(time_once(cmd))
    timm_median = median(times["python -c 'import timm; timm.list_models()'"])
    rows = ["| command | median (s) | IQR (s) | timm listing / this |", "| --- | --- | --- | --- |"]
    for name, ts in times.items():
        rows.append(f"| `{name}` | {median(ts):.3f} | {iqr(ts):.3f} | {timm_median / median(ts):.1f}x |")
        print(f"{name:55s} median {median(ts):.3f} s  IQR {iqr(ts):.3f} s")
    body = "\n".join(
        [
            "## Registry start-up (`benchmarks/bench_cli_startup.py`)",
            "",
            f"Whole processes, {args.repeats} alternating repeats after one warm-up each, "
            f"on a shared machine: {machine()}.",
            "Target: `vgzoo list` within 0.3 s. `vgzoo info` imports torch and builds the model on the meta device "
            "to count its parameters; torch's import (with torch._dynamo, which meta-device initialisation pulls in) "
            "is most of its time.",
            "",
            *rows,
        ]
    )
    print(f"wrote {write_section('cli-startup', body)}")


if __name__ == "__main__":
    main()
