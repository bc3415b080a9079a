"""The envelope every benchmark document shares: schema version, machine and the settings that decide what its numbers
mean, and the row fields each kind of document declares. Also the two helpers every runner uses (dtype names and a
progress bar), so no runner reaches into another.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

__all__ = ["ENVELOPE_KEYS", "SCHEMA_VERSION", "declare_rows", "envelope", "machine_info", "progress_bar",
           "row_fields", "sdpa_backend", "torch_dtype"]

SCHEMA_VERSION = 1
ENVELOPE_KEYS = ("schema_version", "kind", "vgzoo_version", "machine", "device", "dtype", "matmul_peak_flops",
                 "interrupted", "config", "rows", "fits", "notes", "precision", "sdpa_backend")


def machine_info() -> dict[str, Any]:
    """CPU model, core count, torch version and threads, Python, and the GPU when there is one."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "logical_cores": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "platform": platform.platform(), "gpu": None}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        props = torch.cuda.get_device_properties(0)
        info["gpu_memory_bytes"] = props.total_memory
        info["gpu_capability"] = f"{props.major}.{props.minor}"
        info["cuda"] = torch.version.cuda
    return info


def sdpa_backend(device: str, dtype: str, *, heads: int = 6, seq_len: int = 197, head_dim: int = 64) -> str:
    """The kernel ``F.scaled_dot_product_attention`` picks here for a ViT-sized call under the current settings
    (``FLASH_ATTENTION``, ``EFFICIENT_ATTENTION``, ``CUDNN_ATTENTION``, ``MATH``; on CPU "flash" is its fused
    C++ kernel), asked of torch's own dispatcher (``torch._fused_sdp_choice``)."""
    import torch
    from torch.nn.attention import SDPBackend

    try:
        q = torch.randn(1, heads, seq_len, head_dim, device=device, dtype=torch_dtype(dtype))
        return SDPBackend(torch._fused_sdp_choice(q, q, q)).name
    except Exception as exc:  # a private API: report rather than fail the benchmark
        return f"unknown ({type(exc).__name__})"


def envelope(kind: str, *, device: str, dtype: str) -> dict[str, Any]:
    """An empty result document of ``kind`` (``scaling``, ``attention`` or ``model``), with the settings that decide
    what its numbers mean: TF32 and matmul precision, enabled SDPA backends and the one SDPA picks, bf16 units."""
    from .._version import __version__
    from ..precision import precision_settings

    return {"schema_version": SCHEMA_VERSION, "kind": kind, "vgzoo_version": __version__, "machine": machine_info(),
            "device": device, "dtype": dtype, "matmul_peak_flops": None, "interrupted": False, "config": {},
            "rows": [], "fits": {}, "notes": [], "precision": precision_settings(device),
            "sdpa_backend": sdpa_backend(device, dtype)}


# kind -> the fields of its rows, in order, declared by the module that makes them (declare_rows).
_ROW_FIELDS: dict[str, tuple[str, ...]] = {}


def declare_rows(kind: str, fields: tuple[str, ...]) -> tuple[str, ...]:
    """Declare the row fields of documents of ``kind`` (the CSV columns, in order); returns ``fields``."""
    _ROW_FIELDS[kind] = tuple(fields)
    return _ROW_FIELDS[kind]


def row_fields(kind: str) -> tuple[str, ...] | None:
    """The row fields declared for ``kind``; None when no runner of that kind was imported."""
    return _ROW_FIELDS.get(kind)


def torch_dtype(name: str):
    """The torch dtype a benchmark names (``float32``/``fp32``, ``float16``/``fp16``, ``bfloat16``/``bf16``)."""
    import torch

    table = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
             "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if name not in table:
        raise ValueError(f"unknown dtype {name!r}; expected one of float32, float16, bfloat16")
    return table[name]


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr for a benchmark's points (disabled when ``enabled`` is False)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True)
