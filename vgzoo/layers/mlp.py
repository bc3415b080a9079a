"""The transformer feed-forward block of "Attention Is All You Need" (Vaswani et al., 2017), GELU as in ViT.

``Linear(D, hidden) -> activation -> Dropout -> Linear(hidden, D) -> Dropout``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Mlp"]


class Mlp(nn.Module):
    """Two-layer perceptron applied to every token.

    Args:
        in_features: input width.
        hidden_features: hidden width (``in_features`` when None; ViT uses 4 x D).
        out_features: output width (``in_features`` when None).
        act_layer: activation module class.
        drop: dropout after the activation and after the second Linear.
        bias: biases on both Linears.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int | None = None,
        out_features: int | None = None,
        act_layer: type[nn.Module] = nn.GELU,
        drop: float = 0.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, out_features, bias=bias)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))
