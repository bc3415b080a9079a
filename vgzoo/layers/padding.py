"""Reflection and replication padding that stay in the input's dtype under autocast.

Padding only copies values, so it is exact in any dtype. CPU autocast nevertheless lists ``reflection_pad`` and
``replication_pad`` among its fp32 ops: in a bf16 run every pad casts the whole activation up to fp32, pads it, and
the next convolution casts it back down. The values are the same either way (bf16 numbers are exact in fp32); the
two casts are pure cost, paid at every pad of a CycleGAN generator. These modules pad with autocast off, in the
dtype the activation already has. Outside autocast they are ``nn.ReflectionPad2d`` and ``nn.ReplicationPad2d``
(subclasses: same arguments, same state dict, same exported graph).
"""

from __future__ import annotations

import torch
from torch import nn


def _pad_in_input_dtype(pad: nn.Module, forward, x: torch.Tensor) -> torch.Tensor:
    if torch.is_autocast_enabled(x.device.type):
        with torch.autocast(x.device.type, enabled=False):
            return forward(pad, x)
    return forward(pad, x)


class ReflectionPad2d(nn.ReflectionPad2d):
    """``nn.ReflectionPad2d`` that pads in the input's dtype under autocast (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _pad_in_input_dtype(self, nn.ReflectionPad2d.forward, x)


class ReplicationPad2d(nn.ReplicationPad2d):
    """``nn.ReplicationPad2d`` that pads in the input's dtype under autocast (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _pad_in_input_dtype(self, nn.ReplicationPad2d.forward, x)
