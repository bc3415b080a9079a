"""StyleGAN2-ADA's generator and discriminator, exact to the reference implementation.

Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN" (CVPR, arXiv:1912.04958), with the
configuration and mixed precision of Karras et al. 2020, "Training Generative Adversarial Networks with Limited
Data" (NeurIPS, arXiv:2006.06676). The reference is NVlabs/stylegan2-ada-pytorch's ``training/networks.py``:
every class here takes the reference's constructor arguments under the reference's names and owns the same
parameters and buffers under the same keys, so a reference snapshot's tensors load key by key
(:mod:`vgzoo_stylegan2.snapshot`) and a reference user's call (``G(z, c, truncation_psi=0.7,
truncation_cutoff=None, noise_mode='const')``, ``G.mapping``, ``G.synthesis``, ``D(img, c)``) works unchanged.

Generator::

    z (N, z_dim), c (N, c_dim) -> MappingNetwork: normalise z (and the embedded c), num_layers x FC + lrelu with
    learning-rate multiplier 0.01 -> w, tracked average w_avg, broadcast to num_ws, truncation toward w_avg
    ws (N, num_ws, w_dim) -> SynthesisNetwork: a learned 4x4 constant, then per resolution 4..img_resolution a
    SynthesisBlock: [modulated 3x3 conv, up 2 with the [1,3,3,1] FIR filter] -> modulated 3x3 conv, each with
    per-pixel noise of learned strength, bias, lrelu (gain sqrt 2) and conv_clamp; ``skip`` architecture: each
    block's 1x1 modulated toRGB is added to the FIR-upsampled image of the block before -> image (N, C, H, W)

Discriminator: per resolution img_resolution..8 a DiscriminatorBlock (``resnet``, ``orig`` or ``skip``: fromRGB,
3x3 conv, 3x3 conv with FIR down 2, 1x1 residual down 2 scaled by sqrt 0.5), then the 4x4 epilogue: minibatch
standard deviation, 3x3 conv, FC, FC to one logit, or to ``cmap_dim`` features projected onto the class
embedding of its own mapping network when c_dim > 0.

fp16: the blocks of the ``num_fp16_res`` highest resolutions compute in float16 on CUDA only (the reference uses
them on any device; on the CPU half precision is slower and less exact, so vgzoo computes those blocks in
float32 there, which is what the reference gives with ``force_fp32=True``).

The reference's resampling and fused bias/activation kernels are CUDA plugins whose CPU path is a slow
reference (zero insertion followed by a dense 2-D filter). They are written here in plain torch ops so that they
run on any device, trace for export and need no compiler: upsampling is one depthwise transposed convolution
(no zero insertion), downsampling one strided depthwise convolution. The arithmetic is the reference's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vgzoo.layers import derived
from vgzoo.layers.exporting import is_exporting

__all__ = [
    "ACTIVATIONS",
    "NOISE_MODES",
    "ARCHITECTURES",
    "bias_act",
    "setup_filter",
    "upfirdn2d",
    "upsample2d",
    "downsample2d",
    "conv2d_resample",
    "modulated_conv2d",
    "normalize_2nd_moment",
    "FullyConnectedLayer",
    "Conv2dLayer",
    "MappingNetwork",
    "SynthesisLayer",
    "ToRGBLayer",
    "SynthesisBlock",
    "SynthesisNetwork",
    "Generator",
    "DiscriminatorBlock",
    "MinibatchStdLayer",
    "DiscriminatorEpilogue",
    "Discriminator",
]

NOISE_MODES = ("random", "const", "none")
ARCHITECTURES = ("orig", "skip", "resnet")
_SQRT2 = math.sqrt(2.0)
_SQRT_HALF = math.sqrt(0.5)

# name -> (function, default gain): the reference's activation table (``bias_act.activation_funcs``).
ACTIVATIONS: dict[str, tuple[Any, float]] = {
    "linear": (lambda x: x, 1.0),
    "relu": (F.relu, _SQRT2),
    "lrelu": (lambda x: F.leaky_relu(x, 0.2), _SQRT2),
    "tanh": (torch.tanh, 1.0),
    "sigmoid": (torch.sigmoid, 1.0),
    "elu": (F.elu, 1.0),
    "selu": (F.selu, 1.0),
    "softplus": (F.softplus, 1.0),
    "swish": (lambda x: torch.sigmoid(x) * x, _SQRT2),
}


def _check_choice(what: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise ValueError(f"stylegan2: {what}={value!r} is not one of {tuple(choices)}; pick one of those.")


# ------------------------------------------------------------------------------------------------ ops
def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, act: str = "linear", gain: float | None = None,
             clamp: float | None = None) -> torch.Tensor:
    """``clamp(act(x + b) * gain)`` with the bias along dim 1 and the activation's default gain unless given."""
    func, default_gain = ACTIVATIONS[act]
    if b is not None:
        x = x + b.reshape([-1 if i == 1 else 1 for i in range(x.ndim)])
    x = func(x)
    gain = default_gain if gain is None else float(gain)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def setup_filter(taps: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """A 2-D FIR filter from 1-D taps (their outer product) normalised to unit DC gain, as the reference keeps it."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim == 1:
        f = torch.outer(f, f)
    if f.ndim != 2 or f.numel() == 0:
        raise ValueError(f"stylegan2: a resampling filter must be 1-D or 2-D taps; got shape {tuple(f.shape)}.")
    return f / f.sum()


def _padding4(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    """``(x_before, x_after, y_before, y_after)`` from one int, ``[x, y]`` or four ints."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    if len(padding) == 2:
        return padding[0], padding[0], padding[1], padding[1]
    px0, px1, py0, py1 = padding
    return px0, px1, py0, py1


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up: int = 1, down: int = 1,
              padding: int | Sequence[int] = 0, gain: float = 1.0, flip_filter: bool = False) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with the 2-D FIR filter ``f``, keep every ``down``-th pixel.

    The reference's definition (padding is with respect to the upsampled image; negative padding crops). The
    zero insertion and the filter are one depthwise transposed convolution of stride ``up``, whose full output
    is then padded or cropped to the same window, so no zero-stuffed tensor is ever built.
    """
    if f is None:
        f = torch.ones(1, 1, dtype=torch.float32, device=x.device)
    px0, px1, py0, py1 = _padding4(padding)
    channels = x.shape[1]
    f = (f * gain).to(x.dtype)  # a 2-D filter takes the gain once (the reference: gain ** (ndim / 2))
    fh, fw = f.shape
    if up > 1:
        kernel = f.flip([0, 1]) if flip_filter else f
        x = F.conv_transpose2d(x, kernel[None, None].expand(channels, 1, fh, fw), stride=up, groups=channels)
        x = F.pad(x, [px0 - fw + 1, px1 + up - fw, py0 - fh + 1, py1 + up - fh])
        return x[:, :, ::down, ::down] if down > 1 else x
    x = F.pad(x, [px0, px1, py0, py1])
    kernel = f if flip_filter else f.flip([0, 1])  # conv2d correlates; a convolution with f flips it
    return F.conv2d(x, kernel[None, None].expand(channels, 1, fh, fw), stride=down, groups=channels)


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2, gain: float = 1.0) -> torch.Tensor:
    """Upsample by ``up`` with the FIR filter ``f``, padded so the output is exactly ``up`` times the input."""
    fh, fw = f.shape
    padding = [(fw + up - 1) // 2, (fw - up) // 2, (fh + up - 1) // 2, (fh - up) // 2]
    return upfirdn2d(x, f, up=up, padding=padding, gain=gain * up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2) -> torch.Tensor:
    """Downsample by ``down`` with the FIR filter ``f``, padded so the output is exactly 1 / ``down`` the input."""
    fh, fw = f.shape
    padding = [(fw - down + 1) // 2, (fw - down) // 2, (fh - down + 1) // 2, (fh - down) // 2]
    return upfirdn2d(x, f, down=down, padding=padding)


def _conv(x: torch.Tensor, w: torch.Tensor, stride: int = 1, padding: int | Sequence[int] = 0, groups: int = 1,
          flip_weight: bool = True) -> torch.Tensor:
    if not flip_weight:  # conv2d correlates; the reference's flip_weight=False asks for a true convolution
        w = w.flip([2, 3])
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def upsampling_kernel(w: torch.Tensor, groups: int = 1, flip_weight: bool = True) -> torch.Tensor:
    """The kernel of :func:`conv2d_resample`'s strided transposed convolution when ``w`` (larger than 1x1) goes
    up: in and out channels swapped per group, and flipped where ``flip_weight`` (then a copy of the weight)."""
    out_channels, in_per_group, kh, kw = w.shape
    if groups == 1:
        w = w.transpose(0, 1)
    else:
        w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
        w = w.reshape(groups * in_per_group, out_channels // groups, kh, kw)
    return w.flip([2, 3]) if flip_weight else w


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1, down: int = 1,
                    padding: int = 0, groups: int = 1, flip_weight: bool = True,
                    up_kernel: torch.Tensor | None = None) -> torch.Tensor:
    """A 2-D convolution with FIR up- or downsampling, padded once (the reference's ``conv2d_resample``).

    Each case takes the reference's order of operations: a 1x1 kernel resamples before (down) or after (up) the
    convolution; a larger kernel goes down with a strided convolution after the filter and up with a strided
    transposed convolution before it. ``up_kernel``: that transposed convolution's kernel, already made by
    :func:`upsampling_kernel` (a run of calls makes it once).
    """
    out_channels, in_per_group, kh, kw = w.shape
    fh, fw = (1, 1) if f is None else f.shape
    px0 = px1 = py0 = py1 = padding
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    pad = [px0, px1, py0, py1]

    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=pad)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=pad, gain=up * up)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=pad)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)
    if up > 1:
        kernel = upsampling_kernel(w, groups, flip_weight) if up_kernel is None else up_kernel
        px0, px1, py0, py1 = px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)
        pxt, pyt = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
        x = F.conv_transpose2d(x, kernel, stride=up, padding=[pyt, pxt], groups=groups)
        x = upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up * up)
        return upfirdn2d(x, f, down=down) if down > 1 else x
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)
    x = upfirdn2d(x, None, padding=pad)
    return _conv(x, w, groups=groups, flip_weight=flip_weight)


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """``x`` scaled to unit mean square along ``dim`` (the mapping network's input normalisation)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     noise: torch.Tensor | None = None, up: int = 1, down: int = 1, padding: int = 0,
                     resample_filter: torch.Tensor | None = None, demodulate: bool = True,
                     flip_weight: bool = True, fused_modconv: bool = True) -> torch.Tensor:
    """StyleGAN2's weight (de)modulation: the convolution of ``x`` with ``weight`` scaled per sample by ``styles``.

    Fused: one grouped convolution with per-sample weights (inference). Not fused: the activations are scaled
    before and after one shared convolution (training, and half precision with a batch over one).
    """
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:  # pre-normalise so that float16 does not overflow
        weight = weight * (1 / math.sqrt(in_channels * kh * kw)
                           / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    w = dcoefs = None
    if fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, -1, 1, 1)
    if demodulate and fused_modconv:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        w = w * dcoefs.reshape(batch_size, -1, 1, 1, 1)
    elif demodulate:
        # the same sum over (in, kh, kw) of (weight * style)^2, as styles^2 @ (weight^2 summed over the kernel):
        # no per-sample weight tensor (batch x out x in x kh x kw) to build and reduce, and the kernel sums are the
        # weight's alone (once per inference run: vgzoo.layers.derived)
        energy = derived(weight, "kernel energy", lambda: weight.square().sum(dim=[2, 3]).t())
        dcoefs = (styles.square() @ energy + 1e-8).rsqrt()

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        device = x.device.type  # the weight in the dtype the convolution runs in (autocast's, where it is on)
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
        w = derived(weight, dtype, lambda: weight.to(dtype))
        kernel = None
        if up > 1 and (kh, kw) != (1, 1):  # the transposed convolution's kernel, a copy of the weight
            kernel = derived(weight, (dtype, "up", flip_weight), lambda: upsampling_kernel(w, 1, flip_weight))
        x = conv2d_resample(x, w, f=resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight,
                            up_kernel=kernel)
        if demodulate and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x, dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1))
        if demodulate:
            return x * dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
        if noise is not None:
            return x + noise.to(x.dtype)
        return x

    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding,
                        groups=batch_size, flip_weight=flip_weight)
    x = x.reshape(batch_size, -1, *x.shape[2:])
    return x + noise if noise is not None else x


