"""Absolute position embeddings and their resampling, as in "An Image is Worth 16x16 Words" (Dosovitskiy et
al., 2020), section 3.2: fine-tuning at another resolution interpolates the learned embedding grid in 2D.

Resampling is bicubic with antialiasing on a float32 copy, with prefix tokens (the class token) kept
as they are; this reproduces the numbers of timm's ``resample_abs_pos_embed``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .exporting import is_exporting

__all__ = ["resample_abs_pos_embed", "infer_grid_size"]


def infer_grid_size(num_tokens: int, num_prefix_tokens: int = 1) -> tuple[int, int]:
    """The square grid of a flattened embedding with ``num_tokens`` tokens (prefix tokens included).

    Raises:
        ValueError: the patch-token count is not a perfect square (pass the grid explicitly).
    """
    n = num_tokens - num_prefix_tokens
    side = math.isqrt(max(n, 0))
    if n <= 0 or side * side != n:
        raise ValueError(
            f"a position embedding with {num_tokens} tokens ({num_prefix_tokens} prefix) has {n} patch tokens, "
            "not a square grid; pass old_size=(H, W) explicitly."
        )
    return side, side


def resample_abs_pos_embed(
    pos_embed: torch.Tensor,
    new_size: tuple[int, int] | list[int],
    old_size: tuple[int, int] | list[int] | None = None,
    num_prefix_tokens: int = 1,
    interpolation: str = "bicubic",
    antialias: bool = True,
) -> torch.Tensor:
    """Resample a flattened ``(1, prefix + H*W, D)`` position embedding to a new patch grid.

    Args:
        pos_embed: the embedding, prefix tokens first.
        new_size: target grid (H', W') in patches.
        old_size: source grid; inferred as square when None.
        num_prefix_tokens: leading tokens (class token) copied unchanged.
        interpolation: ``F.interpolate`` mode (``bicubic``, ``bilinear``, ...).
        antialias: antialiased interpolation (what timm uses; it also changes upsampling slightly).

    Returns:
        ``(1, prefix + H'*W', D)`` in the input's dtype. The input is returned unchanged when the
        grids already agree.
    """
    new_size = tuple(n if isinstance(n, torch.SymInt) else int(n) for n in new_size[:2])  # symbolic in an export
    old_size = infer_grid_size(pos_embed.shape[1], num_prefix_tokens) if old_size is None else tuple(old_size)
    if old_size[0] * old_size[1] + num_prefix_tokens != pos_embed.shape[1]:
        raise ValueError(
            f"position embedding of {pos_embed.shape[1]} tokens does not hold a {old_size[0]}x{old_size[1]} grid "
            f"plus {num_prefix_tokens} prefix token(s)."
        )
    if not is_exporting() and tuple(new_size) == tuple(old_size):  # an export takes any size
        return pos_embed
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    dim, dtype = pos_embed.shape[-1], pos_embed.dtype
    grid = grid.reshape(1, old_size[0], old_size[1], dim).permute(0, 3, 1, 2).float()
    align = False if interpolation in ("bilinear", "bicubic", "linear", "trilinear") else None
    grid = F.interpolate(grid, size=new_size, mode=interpolation, antialias=antialias, align_corners=align)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_size[0] * new_size[1], dim).to(dtype)
    return torch.cat([prefix, grid], dim=1) if num_prefix_tokens else grid
