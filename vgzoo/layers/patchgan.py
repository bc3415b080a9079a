"""The PatchGAN discriminator of pix2pix and CycleGAN (Isola et al. 2017; Zhu et al. 2017).

A fully convolutional classifier of overlapping patches (70x70 receptive field for ``n_layers=3``):
``Conv 4x4 s2 -> LeakyReLU(0.2)``, then ``n_layers - 1`` stride-2 convs doubling the channels (capped at
8ndf) with norm and LeakyReLU, one stride-1 conv with norm and LeakyReLU, and a stride-1 conv to one channel.
It returns raw logits (no sigmoid): a 30x30 map for a 256 px input with ``n_layers=3``.
"""

from __future__ import annotations

import torch
from torch import nn

from .init import init_normal_
from .norm import get_norm_layer, norm_uses_bias


class PatchDiscriminator(nn.Module):
    """PatchGAN: a map of real/fake logits, one per overlapping patch.

    Args:
        in_chans: input channels (6 for pix2pix, which sees the input and output images stacked).
        ndf: channels of the first conv.
        n_layers: stride-2 convs (3 gives the 70x70 PatchGAN).
        norm: ``"batch"``, ``"instance"`` or ``"none"``.
    """

    def __init__(self, in_chans: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"PatchDiscriminator: n_layers={n_layers}; expected 1 or more.")
        make_norm = get_norm_layer(norm)
        bias = norm_uses_bias(norm)
        self.in_chans, self.n_layers = in_chans, n_layers
        self.stem = nn.Sequential(nn.Conv2d(in_chans, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2))
        layers = []
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers.append(nn.Sequential(
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                make_norm(ndf * mult),
                nn.LeakyReLU(0.2),
            ))
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)
        init_normal_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)))
