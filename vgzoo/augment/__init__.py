"""Batched, on-device augmentation for every vgzoo family, built on Kornia.

``create_transform(model)`` resolves the model's data config (size, mean/std, crop_pct, interpolation,
load/crop size) the way timm resolves its data config and returns the pipeline of the model's task:

================================  ===============================================================
task                              pipeline
================================  ===============================================================
classification                    :class:`ClassificationTrainTransform` / :class:`ClassificationEvalTransform`
paired_translation                :class:`PairedTransform` (``t(a, b)``, shared geometry)
unpaired_translation              :class:`UnpairedTransform` (``t(a, b)``, independent geometry)
conditional_generation,           :class:`GenerationTransform` (normalise, optional resize/flip)
generation, restoration
================================  ===============================================================

Inputs are float batches in [0, 1] on any device (what vgzoo datasets return); outputs are normalised to
the model's range ([-1, 1] for the GANs). :class:`DiffAugment` (Zhao et al. 2020) is the differentiable
augmentation GAN recipes put in front of their discriminators.

Reproducibility: Kornia 0.9 samples on the global CPU generator and takes no per-instance generator, so a
pipeline built with ``seed=`` runs each call inside ``torch.random.fork_rng`` seeded from (seed, call
index); that index is in the transform's ``state_dict()``. Without a seed the trainer must checkpoint the
global RNG states (``torch.get_rng_state()``, ``torch.cuda.get_rng_state_all()``) to resume exactly.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from ._checks import AugmentInputError, check_images
from ._config import CONFIG_KEYS, resolve_config
from .classification import ClassificationEvalTransform, ClassificationTrainTransform, mix_soft_targets
from .diffaugment import DiffAugment, diff_augment
from .paired import PairedTransform
from .unpaired import GenerationTransform, UnpairedTransform

__all__ = [
    "create_transform",
    "resolve_config",
    "ClassificationTrainTransform",
    "ClassificationEvalTransform",
    "PairedTransform",
    "UnpairedTransform",
    "GenerationTransform",
    "DiffAugment",
    "diff_augment",
    "mix_soft_targets",
    "check_images",
    "AugmentInputError",
]


def classification_pipeline(cfg: dict[str, Any], train: bool) -> tuple[type[nn.Module], dict[str, Any]]:
    """The classification pipelines (a transform factory of :mod:`vgzoo.tasks`)."""
    if train:
        return ClassificationTrainTransform, {
            "input_size": cfg["input_size"], "mean": cfg["mean"], "std": cfg["std"],
            "num_classes": cfg["num_classes"], "interpolation": cfg["interpolation"],
        }
    return ClassificationEvalTransform, {
        "input_size": cfg["input_size"], "mean": cfg["mean"], "std": cfg["std"],
        "crop_pct": cfg["crop_pct"], "interpolation": cfg["interpolation"],
    }


def _translation_kwargs(cfg: dict[str, Any], train: bool) -> dict[str, Any]:
    return {"load_size": cfg["load_size"], "crop_size": cfg["crop_size"], "mean": cfg["mean"], "std": cfg["std"],
            "interpolation": cfg["interpolation"], "train": train}


def paired_pipeline(cfg: dict[str, Any], train: bool) -> tuple[type[nn.Module], dict[str, Any]]:
    """The pix2pix pipeline: one random crop and flip shared by A and B."""
    return PairedTransform, _translation_kwargs(cfg, train)


def unpaired_pipeline(cfg: dict[str, Any], train: bool) -> tuple[type[nn.Module], dict[str, Any]]:
    """The CycleGAN pipeline: A and B cropped and flipped independently."""
    return UnpairedTransform, _translation_kwargs(cfg, train)


def images_pipeline(cfg: dict[str, Any], train: bool) -> tuple[type[nn.Module], dict[str, Any]]:
    """The pipeline of the image-only GAN tasks (generation, conditional generation, restoration)."""
    return GenerationTransform, {
        "input_size": cfg["input_size"], "mean": cfg["mean"], "std": cfg["std"],
        "interpolation": cfg["interpolation"], "train": train,
    }


def _pipeline_for(cfg: dict[str, Any], train: bool) -> tuple[type[nn.Module], dict[str, Any]]:
    from ..tasks import get_task

    return get_task(cfg["task"]).transform_factory()(cfg, train)


def create_transform(model_or_cfg: Any, train: bool = True, seed: int | None = None, **overrides: Any) -> nn.Module:
    """The augmentation pipeline for a model, resolved from its config.

    Args:
        model_or_cfg: a model built by :func:`vgzoo.create`, a registered model name, or a config dict with at
            least ``task`` and ``input_size`` (translation configs also ``load_size``/``crop_size``).
        train: the training pipeline (random) or the evaluation one (deterministic).
        seed: make the augmentation sequence reproducible; see the module docstring.
        **overrides: config keys (``input_size``, ``mean``, ``std``, ``crop_pct``, ``interpolation``,
            ``num_classes``, ``load_size``, ``crop_size``, ``task``) and options of the task's pipeline
            class (e.g. ``auto_augment="randaugment"``, ``mixup=True``, ``hflip=0.0``).

    Returns:
        An ``nn.Module``: classification ``t(x[, y])``, paired/unpaired ``t(a, b) -> (a2, b2)``, generation
        ``t(x[, labels])``.

    Raises:
        TypeError: an override that neither the config nor the pipeline knows (the message lists both).
        ValueError: a config without task or input size.
    """
    cfg_over = {k: overrides.pop(k) for k in list(overrides) if k in CONFIG_KEYS}
    cfg = resolve_config(model_or_cfg, **cfg_over)
    cls, kwargs = _pipeline_for(cfg, train)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "seed")]
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise TypeError(
            f"create_transform: unknown option(s) {', '.join(unknown)} for {cls.__name__} "
            f"(task {cfg['task']!r}, train={train}). Config keys: {', '.join(CONFIG_KEYS)}; "
            f"{cls.__name__} options: {', '.join(accepted)}."
        )
    kwargs.update(overrides)
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    transform = cls(seed=seed, **kwargs)
    transform.data_config = cfg
    return transform
