"""Differentiable Augmentation (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

The same random, differentiable transform is applied to real and generated images before every
discriminator call, so the discriminator cannot overfit a small data set and the generator still gets
gradients through the augmentation. Policies:

* ``color``: brightness ``x + U(-0.5, 0.5)``; saturation ``(x - m_px) * U(0, 2) + m_px`` with ``m_px`` the
  per-pixel mean over channels; contrast ``(x - m_img) * U(0.5, 1.5) + m_img`` with ``m_img`` the mean of the
  whole image.
* ``translation``: an integer shift of up to 1/8 of each side (rounded), in each direction independently,
  with zero fill.
* ``cutout``: a square of half the side (rounded) zeroed at a random centre; it may hang over the border.

All parameters are drawn per sample on the input's device (no host round trip), nothing is clamped, so the
ops are valid on [-1, 1] data. Kornia 0.9 expresses only the brightness shift exactly
(``kornia.enhance.adjust_brightness`` with ``clip_output=False``): its saturation works in HSV, its contrast
scales around zero rather than the mean and clips, and its random augmentations sample on the CPU
generator, so the other ops are plain tensor ops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.enhance import adjust_brightness

from ._checks import SeededModule

POLICIES = ("color", "translation", "cutout")


def _uniform(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * (high - low) + low


def rand_brightness(x: torch.Tensor) -> torch.Tensor:
    """``x + U(-0.5, 0.5)`` per sample, unclipped (Kornia's ``adjust_brightness``)."""
    return adjust_brightness(x, _uniform(x, -0.5, 0.5).flatten(), clip_output=False)


def rand_saturation(x: torch.Tensor) -> torch.Tensor:
    """Scale the distance to the per-pixel channel mean by ``U(0, 2)`` per sample."""
    m = x.mean(dim=1, keepdim=True)
    return (x - m) * _uniform(x, 0.0, 2.0) + m


def rand_contrast(x: torch.Tensor) -> torch.Tensor:
    """Scale the distance to the image mean by ``U(0.5, 1.5)`` per sample."""
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) * _uniform(x, 0.5, 1.5) + m


def rand_translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each sample by integers in ``[-s, s]`` per axis, ``s = round(side * ratio)``, filling with zeros."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sh == 0 and sw == 0:
        return x
    dy = torch.randint(-sh, sh + 1, (b, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1), device=x.device)
    padded = F.pad(x, (sw, sw, sh, sh))  # zeros around the image
    # output (i, j) reads input (i - dy, j - dx), i.e. padded (i - dy + sh, j - dx + sw)
    rows = torch.arange(h, device=x.device)[None, :] - dy + sh  # (B, H)
    cols = torch.arange(w, device=x.device)[None, :] - dx + sw  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2)


def rand_cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a ``round(h * ratio) x round(w * ratio)`` box centred uniformly over the image (may be clipped)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    # box start = centre - size // 2; centres range so that every pixel is covered equally often
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    y0, x0 = cy - ch // 2, cx - cw // 2
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = (ys >= y0) & (ys < y0 + ch) & (xs >= x0) & (xs < x0 + cw)  # (B, H, W)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_OPS = {
    "color": (rand_brightness, rand_saturation, rand_contrast),
    "translation": (rand_translation,),
    "cutout": (rand_cutout,),
}


def parse_policy(policy: str) -> tuple[str, ...]:
    """Split ``"color,translation,cutout"`` into names, refusing unknown ones."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [n for n in names if n not in _OPS]
    if unknown:
        raise ValueError(
            f"DiffAugment policy {policy!r} has unknown part(s) {unknown}; expected a comma-separated subset "
            f"of {', '.join(POLICIES)}."
        )
    return names


def diff_augment(x: torch.Tensor, policy: str = "color,translation,cutout") -> torch.Tensor:
    """Apply the DiffAugment ``policy`` to a ``(B, C, H, W)`` float batch (any range, differentiable)."""
    if not torch.is_floating_point(x) or x.dim() != 4:
        raise ValueError(f"diff_augment expects a float (B, C, H, W) batch, got {x.dtype} {tuple(x.shape)}.")
    for name in parse_policy(policy):
        for op in _OPS[name]:
            x = op(x)
    return x


class DiffAugment(SeededModule):
    """Module form of :func:`diff_augment`; apply it to real *and* fake images before the discriminator.

    Args:
        policy: comma-separated subset of ``color``, ``translation``, ``cutout``.
        seed: reproducible draws (the input's device generator is seeded per call inside ``fork_rng``).
    """

    def __init__(self, policy: str = "color,translation,cutout", seed: int | None = None) -> None:
        super().__init__(seed)
        self.policy = ",".join(parse_policy(policy))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self.rng_scope(x.device):
            return diff_augment(x, self.policy) if self.policy else x

    def extra_repr(self) -> str:
        return f"policy={self.policy!r}" + (f", seed={self.seed}" if self.seed is not None else "")
