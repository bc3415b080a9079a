"""FID/KID during training: one call per evaluation, with the real set's features computed once.

The trainer holds the real features (``real_features(...)``) and calls :func:`evaluate_generator` every
``eval_every`` steps; the returned dict goes into a ``metrics.jsonl`` row as is.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..protocols import ConditionalSampler
from .evaluate import compare_features, real_features, sample_generator
from .features import FeatureExtractor, extract_features, get_features

__all__ = ["RealFeatures", "evaluate_generator", "prepare_real_features"]


class RealFeatures:
    """A real set's features (and labels, for class-conditional scores) with the extractor that made them."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor | None, extractor: FeatureExtractor,
                 source: str) -> None:
        self.features, self.labels, self.extractor, self.source = features, labels, extractor, source

    def __len__(self) -> int:
        return len(self.features)


def prepare_real_features(data: str | os.PathLike, features: str = "digits", *, split: str = "val",
                          device: str | torch.device | None = None, cache: bool = True) -> RealFeatures:
    """Extract (or read from the cache) the features of the real set the generator is scored against."""
    extractor = get_features(features, device)
    feats, labels = real_features(data, extractor, split=split, device=device, cache=cache)
    return RealFeatures(feats, labels, extractor, os.fspath(data))


@torch.no_grad()
def evaluate_generator(model: nn.Module, real: RealFeatures, *, num_samples: int | None = None, seed: int = 0,
                       subsets: int = 10, subset_size: int = 1000, batch_size: int = 256) -> dict[str, float]:
    """FID and KID of ``model``'s samples against ``real`` (a :class:`RealFeatures`), as flat floats.

    Class-conditional models sample the real set's labels (all of them, or ``num_samples`` seeded draws; the same
    labels every call, so successive evaluations differ only in the weights); unconditional ones sample
    ``num_samples`` (default: the real set's size).
    The latent draws are seeded with ``seed``; the model is put back in its training mode afterwards.

    Returns:
        ``{"fid": ..., "kid": ..., "kid_std": ...}`` (keys meant for a metrics.jsonl row and a curve).
    """
    n = int(num_samples or len(real))
    labels = None
    if real.labels is not None and isinstance(model, ConditionalSampler):
        labels = real.labels if num_samples is None else real.labels[torch.randint(  # n draws of the real labels
            len(real.labels), (n,), generator=torch.Generator().manual_seed(seed))]
        device = next(model.parameters()).device
        labels = labels.to(device)
    images = sample_generator(model, labels, n, seed=seed, batch_size=batch_size)
    fake = extract_features(images.split(batch_size), real.extractor, total=len(images), progress=False)
    scores = compare_features(real.features, fake, subsets=subsets, subset_size=subset_size, seed=seed)
    return {"fid": float(scores["fid"]), "kid": float(scores["kid_mean"]), "kid_std": float(scores["kid_std"])}
