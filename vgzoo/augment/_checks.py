"""Shared machinery of the augmentation pipelines: input checks, seeding, channel statistics.

Kornia 0.9 facts this module designs around:

* Kornia samples every augmentation parameter with the *global CPU generator*, whatever device the image
  is on, and its augmentations accept no per-instance ``torch.Generator``. A pipeline built with a ``seed``
  therefore runs each call inside :func:`torch.random.fork_rng`, re-seeded from ``(seed, call index)``, so
  its draws are reproducible and the caller's global RNG stream is left untouched. The call index is the
  module's only state; it travels in ``state_dict()`` (``get_extra_state``), so a trainer that checkpoints
  the transform's state dict resumes the same augmentation sequence. Without a seed, the pipelines draw from
  the global generators and the trainer's checkpoint must carry ``torch.get_rng_state()`` (and the CUDA
  states) for an exact resume.
* Kornia silently clips out-of-range float input in several intensity ops, so 0-255 floats would be
  flattened to white without any error. The pipelines refuse non-float and 0-255 float input themselves.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import VgzooError

# Float rounding allowed around [0, 1] (uint8 / 255 is exact; a few float ops on it are not).
_RANGE_TOLERANCE = 1e-3


class AugmentInputError(VgzooError, ValueError):
    """An image batch that the augmentation pipelines cannot take (wrong dtype, range or shape)."""


def check_images(x: torch.Tensor, what: str = "images", check_range: bool = True) -> None:
    """Refuse anything but a float ``(B, C, H, W)`` batch of finite values in [0, 1].

    Args:
        x: the batch to check.
        what: how the batch is named in the error message.
        check_range: also check the values. One ``aminmax`` reduction, read back in one transfer (one
            synchronisation per call, as before NaN/Inf were checked: NaN propagates through the min and max, so
            it costs no extra read); pass ``False`` to skip it once the data path is trusted.

    Raises:
        AugmentInputError: uint8/integer input, NaN or Inf, 0-255 float input (max > 1.5), values above 1 (beyond
            float rounding, 1 + 1e-3), already-normalised input (min < -0.5) or values below 0, or a tensor that is
            not 4-D.
    """
    if not isinstance(x, torch.Tensor):
        raise AugmentInputError(f"{what}: expected a torch.Tensor batch (B, C, H, W), got {type(x).__name__}.")
    if not torch.is_floating_point(x):
        raise AugmentInputError(
            f"{what}: expected float images in [0, 1], got dtype {x.dtype}. Convert with `x.float() / 255` "
            "(vgzoo datasets already return [0, 1] floats)."
        )
    if x.dim() != 4:
        raise AugmentInputError(
            f"{what}: expected a batch shaped (B, C, H, W), got shape {tuple(x.shape)}. "
            "Add a batch dimension with `x.unsqueeze(0)`."
        )
    if check_range and x.numel():
        lo, hi = torch.stack(torch.aminmax(x.detach())).tolist()  # one device-to-host read
        if not (math.isfinite(lo) and math.isfinite(hi)):
            kind = "NaN" if math.isnan(lo) or math.isnan(hi) else "Inf"
            raise AugmentInputError(
                f"{what}: the batch holds {kind} values; expected finite floats in [0, 1]. Check the data loading "
                "(a failed decode or a division by zero) before augmenting."
            )
        if hi > 1.5:
            raise AugmentInputError(
                f"{what}: values reach {hi:.3g}, which looks like 0-255 data; expected floats in [0, 1]. "
                "Divide by 255 before augmenting (Kornia would otherwise clip it silently)."
            )
        if hi > 1.0 + _RANGE_TOLERANCE:
            raise AugmentInputError(
                f"{what}: values reach {hi:.4g}, above 1; expected floats in [0, 1]. Clamp with `x.clamp(0, 1)` "
                "(a resize with overshoot, e.g. bicubic, leaves such values) or fix the scaling."
            )
        if lo < -0.5:
            raise AugmentInputError(
                f"{what}: values go down to {lo:.3g}, which looks already normalised; expected floats in [0, 1]. "
                "Pass the raw [0, 1] images: the transform normalises them to the model's range itself."
            )
        if lo < -_RANGE_TOLERANCE:
            raise AugmentInputError(
                f"{what}: values go down to {lo:.4g}, below 0; expected floats in [0, 1]. Clamp with "
                "`x.clamp(0, 1)` or fix the scaling."
            )


def channel_stats(values: Sequence[float] | float, channels: int, name: str) -> torch.Tensor:
    """``mean``/``std`` as a ``(1, C, 1, 1)`` tensor for ``channels`` channels.

    A single value, or a per-channel list whose values are all equal, broadcasts to any channel count (a
    1-channel edge map next to a 3-channel photo both use 0.5/0.5); otherwise the lengths must match.
    """
    vals = [float(values)] if isinstance(values, (int, float)) else [float(v) for v in values]
    if len(vals) != channels:
        if len(set(vals)) == 1:
            vals = vals[:1] * channels
        else:
            raise AugmentInputError(
                f"{name} {tuple(vals)} has {len(vals)} values but the images have {channels} channel(s). "
                f"Pass {name}= with one value per channel (or a single value)."
            )
    return torch.tensor(vals).view(1, channels, 1, 1)


@functools.lru_cache(maxsize=64)
def _device_stats(values: tuple[float, ...] | float, channels: int, name: str, device: torch.device,
                  dtype: torch.dtype) -> torch.Tensor:
    # Built once per (values, device, dtype): a fresh CPU tensor copied to a GPU on every call is a blocking
    # host-to-device copy, i.e. one host synchronisation per normalise.
    return channel_stats(values, channels, name).to(device, dtype)


def _stats(values, channels: int, name: str, x: torch.Tensor) -> torch.Tensor:
    key = values if isinstance(values, (int, float)) else tuple(float(v) for v in values)
    return _device_stats(key, channels, name, x.device, x.dtype)


def normalize(x: torch.Tensor, mean: Sequence[float] | float, std: Sequence[float] | float) -> torch.Tensor:
    """``(x - mean) / std`` with per-channel statistics broadcast by :func:`channel_stats` (cached on x's device)."""
    return (x - _stats(mean, x.shape[1], "mean", x)) / _stats(std, x.shape[1], "std", x)


def normalize_(x: torch.Tensor, mean: Sequence[float] | float, std: Sequence[float] | float) -> torch.Tensor:
    """In-place :func:`normalize` for a tensor the caller owns (one pass, no new allocation)."""
    return x.sub_(_stats(mean, x.shape[1], "mean", x)).div_(_stats(std, x.shape[1], "std", x))


def _mix_seed(seed: int, step: int) -> int:
    # A 64-bit mix of (seed, step): consecutive steps get unrelated seeds.
    z = (seed * 0x9E3779B97F4A7C15 + step * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) % (1 << 64)
    z = ((z ^ (z >> 31)) * 0xD6E8FEB86659FD93) % (1 << 64)
    return (z ^ (z >> 32)) % (1 << 63)


class SeededModule(nn.Module):
    """Base of the pipelines: optional per-instance reproducibility on top of Kornia's global generator.

    With ``seed=None`` nothing changes: augmentations draw from the global RNG. With a seed, call ``i`` runs
    inside ``torch.random.fork_rng`` with the CPU generator (and the input's CUDA device generator) seeded
    from ``(seed, i)``; the global streams are restored afterwards. ``state_dict()`` carries ``seed`` and the
    call counter, so restoring it resumes the same sequence.
    """

    def __init__(self, seed: int | None = None) -> None:
        super().__init__()
        if seed is not None and not isinstance(seed, int):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        self.seed = seed
        self.calls = 0

    @contextlib.contextmanager
    def rng_scope(self, device: torch.device) -> Iterator[None]:
        """Context in which this call's random draws happen (seeded when the module has a seed)."""
        if self.seed is None:
            yield
            return
        step_seed = _mix_seed(self.seed, self.calls)
        self.calls += 1
        if device.type == "cpu":
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(step_seed)
                yield
        elif device.type == "cuda":
            index = device.index if device.index is not None else torch.cuda.current_device()
            with torch.random.fork_rng(devices=[index]):
                torch.default_generator.manual_seed(step_seed)
                with torch.cuda.device(index):
                    torch.cuda.manual_seed(step_seed)
                yield
        else:  # other accelerators: fork their generator and seed everything
            with torch.random.fork_rng(device_type=device.type):
                torch.manual_seed(step_seed)
                yield

    def get_extra_state(self) -> dict[str, Any]:
        return {"seed": self.seed, "calls": self.calls}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.seed = state.get("seed", self.seed)
        self.calls = int(state.get("calls", 0))

    def extra_repr(self) -> str:
        return f"seed={self.seed}" if self.seed is not None else ""
