"""Weight initialisation of the pix2pix / CycleGAN networks (Isola et al. 2017; Zhu et al. 2017).

Both papers initialise from a Gaussian with standard deviation 0.02: convolution, transposed-convolution
and linear weights ~ N(0, 0.02) with zero biases; batch-norm scales ~ N(1, 0.02) with zero shifts.
"""

from __future__ import annotations

from torch import nn

_CONV_LIKE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def init_normal_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Initialise every conv/linear/batch-norm layer inside ``module`` in place and return ``module``.

    Args:
        module: the network to initialise (visited recursively).
        std: the standard deviation of the Gaussian (0.02 in both papers).
    """
    for m in module.modules():
        if any(p.is_meta for p in m.parameters(recurse=False)):
            continue  # shapes only (vgzoo info builds on the meta device): nothing to draw, and torch's meta
            # normal_ would import the compiler stack, seconds of start-up
        if isinstance(m, _CONV_LIKE):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _BATCH_NORMS) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module
