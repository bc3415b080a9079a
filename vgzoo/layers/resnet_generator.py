"""The ResNet generator of CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks"), after Johnson et al. (2016), with reflection padding.

``ReflectionPad(3) -> Conv 7x7 -> norm -> ReLU``, two stride-2 3x3 down-samplings (ngf -> 2ngf -> 4ngf),
``n_blocks`` residual blocks at 4ngf, two stride-2 3x3 transposed convs back to ngf, and
``ReflectionPad(3) -> Conv 7x7 -> Tanh``. 9 blocks for 256 px images, 6 for 128 px.
"""

from __future__ import annotations

import torch
from torch import nn

from .init import init_normal_
from .norm import get_norm_layer, norm_uses_bias
from .padding import ReflectionPad2d, ReplicationPad2d
from .unet import check_input_channels, check_input_size


class ResnetBlock(nn.Module):
    """``x + (pad -> Conv 3x3 -> norm -> ReLU -> [Dropout(0.5)] -> pad -> Conv 3x3 -> norm)(x)``.

    Args:
        dim: channels in and out.
        norm: ``"batch"``, ``"instance"`` or ``"none"``.
        dropout: Dropout(0.5) between the two convs (the reference's pix2pix-with-ResNet variant).
        padding: ``"reflect"``, ``"replicate"`` or ``"zeros"``.
    """

    def __init__(self, dim: int, norm: str = "instance", dropout: bool = False, padding: str = "reflect") -> None:
        super().__init__()
        pads = {"reflect": ReflectionPad2d, "replicate": ReplicationPad2d, "zeros": nn.ZeroPad2d}
        if padding not in pads:
            raise ValueError(f"ResnetBlock: padding={padding!r}; expected one of {', '.join(pads)}.")
        make_norm = get_norm_layer(norm)
        bias = norm_uses_bias(norm)
        self.pad1 = pads[padding](1)
        self.conv1 = nn.Conv2d(dim, dim, 3, bias=bias)
        self.norm1 = make_norm(dim)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(0.5) if dropout else nn.Identity()
        self.pad2 = pads[padding](1)
        self.conv2 = nn.Conv2d(dim, dim, 3, bias=bias)
        self.norm2 = make_norm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.act(self.norm1(self.conv1(self.pad1(x)))))
        return x + self.norm2(self.conv2(self.pad2(h)))


class ResnetGenerator(nn.Module):
    """The CycleGAN generator: stem, two down-samplings, ``n_blocks`` residual blocks, two up-samplings, head.

    Inputs need height and width divisible by 4 (:attr:`size_multiple`) and of at least 8 (:attr:`min_size`).

    Args:
        in_chans: input image channels.
        out_chans: output image channels.
        ngf: channels of the stem.
        n_blocks: residual blocks (9 for 256 px, 6 for 128 px).
        norm: ``"batch"``, ``"instance"`` or ``"none"``.
        dropout: Dropout(0.5) inside each residual block.
        padding: padding of the residual blocks' convs.
    """

    size_multiple = 4
    # Two stride-2 convs take 8 px to 2 px at the residual blocks, the least their 1-px reflection padding and
    # instance norm take (a 4x4 input reaches them as 1x1, which both refuse).
    min_size = 8

    def __init__(
        self,
        in_chans: int = 3,
        out_chans: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: bool = False,
        padding: str = "reflect",
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"ResnetGenerator: n_blocks={n_blocks}; expected 0 or more.")
        make_norm = get_norm_layer(norm)
        bias = norm_uses_bias(norm)
        self.in_chans, self.out_chans, self.n_blocks = in_chans, out_chans, n_blocks
        self.stem = nn.Sequential()
        self.stem.add_module("pad", ReflectionPad2d(3))
        self.stem.add_module("conv", nn.Conv2d(in_chans, ngf, 7, bias=bias))
        self.stem.add_module("norm", make_norm(ngf))
        self.stem.add_module("act", nn.ReLU())
        self.down = nn.Sequential()
        self.up = nn.Sequential()
        for i in range(2):
            c = ngf * 2**i
            self.down.append(_conv_norm_act(nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=bias), make_norm(2 * c)))
        self.blocks = nn.Sequential(*[ResnetBlock(ngf * 4, norm, dropout, padding) for _ in range(n_blocks)])
        for i in range(2):
            c = ngf * 2 ** (2 - i)
            conv = nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias)
            self.up.append(_conv_norm_act(conv, make_norm(c // 2)))
        self.head = nn.Sequential()
        self.head.add_module("pad", ReflectionPad2d(3))
        self.head.add_module("conv", nn.Conv2d(ngf, out_chans, 7))
        self.head.add_module("act", nn.Tanh())
        init_normal_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_size(x, self.size_multiple, "ResnetGenerator")
        check_input_channels(x, self.in_chans, "ResnetGenerator")
        return self.head(self.up(self.blocks(self.down(self.stem(x)))))


def _conv_norm_act(conv: nn.Module, norm: nn.Module) -> nn.Sequential:
    seq = nn.Sequential()
    seq.add_module("conv", conv)
    seq.add_module("norm", norm)
    seq.add_module("act", nn.ReLU())
    return seq
