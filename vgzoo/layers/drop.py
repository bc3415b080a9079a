"""Stochastic depth, from "Deep Networks with Stochastic Depth" (Huang et al., 2016).

During training a residual branch is dropped for a whole sample with probability ``p`` and the kept
samples are scaled by ``1 / (1 - p)``; in evaluation it is the identity.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DropPath", "drop_path"]


def drop_path(x: torch.Tensor, drop_prob: float = 0.0, training: bool = False,
              scale_by_keep: bool = True) -> torch.Tensor:
    """Zero whole samples of a residual branch with probability ``drop_prob`` (training only).

    Args:
        x: branch output; the first dimension is the batch.
        drop_prob: probability of dropping a sample's branch, in [0, 1).
        training: only drops when True.
        scale_by_keep: divide kept samples by ``1 - drop_prob`` so the expectation is unchanged.
    """
    if not 0.0 <= drop_prob < 1.0:
        raise ValueError(f"drop_path: drop_prob must be in [0, 1), got {drop_prob}.")
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    if scale_by_keep:
        mask.div_(keep)
    return x * mask


class DropPath(nn.Module):
    """Module form of :func:`drop_path`."""

    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True) -> None:
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"DropPath: drop_prob must be in [0, 1), got {drop_prob}.")
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.drop_prob, self.training, self.scale_by_keep)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"
