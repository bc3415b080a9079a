"""Normalisation-layer factory for the pix2pix / CycleGAN networks (Isola et al. 2017; Zhu et al. 2017).

Three choices, as in the reference implementation of both papers:

- ``"batch"``: ``BatchNorm2d`` with affine parameters and running statistics;
- ``"instance"``: ``InstanceNorm2d(affine=False, track_running_stats=False)`` (Ulyanov et al. 2016);
- ``"none"``: no normalisation (an ``Identity``).

Convolutions that feed a norm layer carry a bias only with instance norm (batch norm has its own shift,
and the reference drops the bias for ``"none"`` too), which :func:`norm_uses_bias` reports.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

NORMS = ("batch", "instance", "none")


def check_norm(norm: str) -> str:
    """Return ``norm`` if it is one of :data:`NORMS`, else raise a ValueError saying what is accepted."""
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r} is not a known normalisation; expected one of {', '.join(NORMS)}.")
    return norm


def get_norm_layer(norm: str) -> Callable[[int], nn.Module]:
    """A constructor ``make(num_channels) -> nn.Module`` for the normalisation named ``norm``."""
    check_norm(norm)
    if norm == "batch":
        return lambda c: nn.BatchNorm2d(c, affine=True, track_running_stats=True)
    if norm == "instance":
        return lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)
    return lambda c: nn.Identity()


def norm_uses_bias(norm: str) -> bool:
    """Whether convolutions followed by this norm carry a bias (only instance norm, as in the reference)."""
    return check_norm(norm) == "instance"


def is_per_sample(norm: str) -> bool:
    """Whether the norm treats each sample on its own, so that stacking samples in one batch changes nothing."""
    return check_norm(norm) in ("instance", "none")