# --------------------------------------------------------------------------------------------- layers
class FullyConnectedLayer(nn.Module):
    """A linear layer with equalised learning rate: weights stored ``N(0, 1) / lr_multiplier``, scaled at run time."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0) -> None:
        super().__init__()
        _check_choice("activation", activation, tuple(ACTIVATIONS))
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)


class Conv2dLayer(nn.Module):
    """A convolution with equalised learning rate, optional FIR up/downsampling, bias, activation and clamp."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1,
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: float | None = None,
                 channels_last: bool = False, trainable: bool = True) -> None:
        super().__init__()
        _check_choice("activation", activation, tuple(ACTIVATIONS))
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATIONS[activation][1]
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        bias_value = torch.zeros([out_channels]) if bias else None
        if trainable:  # Freeze-D keeps the first layers of D as buffers: the same keys, no gradient
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(bias_value) if bias_value is not None else None
        else:
            self.register_buffer("weight", weight)
            if bias_value is not None:
                self.register_buffer("bias", bias_value)
            else:
                self.bias = None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(x, w.to(x.dtype), f=self.resample_filter, up=self.up, down=self.down,
                            padding=self.padding, flip_weight=self.up == 1)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


# ------------------------------------------------------------------------------------------- generator
class MappingNetwork(nn.Module):
    """z (and the class label c) -> the intermediate latent w, with its tracked average for truncation.

    ``num_ws=None`` gives one w per sample (the discriminator's label embedding); otherwise w is broadcast to
    ``num_ws`` copies, one per synthesis layer.
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int = 8,
                 embed_features: int | None = None, layer_features: int | None = None, activation: str = "lrelu",
                 lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.995) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation=activation,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, skip_w_avg_update: bool = False) -> torch.Tensor:
        x = None
        if self.z_dim > 0:
            _check_shape("z", z, [None, self.z_dim])
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            _check_shape("c", c, [None, self.c_dim])
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if self.w_avg_beta is not None and self.training and not skip_w_avg_update:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            if self.w_avg_beta is None:
                raise ValueError("stylegan2: truncation needs the tracked w_avg, which this mapping network "
                                 "does not keep (w_avg_beta=None); use truncation_psi=1.")
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                head = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
                x = torch.cat([head, x[:, truncation_cutoff:]], dim=1)
        return x


def _check_shape(what: str, x: torch.Tensor | None, shape: list[int | None]) -> None:
    if x is None or x.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, x.shape, strict=True)):
        got = None if x is None else tuple(x.shape)
        want = tuple("N" if s is None else s for s in shape)
        raise ValueError(f"stylegan2: {what} must have shape {want}; got {got}.")


class SynthesisLayer(nn.Module):
    """A modulated 3x3 convolution (optionally upsampling), per-pixel noise of learned strength, bias, lrelu."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3,
                 up: int = 1, use_noise: bool = True, activation: str = "lrelu",
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: float | None = None,
                 channels_last: bool = False) -> None:
        super().__init__()
        _check_choice("activation", activation, tuple(ACTIVATIONS))
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation][1]
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        self.weight = nn.Parameter(weight)
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", fused_modconv: bool = True,
                gain: float = 1.0) -> torch.Tensor:
        _check_choice("noise_mode", noise_mode, NOISE_MODES)
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device)
            noise = noise * self.noise_strength
        if self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=self.up == 1,
                             fused_modconv=fused_modconv)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    """A modulated (not demodulated) 1x1 convolution to image channels."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None, channels_last: bool = False) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


def _block_dtype(use_fp16: bool, force_fp32: bool, device: torch.device) -> torch.dtype:
    """float16 for an fp16 block on CUDA unless forced to float32; float32 everywhere else."""
    return torch.float16 if use_fp16 and not force_fp32 and device.type == "cuda" else torch.float32


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: (constant | up-conv) -> conv -> toRGB added to the upsampled image."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None, use_fp16: bool = False, fp16_channels_last: bool = False,
                 **layer_kwargs: Any) -> None:
        super().__init__()
        _check_choice("architecture", architecture, ARCHITECTURES)
        self.in_channels, self.w_dim, self.resolution = in_channels, w_dim, resolution
        self.img_channels, self.is_last, self.architecture = img_channels, is_last, architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp,
                                        channels_last=self.channels_last, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
                                    conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp,
                                    channels_last=self.channels_last)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, force_fp32: bool = False,
                fused_modconv: bool | None = None, **layer_kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        w_iter = iter(ws.unbind(dim=1))
        dtype = _block_dtype(self.use_fp16, force_fp32, ws.device)
        memory_format = torch.channels_last if self.channels_last and not force_fp32 else torch.contiguous_format
        if fused_modconv is None:  # per-sample weights for inference; scaled activations for training
            # and for export (one group per sample cannot take a dynamic batch; the same arithmetic up to rounding),
            # and under autocast, where the grouped convolution of per-sample weights is the slower of the two (the
            # reference's fp32 inference keeps its fused path, so its pixels are unchanged)
            fused_modconv = (not self.training and not is_exporting()
                             and not torch.is_autocast_enabled(ws.device.type)
                             and (dtype == torch.float32 or int(ws.shape[0]) == 1))

        if self.in_channels == 0:
            x = self.const.to(dtype=dtype, memory_format=memory_format)
            x = x.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        else:
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=_SQRT_HALF)
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, gain=_SQRT_HALF, **layer_kwargs)
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)

        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        return x, img


def _channels(channel_base: int, channel_max: int, resolutions: Sequence[int]) -> dict[int, int]:
    return {res: min(channel_base // res, channel_max) for res in resolutions}


def _fp16_resolution(img_resolution: int, num_fp16_res: int) -> int:
    """The lowest resolution computed in float16: the ``num_fp16_res`` highest ones, never below 8."""
    return max(2 ** (int(math.log2(img_resolution)) + 1 - num_fp16_res), 8)


def _check_resolution(img_resolution: int) -> None:
    if not isinstance(img_resolution, int) or img_resolution < 4 or img_resolution & (img_resolution - 1):
        raise ValueError(f"stylegan2: img_resolution must be a power of two >= 4; got {img_resolution!r}.")


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> images (N, img_channels, img_resolution, img_resolution)."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_fp16_res: int = 0, **block_kwargs: Any) -> None:
        super().__init__()
        _check_resolution(img_resolution)
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.img_resolution_log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(2, self.img_resolution_log2 + 1)]
        channels = _channels(channel_base, channel_max, self.block_resolutions)
        fp16_resolution = _fp16_resolution(img_resolution, num_fp16_res)
        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = res == img_resolution
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim, resolution=res,
                                   img_channels=img_channels, is_last=is_last, use_fp16=res >= fp16_resolution,
                                   **block_kwargs)
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f"b{res}", block)

    def forward(self, ws: torch.Tensor, **block_kwargs: Any) -> torch.Tensor:
        _check_shape("ws", ws, [None, self.num_ws, self.w_dim])
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, block_ws, **block_kwargs)
        return img


class Generator(nn.Module):
    """z (N, z_dim), c (N, c_dim) -> images in about [-1, 1]: ``synthesis(mapping(z, c, truncation_psi, ...))``.

    Keyword arguments after the truncation go to the synthesis network: ``noise_mode`` (``random``, ``const`` or
    ``none``), ``force_fp32``, ``fused_modconv``.
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict[str, Any] | None = None, synthesis_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **(synthesis_kwargs or {}))
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      **(mapping_kwargs or {}))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, **synthesis_kwargs: Any) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)


