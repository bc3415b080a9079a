"""Default sizes per device: what keeps a 2-core CPU within minutes and what keeps a large GPU busy.

On a GPU, batch 1, S <= 2048 and fp32 measure kernel launches rather than arithmetic, and fp32 also rules out the
flash and cuDNN attention kernels (they need fp16/bf16). The CUDA defaults are sized for one H200-class GPU
(about 140 GiB): bf16, ViT batch sizes that fill it, and image sizes past the S = 6D attention/linear crossovers
(543 px for ViT-Ti/16, 768 px for ViT-S/16, 1086 px for ViT-B/16).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["BENCH_DEFAULTS", "bench_defaults", "resolve_device"]

BENCH_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {
        "scaling": {"batch_size": 1, "sizes": (64, 128, 192, 256, 320, 384, 448), "amp_dtype": None,
                    "models": ("vit_ti16_scratch", "vit_s16_scratch", "cyclegan_resnet6", "resnet50")},
        "attention": {"seq_lens": (256, 384, 512, 768, 1024, 1536, 2048), "dtype": "float32", "batch_size": 1,
                      "heads": 6},
        "model": {"batch_size": 8, "amp": False},
    },
    "cuda": {
        "scaling": {"batch_size": 16, "sizes": (224, 448, 672, 896, 1120), "amp_dtype": "bfloat16",
                    "models": ("vit_ti16_scratch", "vit_s16_scratch", "timm:vit_base_patch16_224",
                               "cyclegan_resnet6", "resnet50")},
        "attention": {"seq_lens": (256, 512, 1024, 2048, 4096, 8192, 16384), "dtype": "bfloat16", "batch_size": 1,
                      "heads": 12},
        "model": {"batch_size": 256, "amp": True},
    },
}


def resolve_device(device: str | torch.device | None) -> str:
    """``None``/``"auto"``: ``cuda`` when a GPU is visible, else ``cpu``; anything else as given."""
    if device is None or str(device) == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def bench_defaults(kind: str, device: str | torch.device) -> dict[str, Any]:
    """The defaults of benchmark ``kind`` (``scaling``, ``attention``, ``model``) on ``device``'s type."""
    dev_type = torch.device(resolve_device(device)).type
    return dict(BENCH_DEFAULTS["cuda" if dev_type == "cuda" else "cpu"][kind])
