"""Patch embedding of "An Image is Worth 16x16 Words" (Dosovitskiy et al., 2020).

An image ``(B, C, H, W)`` is cut into non-overlapping P x P patches, each linearly projected to D
(a ``Conv2d(C, D, kernel=P, stride=P)``) and flattened to ``(B, S, D)`` with S = (H/P)(W/P).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PatchEmbed", "to_2tuple"]


def to_2tuple(x: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``16 -> (16, 16)``; pairs pass through."""
    if isinstance(x, (tuple, list)):
        if len(x) != 2:
            raise ValueError(f"expected an int or a pair (H, W), got {x!r}")
        return int(x[0]), int(x[1])
    return int(x), int(x)


class PatchEmbed(nn.Module):
    """Image to patch tokens.

    Args:
        img_size: the image size (H, W) the model is built for (an int means square).
        patch_size: patch side P (an int means square); must divide ``img_size``.
        in_chans: image channels C.
        embed_dim: token width D.
        flatten: return ``(B, S, D)`` tokens (True) or the ``(B, D, H/P, W/P)`` grid (False).
        dynamic_img_size: accept any H, W divisible by P instead of exactly ``img_size``.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int | tuple[int, int] = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        flatten: bool = True,
        dynamic_img_size: bool = False,
    ) -> None:
        super().__init__()
        self.img_size = to_2tuple(img_size)
        self.patch_size = to_2tuple(patch_size)
        if any(p <= 0 for p in self.patch_size) or any(s <= 0 for s in self.img_size):
            raise ValueError(f"PatchEmbed: img_size {self.img_size} and patch_size {self.patch_size} must be positive.")
        if any(s % p for s, p in zip(self.img_size, self.patch_size, strict=True)):
            raise ValueError(
                f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}; "
                f"pick an img_size whose sides are multiples of the patch size (e.g. "
                f"{self.img_size[0] // self.patch_size[0] * self.patch_size[0] or self.patch_size[0]})."
            )
        self.grid_size = (self.img_size[0] // self.patch_size[0], self.img_size[1] // self.patch_size[1])
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.in_chans = in_chans
        self.flatten = flatten
        self.dynamic_img_size = dynamic_img_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError naming the received shape when ``x`` is not an image this embedding accepts."""
        if x.ndim != 4:
            raise ValueError(f"expected an image batch (B, C, H, W), got a tensor of shape {tuple(x.shape)}.")
        _, c, h, w = x.shape
        if c != self.in_chans:
            raise ValueError(
                f"got an image with {c} channels (shape {tuple(x.shape)}), the model takes in_chans={self.in_chans}; "
                f"convert the image or build the model with in_chans={c}."
            )
        ph, pw = self.patch_size
        if self.dynamic_img_size:
            if h % ph or w % pw:
                raise ValueError(
                    f"image size {h}x{w} is not a multiple of the patch size {ph}x{pw}; with dynamic_img_size any "
                    f"H, W divisible by it is allowed (e.g. {h // ph * ph or ph}x{w // pw * pw or pw})."
                )
        elif (h, w) != self.img_size:
            raise ValueError(
                f"image size {h}x{w} does not match the model's img_size {self.img_size[0]}x{self.img_size[1]}; "
                "resize the input, build the model with that img_size, or pass dynamic_img_size=True "
                f"(then any H, W divisible by the patch size {ph}x{pw} is allowed)."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.proj(x)
        if self.flatten:
            x = x.flatten(2).transpose(1, 2)
        return x
