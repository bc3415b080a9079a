"""Values computed from a layer's weights alone, kept for a run of inference calls.

A layer that derives something from its parameters on every forward call (a cast to the activations' dtype, a
reduction such as StyleGAN2's per-kernel energy for demodulation) computes it once per run inside
:func:`weights_fixed`, and on every call outside it. :class:`vgzoo.inference.GuardedRunner` enters it around a
command's forward calls, next to torch's :func:`torch.nn.utils.parametrize.cached`, under the same promise: the
weights do not change inside it. Training never enters it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

_cache: dict[tuple[int, Hashable], tuple[nn.Parameter, int, Any]] | None = None


@contextmanager
def weights_fixed() -> Iterator[None]:
    """Within the ``with``, :func:`derived` computes each parameter's value once; nested uses share the outermost."""
    global _cache
    outermost = _cache is None
    if outermost:
        _cache = {}
    try:
        yield
    finally:
        if outermost:
            _cache = None


def derived(param: torch.Tensor, what: Hashable, compute: Callable[[], Any]) -> Any:
    """``compute()``: a value of ``param`` alone, named ``what``; inside :func:`weights_fixed`, the first call's.

    Only an ``nn.Parameter`` is kept (a tensor made during the call is not the same tensor next time), and not while
    autograd records a parameter that requires grad (the value would carry its graph). A parameter changed in place
    by a tensor op (its version moves) is computed again.
    """
    if _cache is None or not isinstance(param, nn.Parameter) or (torch.is_grad_enabled() and param.requires_grad):
        return compute()
    key = (id(param), what)
    kept = _cache.get(key)
    if kept is None or kept[0] is not param or kept[1] != param._version:
        kept = _cache[key] = (param, param._version, compute())  # holding param keeps its id from being reused
    return kept[2]
