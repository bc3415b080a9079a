"""BigGAN-deep's building blocks (Brock et al. 2019), named for what they do.

- :func:`sn`: spectral normalisation (Miyato et al. 2018) with BigGAN's epsilon, torch's parametrization.
- :class:`TruncationBatchNorm`: batch norm whose inference statistics are stored for ``n_stats`` truncation values
  in [0, 1] and looked up at the requested truncation; conditional (gain and bias linear in the condition vector)
  or plain (a learnt affine). In training it normalises with the batch's statistics and never updates the table:
  the table is filled by :func:`standing_statistics` ("standing statistics", BigGAN's Appendix C).
- :class:`SelfAttention`: SAGAN's attention (Zhang et al. 2019) with max-pooled keys and values and no 1/sqrt(d).
- :class:`GeneratorBlock`: the bottleneck residual block of BigGAN-deep with channel dropping on the skip path.
- :class:`DiscriminatorBlock`: BigGAN's residual down-sampling block of the discriminator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vgzoo.layers import attention_sdpa

__all__ = ["sn", "stats_position", "TruncationBatchNorm", "SelfAttention", "GeneratorBlock", "DiscriminatorBlock",
           "standing_statistics"]


def sn(module: nn.Module, eps: float) -> nn.Module:
    """``module`` with its weight spectrally normalised (one power iteration per training forward)."""
    return nn.utils.parametrizations.spectral_norm(module, eps=eps)


def stats_position(truncation: float, n_stats: int) -> tuple[int, float]:
    """``(index, coef)`` of the stored statistics used at ``truncation``, computed as the reference does.

    Row ``i`` holds the statistics of truncation ``i / (n_stats - 1)``. The reference blends rows ``i`` and
    ``i + 1`` as ``coef * row[i] + (1 - coef) * row[i + 1]`` with ``coef`` the fractional part of
    ``truncation / step`` (the weights run opposite to a linear interpolation); the published images are made
    that way, so a port that reproduces them does the same, with the same float arithmetic.
    """
    truncation = float(truncation)
    if not 0.0 < truncation <= 1.0:
        raise ValueError(f"truncation must be in (0, 1] (the statistics are stored for [0, 1]); got {truncation!r}.")
    coef, index = math.modf(truncation / (1.0 / (n_stats - 1)))
    return int(index), coef


class TruncationBatchNorm(nn.Module):
    """Batch norm with per-truncation inference statistics; conditional on a vector or with a plain affine.

    Args:
        num_features: channels.
        cond_dim: size of the condition vector (conditional); None for a plain learnt ``weight`` / ``bias``.
        n_stats: how many truncation values (evenly spaced in [0, 1]) the statistics are stored for.
        eps: added to the variance (and the spectral norm's epsilon of the gain and bias maps).
    """

    def __init__(self, num_features: int, cond_dim: int | None = None, n_stats: int = 51, eps: float = 1e-4) -> None:
        super().__init__()
        self.num_features, self.n_stats, self.eps = num_features, n_stats, eps
        self.register_buffer("running_means", torch.zeros(n_stats, num_features))
        self.register_buffer("running_vars", torch.ones(n_stats, num_features))
        self.conditional = cond_dim is not None
        if self.conditional:
            self.gain = sn(nn.Linear(cond_dim, num_features, bias=False), eps)
            self.bias = sn(nn.Linear(cond_dim, num_features, bias=False), eps)
        else:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        self.collect: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # batch statistics while standing

    def statistics(self, truncation: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The (mean, var) used at ``truncation`` (see :func:`stats_position`)."""
        index, coef = stats_position(truncation, self.n_stats)
        if coef == 0.0:
            return self.running_means[index], self.running_vars[index]
        mean = self.running_means[index] * coef + self.running_means[index + 1] * (1 - coef)
        var = self.running_vars[index] * coef + self.running_vars[index + 1] * (1 - coef)
        return mean, var

    def forward(self, x: torch.Tensor, truncation: float, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.training:
            dims = (0, 2, 3)
            mean, var = x.mean(dims), x.var(dims, unbiased=False)
            if self.collect is not None:
                self.collect.append((mean.detach(), var.detach()))
        else:
            mean, var = self.statistics(truncation)
        if self.conditional:  # per-sample gain and bias, (B, C)
            scale = (1 + self.gain(cond)) * torch.rsqrt(var + self.eps)
            shift = self.bias(cond) - mean * scale
        else:
            scale = (self.weight * torch.rsqrt(var + self.eps)).expand(x.shape[0], -1)
            shift = (self.bias - mean * scale[0]).expand(x.shape[0], -1)
        if not self.training:  # inference under autocast: stay in the convs' reduced dtype, not promote to fp32
            scale, shift = scale.to(x.dtype), shift.to(x.dtype)
        # always a new tensor, which the blocks' ReLU then overwrites: one activation-sized allocation fewer
        return torch.addcmul(shift[:, :, None, None], x, scale[:, :, None, None])


class SelfAttention(nn.Module):
    """SAGAN self-attention: queries at every position, keys and values max-pooled 2x2, gated by ``gamma``.

    The attention is ``softmax(q k^T) v`` without the 1/sqrt(d) of transformers (scale 1), computed by PyTorch's
    fused kernel through :func:`vgzoo.layers.attention_sdpa`.
    """

    def __init__(self, channels: int, eps: float = 1e-4) -> None:
        super().__init__()
        self.query = sn(nn.Conv2d(channels, channels // 8, 1, bias=False), eps)
        self.key = sn(nn.Conv2d(channels, channels // 8, 1, bias=False), eps)
        self.value = sn(nn.Conv2d(channels, channels // 2, 1, bias=False), eps)
        self.out = sn(nn.Conv2d(channels // 2, channels, 1, bias=False), eps)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        # one head: (B, 1, positions, channels), the 4-D layout the fused kernel and ONNX's exporter take
        q = self.query(x).flatten(2).transpose(1, 2)[:, None]  # (B, 1, HW, C/8)
        k = F.max_pool2d(self.key(x), 2).flatten(2).transpose(1, 2)[:, None]  # (B, 1, HW/4, C/8)
        v = F.max_pool2d(self.value(x), 2).flatten(2).transpose(1, 2)[:, None]  # (B, 1, HW/4, C/2)
        attended = attention_sdpa(q, k, v, scale=1.0)[:, 0].transpose(1, 2).reshape(b, -1, h, w)
        out = self.out(attended)
        # inference under autocast: the fp32 gamma would promote the residual stream, and every later block, to fp32
        return x + (self.gamma if self.training else self.gamma.to(out.dtype)) * out


class GeneratorBlock(nn.Module):
    """BigGAN-deep's generator block: BN-ReLU-conv1x1 (reduce), two BN-ReLU-conv3x3, BN-ReLU-conv1x1 (expand).

    Every batch norm is conditional on the condition vector. An upsampling block doubles the side (nearest)
    before the first 3x3 conv and on the skip path; a block that narrows keeps the first ``out_chans`` channels
    of its input on the skip path ("channel dropping") instead of a learnt projection.
    """

    def __init__(self, in_chans: int, out_chans: int, cond_dim: int, upsample: bool, reduction: int = 4,
                 n_stats: int = 51, eps: float = 1e-4) -> None:
        super().__init__()
        if out_chans > in_chans:
            raise ValueError(f"a BigGAN-deep block only keeps or drops channels; got {in_chans} -> {out_chans}.")
        mid = in_chans // reduction
        self.upsample, self.out_chans, self.drop = upsample, out_chans, in_chans != out_chans
        widths = [(in_chans, mid, 1), (mid, mid, 3), (mid, mid, 3), (mid, out_chans, 1)]
        self.norms = nn.ModuleList(TruncationBatchNorm(cin, cond_dim, n_stats, eps) for cin, _, _ in widths)
        self.convs = nn.ModuleList(sn(nn.Conv2d(cin, cout, k, padding=k // 2), eps) for cin, cout, k in widths)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, truncation: float) -> torch.Tensor:
        h = x
        for i, (norm, conv) in enumerate(zip(self.norms, self.convs, strict=True)):
            h = F.relu(norm(h, truncation, cond), inplace=True)  # the norm's own new tensor (see TruncationBatchNorm)
            if i == 1 and self.upsample:
                h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = conv(h)
        skip = x[:, :self.out_chans] if self.drop else x
        if self.upsample:
            skip = F.interpolate(skip, scale_factor=2, mode="nearest")
        return h + skip


class DiscriminatorBlock(nn.Module):
    """BigGAN's discriminator block: [ReLU]-conv3x3-ReLU-conv3x3-avgpool, plus a 1x1-conv, pooled shortcut.

    The first block of the network takes images and skips the leading ReLU (``preactivation=False``).
    """

    def __init__(self, in_chans: int, out_chans: int, downsample: bool = True, preactivation: bool = True,
                 eps: float = 1e-4) -> None:
        super().__init__()
        self.downsample, self.preactivation = downsample, preactivation
        self.conv1 = sn(nn.Conv2d(in_chans, out_chans, 3, padding=1), eps)
        self.conv2 = sn(nn.Conv2d(out_chans, out_chans, 3, padding=1), eps)
        self.learnable_sc = in_chans != out_chans or downsample
        self.shortcut = sn(nn.Conv2d(in_chans, out_chans, 1), eps) if self.learnable_sc else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))
        skip = x
        if self.preactivation:  # BigGAN: conv then pool on the shortcut of pre-activated blocks, pool then conv first
            skip = self.shortcut(skip)
            if self.downsample:
                skip = F.avg_pool2d(skip, 2)
        else:
            if self.downsample:
                skip = F.avg_pool2d(skip, 2)
            skip = self.shortcut(skip)
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        return h + skip


@torch.no_grad()
def standing_statistics(generator: nn.Module, draw, rows: list[int] | None = None, batches: int = 4,
                        batch_size: int = 64) -> None:
    """Fill the inference statistics of every :class:`TruncationBatchNorm` in ``generator``, row by row.

    For row ``i`` (truncation ``t = i / (n_stats - 1)``) the generator runs ``batches`` batches of its own samples
    at that truncation, its batch norms normalising with batch statistics and everything else in eval mode (the
    spectral norms' vectors stay as they are), and the row becomes the mean over batches of the
    batch means and variances: BigGAN's standing statistics, so a trained model samples at any truncation the way
    the published ones do. ``draw(batch_size, truncation) -> (z, class_vector)`` gives the inputs (seeded by the
    caller); ``rows`` limits the work to some rows (all by default).

    It runs eagerly even when the generator was ``torch.compile``d: its forwards differ from training's (eval-mode
    spectral norms, a cached parametrization, batch statistics appended to each norm's ``collect`` list, a batch
    size and truncation of their own), so each would be a graph of its own, recompiled as the lists grow, until
    the recompile limit sends the training step itself back to eager.
    """
    norms = [m for m in generator.modules() if isinstance(m, TruncationBatchNorm)]
    if not norms:
        return
    n_stats = norms[0].n_stats
    was_training = generator.training
    generator.eval()
    for m in norms:
        m.training = True  # this module only: its gain and bias maps' spectral norms stay in eval mode
    try:
        # cached(): the spectral norms' weights, computed once for all the forwards
        with torch.compiler.set_stance("force_eager"), nn.utils.parametrize.cached():
            for row in range(n_stats) if rows is None else rows:
                truncation = row / (n_stats - 1)
                for m in norms:
                    m.collect = []
                for _ in range(batches):
                    z, classes = draw(batch_size, truncation)
                    generator(z, classes, max(truncation, 1e-8))
                for m in norms:
                    means, variances = zip(*m.collect, strict=True)
                    m.running_means[row] = torch.stack(means).mean(0)
                    m.running_vars[row] = torch.stack(variances).mean(0)
    finally:
        for m in norms:
            m.collect = None
        generator.train(was_training)
