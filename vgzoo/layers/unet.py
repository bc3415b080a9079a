"""The U-Net generator of pix2pix (Isola et al. 2017, "Image-to-Image Translation with Conditional
Adversarial Networks"), built from nested skip blocks as in the paper's reference implementation.

Each block halves the resolution on the way down (``LeakyReLU(0.2) -> Conv 4x4 s2 p1 -> norm``), hands the
result to the block inside it, doubles it on the way up (``ReLU -> ConvTranspose 4x4 s2 p1 -> norm``) and
concatenates its (activated) input to the result. The innermost block has no norm on its down path; the
outermost has a bare conv down and ``ReLU -> ConvTranspose -> Tanh`` up and no skip.

Two details follow the reference exactly so that its checkpoints reproduce its outputs:

- the reference applies its down-path LeakyReLU in place, so the tensor concatenated on the skip path is
  the *activated* input ``leaky_relu(x)``, not ``x``; :class:`UnetSkipBlock` does the same, out of place;
- convolutions carry a bias only with instance norm, except the outermost transposed conv, which always has one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputChannelsError, InputSizeError
from .init import init_normal_
from .norm import get_norm_layer, norm_uses_bias

__all__ = ["UnetGenerator", "UnetSkipBlock", "check_input_channels", "check_input_size"]


def check_input_channels(x: torch.Tensor, in_chans: int, what: str) -> None:
    """Raise :class:`InputChannelsError` (a ``ValueError``) unless ``x`` has ``in_chans`` channels (dim 1).

    torch's own message ("weight of size [64, 3, 7, 7], expected input[1, 1, 134, 134] to have 3 channels") names
    neither the network nor the keyword that fixes it.
    """
    if x.ndim == 4 and x.shape[1] != in_chans:
        got = x.shape[1]
        raise InputChannelsError(
            f"{what} expects {in_chans}-channel images, got {got} channel(s) (input shape {tuple(x.shape)}). Build the "
            f"model for them with in_chans={got} (e.g. vgzoo.create(name, in_chans={got}); out_chans= sets the "
            f"output), or convert the images to {in_chans} channel(s)."
        )


def check_input_size(x: torch.Tensor, multiple: int, what: str) -> None:
    """Raise :class:`InputSizeError` unless ``x`` is (N, C, H, W) with H and W multiples of ``multiple``."""
    if x.ndim != 4:
        raise InputSizeError(f"{what} expects a batch of images (N, C, H, W); got a tensor of shape {tuple(x.shape)}.")
    h, w = x.shape[-2:]
    if h % multiple or w % multiple:
        raise InputSizeError(
            f"{what} needs height and width divisible by {multiple}; got {h}x{w}. Resize or pad the image "
            f"(vgzoo.translate pads to the next valid size and crops back)."
        )


class UnetSkipBlock(nn.Module):
    """One level of the U-Net: down, the nested block, up, and the skip concatenation.

    Args:
        outer_chans: channels this block returns (before the skip concatenation) = the up conv's outputs.
        inner_chans: channels of the down conv's output, seen by the nested block.
        in_chans: channels of this block's input (defaults to ``outer_chans``; the outermost block takes the image).
        submodule: the nested block (None for the innermost block).
        position: ``"outermost"``, ``"innermost"`` or ``"middle"``.
        norm: ``"batch"``, ``"instance"`` or ``"none"``.
        dropout: add ``Dropout(0.5)`` after the up path (middle blocks only, as in the reference).
    """

    def __init__(
        self,
        outer_chans: int,
        inner_chans: int,
        in_chans: int | None = None,
        submodule: UnetSkipBlock | None = None,
        position: str = "middle",
        norm: str = "batch",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        if position not in ("outermost", "innermost", "middle"):
            raise ValueError(f"position={position!r}; expected 'outermost', 'innermost' or 'middle'.")
        if (submodule is None) != (position == "innermost"):
            raise ValueError("UnetSkipBlock: exactly the innermost block has no submodule.")
        make_norm = get_norm_layer(norm)
        bias = norm_uses_bias(norm)
        in_chans = outer_chans if in_chans is None else in_chans
        self.position = position
        self.down_conv = nn.Conv2d(in_chans, inner_chans, 4, stride=2, padding=1, bias=bias)
        self.down_norm = make_norm(inner_chans) if position == "middle" else nn.Identity()
        self.submodule = submodule
        up_in = inner_chans if position == "innermost" else 2 * inner_chans
        self.up_conv = nn.ConvTranspose2d(up_in, outer_chans, 4, stride=2, padding=1,
                                          bias=True if position == "outermost" else bias)
        self.up_norm = nn.Identity() if position == "outermost" else make_norm(outer_chans)
        self.dropout = nn.Dropout(0.5) if dropout and position == "middle" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.position != "outermost":
            x = F.leaky_relu(x, 0.2)
        h = self.down_norm(self.down_conv(x))
        if self.submodule is not None:
            h = self.submodule(h)
        h = self.up_conv(F.relu(h))
        if self.position == "outermost":
            return torch.tanh(h)
        return torch.cat([x, self.dropout(self.up_norm(h))], dim=1)


class UnetGenerator(nn.Module):
    """The pix2pix U-Net: ``num_downs`` nested skip blocks (8 for 256 px images, 7 for 128 px).

    From the inside out: the innermost ``8ngf`` block, ``num_downs - 5`` further ``8ngf`` blocks (with
    Dropout(0.5) when ``dropout``), then ``4ngf``, ``2ngf``, ``ngf`` blocks and the outermost block.
    Inputs need height and width divisible by ``2 ** num_downs`` (:attr:`size_multiple`).

    Args:
        in_chans: input image channels.
        out_chans: output image channels.
        num_downs: number of down-samplings (at least 5).
        ngf: channels of the first conv.
        norm: ``"batch"``, ``"instance"`` or ``"none"``.
        dropout: Dropout(0.5) in the middle ``8ngf`` blocks.
    """

    def __init__(
        self,
        in_chans: int = 3,
        out_chans: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"UnetGenerator: num_downs={num_downs}; the architecture needs at least 5.")
        self.in_chans, self.out_chans, self.num_downs = in_chans, out_chans, num_downs
        block = UnetSkipBlock(ngf * 8, ngf * 8, position="innermost", norm=norm)
        for _ in range(num_downs - 5):
            block = UnetSkipBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, dropout=dropout)
        for mult in (4, 2, 1):
            block = UnetSkipBlock(ngf * mult, ngf * mult * 2, submodule=block, norm=norm)
        self.block = UnetSkipBlock(out_chans, ngf, in_chans=in_chans, submodule=block, position="outermost",
                                   norm=norm)
        init_normal_(self)

    @property
    def size_multiple(self) -> int:
        """Height and width of inputs must be multiples of this."""
        return 2**self.num_downs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_size(x, self.size_multiple, f"UnetGenerator with {self.num_downs} down-samplings")
        check_input_channels(x, self.in_chans, "UnetGenerator")
        return self.block(x)

    def blocks(self) -> list[UnetSkipBlock]:
        """The skip blocks from the outermost to the innermost."""
        out, block = [], self.block
        while block is not None:
            out.append(block)
            block = block.submodule
        return out
