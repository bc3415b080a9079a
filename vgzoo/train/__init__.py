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
"""

from __future__ import annotations

from .checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from .engine import TrainingError, TrainResult, fit
from .monitor import Finding, GANHealthMonitor, MonitorConfig
from .recipes import RECIPES, Recipe, recipe_for

__all__ = [
    "fit",
    "TrainResult",
    "TrainingError",
    "CheckpointError",
    "GANHealthMonitor",
    "MonitorConfig",
    "Finding",
    "RECIPES",
    "Recipe",
    "recipe_for",
    "latest_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]