# --------------------------------------------------------------------------------------- discriminator
class DiscriminatorBlock(nn.Module):
    """One resolution of the discriminator: [fromRGB] -> 3x3 conv -> 3x3 conv down 2 (+ 1x1 residual down 2)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int, img_channels: int,
                 first_layer_idx: int, architecture: str = "resnet", activation: str = "lrelu",
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: float | None = None,
                 use_fp16: bool = False, fp16_channels_last: bool = False, freeze_layers: int = 0) -> None:
        super().__init__()
        _check_choice("architecture", architecture, ARCHITECTURES)
        if in_channels not in (0, tmp_channels):
            raise ValueError(f"stylegan2: a discriminator block takes 0 or {tmp_channels} input channels; "
                             f"got {in_channels}.")
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, img_channels
        self.first_layer_idx, self.architecture = first_layer_idx, architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_layers = 0

        def trainable() -> bool:  # Freeze-D: the first freeze_layers layers of D are not trained
            trainable_layer = self.first_layer_idx + self.num_layers >= freeze_layers
            self.num_layers += 1
            return trainable_layer

        common = dict(activation=activation, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, trainable=trainable(), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, trainable=trainable(), **common)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, down=2, trainable=trainable(),
                                 resample_filter=resample_filter, **common)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    trainable=trainable(), resample_filter=resample_filter,
                                    channels_last=self.channels_last)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None,
                force_fp32: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        device = (x if x is not None else img).device
        dtype = _block_dtype(self.use_fp16, force_fp32, device)
        memory_format = torch.channels_last if self.channels_last and not force_fp32 else torch.contiguous_format
        if x is not None:
            x = x.to(dtype=dtype, memory_format=memory_format)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=_SQRT_HALF)
            x = self.conv0(x)
            x = self.conv1(x, gain=_SQRT_HALF)
            x = y + x
        else:
            x = self.conv0(x)
            x = self.conv1(x)
        return x, img


class MinibatchStdLayer(nn.Module):
    """Appends the standard deviation across groups of ``group_size`` samples as ``num_channels`` feature maps."""

    def __init__(self, group_size: int | None, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        group = min(self.group_size, n) if self.group_size is not None else n
        if n % group:
            raise ValueError(f"stylegan2: the discriminator's minibatch-stddev groups of {group} need a batch size "
                             f"divisible by {group}; got {n}. Use a multiple of {group}.")
        f = self.num_channels
        y = x.reshape(group, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = y.square().mean(dim=0)
        y = (y + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4])
        y = y.reshape(-1, f, 1, 1).repeat(group, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """The 4x4 end of D: [fromRGB] -> minibatch stddev -> 3x3 conv -> FC -> FC (-> projection onto the label)."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1,
                 activation: str = "lrelu", conv_clamp: float | None = None) -> None:
        super().__init__()
        _check_choice("architecture", architecture, ARCHITECTURES)
        self.in_channels, self.cmap_dim, self.resolution = in_channels, cmap_dim, resolution
        self.img_channels, self.architecture = img_channels, architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None,
                force_fp32: bool = False) -> torch.Tensor:
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(dtype=torch.float32, memory_format=torch.contiguous_format))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """images (N, img_channels, R, R), c (N, c_dim) -> one logit per image."""

    def __init__(self, c_dim: int, img_resolution: int, img_channels: int, architecture: str = "resnet",
                 channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 0,
                 conv_clamp: float | None = None, cmap_dim: int | None = None,
                 block_kwargs: dict[str, Any] | None = None, mapping_kwargs: dict[str, Any] | None = None,
                 epilogue_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        _check_resolution(img_resolution)
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.img_resolution_log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(self.img_resolution_log2, 2, -1)]
        channels = _channels(channel_base, channel_max, self.block_resolutions + [4])
        fp16_resolution = _fp16_resolution(img_resolution, num_fp16_res)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0
        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(channels[res] if res < img_resolution else 0, channels[res],
                                       channels[res // 2], resolution=res, first_layer_idx=layer_idx,
                                       use_fp16=res >= fp16_resolution, **(block_kwargs or {}), **common)
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          **(mapping_kwargs or {}))
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, **(epilogue_kwargs or {}),
                                        **common)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None, **block_kwargs: Any) -> torch.Tensor:
        _check_shape("img", img, [None, self.img_channels, self.img_resolution, self.img_resolution])
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, **block_kwargs)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)
