"""Training for every vgzoo task: ``vgzoo.train.fit(...)`` and ``vgzoo train``.

The recipes follow the papers of each family: DeiT (Touvron et al. 2021) for vision transformers,
pix2pix (Isola et al. 2017), CycleGAN (Zhu et al. 2017), the conditional GAN (Mirza & Osindero 2014)
with DCGAN optimisation (Radford et al. 2016) and optional DiffAugment (Zhao et al. 2020)::

    from vgzoo.train import fit
    result = fit("cgan_embed_digits", "builtin:digits", "runs/cgan", epochs=30)
    result.run_dir / "loss_curves.png"

A run directory holds ``config.json``, ``metrics.jsonl`` (one JSON row per step, plus validation rows),
``loss_curves.png``, ``samples/*.png``, ``health.json`` (the GAN health monitor), ``checkpoints/`` (resumable
bit for bit) and ``final/`` (a ``local-dir:`` model folder).

Names are imported on first use, so ``vgzoo.train.options`` (the option schema the CLI is built from) costs no
torch import.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "fit": "engine", "TrainResult": "engine", "TrainingError": "engine", "RunDirError": "rundir",
    "TrainState": "state", "Callback": "callbacks",
    "CheckpointError": "checkpoint", "latest_checkpoint": "checkpoint", "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "GANHealthMonitor": "monitor", "MonitorConfig": "monitor", "Finding": "monitor",
    "RECIPES": "recipes", "Recipe": "recipes", "recipe_for": "recipes",
    "Option": "options", "RUN_OPTIONS": "options", "ENGINE_OPTIONS": "options", "RunOptions": "options",
    "EngineOptions": "options", "RunView": "view",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vgzoo.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
