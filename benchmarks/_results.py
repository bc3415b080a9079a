"""Shared by the benchmark scripts: machine description and section-wise updates of RESULTS.md.

Each script owns one section of ``benchmarks/RESULTS.md``, delimited by HTML comments, and rewrites
only that section, so scripts can be rerun one at a time.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nEach section is written by the script it names; rerun it to refresh the section.\n"


def resolve_device(device: str | None) -> str:
    """``auto``/None: ``cuda`` when a GPU is visible, else ``cpu``."""
    from vgzoo.bench.defaults import resolve_device as _resolve

    return _resolve(device)


def sync(device) -> None:
    """Wait for the device's queue (a no-op on CPU), so wall-clock timings cover the work."""
    from vgzoo.bench.timing import synchronize

    synchronize(device)


def section(name: str, device: str) -> str:
    """RESULTS.md section of a script: ``name`` on CPU, ``name-cuda`` on a GPU (the CPU section stays)."""
    import torch

    return name if torch.device(device).type == "cpu" else f"{name}-{torch.device(device).type}"


def precision_line(device: str, dtype: str = "float32") -> str:
    """The settings that decide what the numbers mean: TF32, matmul precision, the SDPA kernel, bf16 units."""
    from vgzoo.bench.envelope import sdpa_backend
    from vgzoo.precision import precision_settings

    p = precision_settings(device)
    tf32 = p.get("allow_tf32_matmul")
    return (f"device {device}, {dtype}; float32 matmul precision {p['float32_matmul_precision']}"
            + ("" if tf32 is None else f", TF32 matmul {'on' if tf32 else 'off'}, TF32 cuDNN "
               f"{'on' if p['allow_tf32_cudnn'] else 'off'}")
            + f"; SDPA picks {sdpa_backend(device, dtype)}; bf16 units: {p['fast_bf16_reason']}")


def machine(device: str = "cpu") -> str:
    """One line describing the machine and software the numbers come from (the GPU too on CUDA)."""
    import torch

    if torch.device(device).type == "cuda":
        props = torch.cuda.get_device_properties(torch.device(device))
        return (f"{props.name} ({props.total_memory / 2**30:.0f} GiB, sm {props.major}.{props.minor}), CUDA "
                f"{torch.version.cuda}, torch {torch.__version__}, Python {platform.python_version()}")

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}"
    )


def cpu_kind() -> str:
    """A short name of this CPU kind, for sections kept per kind: its maker and line, and its bf16 units
    (``intel-xeon-amx``, ``amd-epyc-avx512bf16``, ``amd-epyc-avx2``: machines of one line differ by them)."""
    from vgzoo.precision import _cpu_flags

    name = machine().split(",")[0]
    words = re.sub(r"\(r\)|\(tm\)|\bprocessor\b|\bcpu\b|@.*", " ", name.lower())
    flags = _cpu_flags()
    units = "amx" if "amx_bf16" in flags else "avx512bf16" if "avx512_bf16" in flags else "avx2"
    return "-".join([*re.findall(r"[a-z0-9]+", words)[:2], units])


def median(xs):
    return statistics.median(xs)


def iqr(xs):
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return q[2] - q[0]


def write_section(name: str, body: str, path: Path | None = None) -> Path:
    """Replace (or append) the section ``name`` of RESULTS.md (or of ``path``) with ``body``."""
    target = Path(path) if path is not None else RESULTS
    text = target.read_text() if target.exists() else HEADER
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    from vgzoo._hub import atomic_write

    atomic_write(target, lambda tmp: Path(tmp).write_text(text))
    return target
