"""Multi-head self-attention, as in "Attention Is All You Need" (Vaswani et al., 2017).

Two interchangeable paths compute ``softmax(Q K^T / sqrt(d_head)) V``:

- :func:`attention_sdpa` calls ``torch.nn.functional.scaled_dot_product_attention`` (fused kernels,
  the default for speed);
- :func:`attention_math` spells the operation out and also returns the attention weights, which
  attention maps, attention rollout and the naive-versus-fused operator benchmark need.

:class:`Attention` is the module used by the Vision Transformer; ``attn.fused_attn = False`` (or
:func:`set_fused_attention`) switches a model to the math path.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .exporting import is_exporting

__all__ = ["Attention", "attention_math", "attention_sdpa", "set_fused_attention"]


def attention_math(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
    training: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention computed explicitly.

    Args:
        q: queries ``(..., S_q, d)``.
        k: keys ``(..., S_k, d)``.
        v: values ``(..., S_k, d_v)``.
        attn_mask: optional boolean mask (True = attend) or additive float mask broadcastable to
            ``(..., S_q, S_k)``.
        dropout_p: dropout on the attention weights, applied only when ``training`` is True.
        scale: the logit scale; ``1 / sqrt(d)`` when None.
        training: whether dropout is active.

    Returns:
        ``(out, weights)``: ``out`` of shape ``(..., S_q, d_v)`` and the softmax weights
        ``(..., S_q, S_k)`` (before dropout). Memory is O(S_q * S_k).
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    logits = (q * scale) @ k.transpose(-2, -1)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            logits = logits.masked_fill(~attn_mask, float("-inf"))
        else:
            logits = logits + attn_mask
    weights = logits.softmax(dim=-1)
    dropped = F.dropout(weights, p=dropout_p) if (training and dropout_p > 0) else weights
    return dropped @ v, weights


def attention_sdpa(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
    training: bool = False,
) -> torch.Tensor:
    """Scaled dot-product attention through PyTorch's fused kernel; same arguments as :func:`attention_math`.

    On the CPU, queries and keys of another width than the values (SAGAN's attention: ``d = d_v / 4``) are
    zero-padded to one width (:func:`_one_head_width`): the CPU's fused kernel takes one width only, and without
    it the call falls back to the unfused path, which materialises the weights and, under bf16 autocast, runs the
    softmax in fp32.

    Returns:
        ``out`` of shape ``(..., S_q, d_v)`` (the weights are never materialised).
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    q, k, v, d_v = _one_head_width(q, k, v)
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, dropout_p=dropout_p if training else 0.0, scale=scale
    )
    return out if out.shape[-1] == d_v else out[..., :d_v]


def _one_head_width(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """``q``, ``k`` and ``v`` zero-padded to one head width on the CPU, and ``v``'s own width.

    Zeros added to both queries and keys leave every dot product as it was; zeros added to the values give output
    columns of zeros, cut off by the caller. Elsewhere (CUDA's kernels take the two widths; a graph being exported
    keeps the operation as written) the tensors are returned as they are.
    """
    d_qk, d_v = q.shape[-1], v.shape[-1]
    if d_qk == d_v or q.device.type != "cpu" or is_exporting():
        return q, k, v, d_v
    if d_qk < d_v:
        return F.pad(q, (0, d_v - d_qk)), F.pad(k, (0, d_v - d_qk)), v, d_v
    return q, k, F.pad(v, (0, d_qk - d_v)), d_v


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection and an output projection.

    Args:
        dim: token width D; must be divisible by ``num_heads``.
        num_heads: number of heads h (head width D / h).
        qkv_bias: bias on the fused ``qkv`` Linear(D, 3D).
        attn_drop: dropout on the attention weights (training only).
        proj_drop: dropout after the output projection.
        fused_attn: use ``scaled_dot_product_attention`` (True) or the explicit math path (False).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"Attention: dim {dim} is not divisible by num_heads {num_heads}; "
                             f"pick a divisor of {dim}.")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.fused_attn = fused_attn
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop_p = float(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(
        self, x: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend over the tokens of ``x`` ``(B, S, D)``.

        Args:
            x: tokens ``(B, S, D)``.
            return_attention: also return the weights ``(B, h, S, S)``; forces the math path.

        Returns:
            ``(B, S, D)``, or ``((B, S, D), weights)`` when ``return_attention``.
        """
        b, s, d = x.shape
        qkv = self.qkv(x).reshape(b, s, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        weights = None
        if self.fused_attn and not return_attention:
            out = attention_sdpa(q, k, v, dropout_p=self.attn_drop_p, scale=self.scale, training=self.training)
        else:
            out, weights = attention_math(q, k, v, dropout_p=self.attn_drop_p, scale=self.scale, training=self.training)
        out = self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, s, d)))
        return (out, weights) if return_attention else out


def set_fused_attention(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Switch every :class:`Attention` inside ``module`` to the fused (True) or math (False) path."""
    for m in module.modules():
        if isinstance(m, Attention):
            m.fused_attn = enabled
    return module
