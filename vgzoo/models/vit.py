"""The Vision Transformer of "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale"
(Dosovitskiy et al., ICLR 2021, arXiv:2010.11929), written for vgzoo, with attention rollout from
"Quantifying Attention Flow in Transformers" (Abnar & Zuidema, ACL 2020).

Patch embedding, a learned class token and absolute position embedding, L pre-norm encoder blocks
(``x + Attn(LN(x))``, ``x + MLP(LN(x))``, LayerNorm eps 1e-6), a final LayerNorm and a linear head on
the class token. The parameter names follow timm's ``VisionTransformer``, so timm checkpoints load
through :func:`vgzoo.convert.from_timm_vit` (the registered checkpoint filter) and vgzoo checkpoints
load back into timm.

Registered variants: ``vit_b16_scratch`` (ViT-B/16), ``vit_s16_scratch`` (ViT-S/16), ``vit_ti16_scratch``
(ViT-Ti/16).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .._registry import ModelFamily, PretrainedCfg, make_cfg
from ..layers.attention import Attention
from ..layers.drop import DropPath
from ..layers.exporting import is_exporting
from ..layers.mlp import Mlp
from ..layers.patch_embed import PatchEmbed
from ..layers.pos_embed import infer_grid_size, resample_abs_pos_embed
from ..protocols import Classifier, ZooModel

__all__ = ["TransformerBlock", "VisionTransformer", "checkpoint_filter_fn"]

LayerNorm = partial(nn.LayerNorm, eps=1e-6)


def _check_num_classes(num_classes) -> None:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0:
        raise ValueError(f"num_classes must be an int >= 0 (0 = no head), got {num_classes!r}.")


class TransformerBlock(nn.Module):
    """One pre-norm encoder block: ``x + DropPath(Attn(LN(x)))`` then ``x + DropPath(MLP(LN(x)))``."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        proj_drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop)
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=proj_drop)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(
        self, x: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if return_attention:
            y, weights = self.attn(self.norm1(x), return_attention=True)
            x = x + self.drop_path1(y)
            return x + self.drop_path2(self.mlp(self.norm2(x))), weights
        x = x + self.drop_path1(self.attn(self.norm1(x)))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


class VisionTransformer(ZooModel, Classifier):
    """ViT image classifier.

    Args:
        img_size: input size (an int means square); the position embedding holds its patch grid.
        patch_size: patch side P; the image sides must be multiples of it.
        in_chans: image channels.
        num_classes: classes of the head; 0 makes the head an identity (``forward`` returns features).
        embed_dim: token width D.
        depth: number of encoder blocks L.
        num_heads: attention heads h.
        mlp_ratio: MLP hidden width as a multiple of D.
        qkv_bias: bias on the fused qkv projection.
        drop_rate: dropout after the position embedding, in the MLPs, after attention projections and
            before the head.
        attn_drop_rate: dropout on the attention weights.
        drop_path_rate: stochastic depth, rising linearly from 0 to this value over the blocks.
        dynamic_img_size: accept any H, W divisible by P, resampling the position embedding per input.
    """

    num_prefix_tokens = 1

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        dynamic_img_size: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(in_chans, int) or in_chans <= 0:
            raise ValueError(f"in_chans must be a positive int, got {in_chans!r}.")
        _check_num_classes(num_classes)
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        self.dynamic_img_size = dynamic_img_size
        self.grad_checkpointing = False

        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim, dynamic_img_size=dynamic_img_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # linear 0 -> drop_path_rate
        self.blocks = nn.Sequential(
            *[
                TransformerBlock(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, rates[i])
                for i in range(depth)
            ]
        )
        self.norm = LayerNorm(embed_dim)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.init_weights()

        h, w = self.patch_embed.img_size
        self.pretrained_cfg: dict[str, Any] = {
            "input_size": (in_chans, h, w),
            "num_classes": num_classes,
            "mean": (0.5,) * in_chans,
            "std": (0.5,) * in_chans,
            "fixed_input_size": not dynamic_img_size,
        }

    # ------------------------------------------------------------------------------- initialisation
    def init_weights(self) -> None:
        """Truncated-normal (std 0.02) Linears and position embedding, zero biases, near-zero class token."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # ------------------------------------------------------------------------------- timm-style API
    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Parameters an optimizer factory should exclude from weight decay."""
        return {"pos_embed", "cls_token"}

    def get_classifier(self) -> nn.Module:
        """The classification head (an ``nn.Identity`` when ``num_classes == 0``)."""
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a freshly initialised one for ``num_classes`` (0 removes it)."""
        _check_num_classes(num_classes)
        self.num_classes = num_classes
        if num_classes > 0:
            head = nn.Linear(self.embed_dim, num_classes)
            nn.init.trunc_normal_(head.weight, std=0.02)
            nn.init.zeros_(head.bias)
            p = next(self.parameters())
            self.head = head.to(device=p.device, dtype=p.dtype)
        else:
            self.head = nn.Identity()
        self.pretrained_cfg["num_classes"] = num_classes

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass (less memory, more compute)."""
        self.grad_checkpointing = enable

    @property
    def size_multiple(self) -> int | None:
        """With ``dynamic_img_size``, image sides must be multiples of this (the export's size rule); else None."""
        ph, pw = self.patch_embed.patch_size
        return ph if self.dynamic_img_size and ph == pw else None

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor]:
        """A deterministic random image batch of the model's input size."""
        c, h, w = self.pretrained_cfg["input_size"]
        g = torch.Generator().manual_seed(0)
        p = next(self.parameters())
        return (torch.randn(batch_size, c, h, w, generator=g).to(device=p.device, dtype=p.dtype),)

    # ------------------------------------------------------------------------------- forward passes
    def grid_size(self, x: torch.Tensor) -> tuple[int, int]:
        """The patch grid (H/P, W/P) of an image batch."""
        ph, pw = self.patch_embed.patch_size
        return x.shape[-2] // ph, x.shape[-1] // pw

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Image ``(B, C, H, W)`` to tokens ``(B, 1 + S, D)``: patches, class token, position embedding."""
        grid = self.grid_size(x) if x.ndim == 4 else self.patch_embed.grid_size
        x = self.patch_embed(x)
        pos = self.pos_embed
        # exporting: always resample (the identity at the built size), so the graph takes every size
        if self.dynamic_img_size and (is_exporting() or grid != self.patch_embed.grid_size):
            pos = resample_abs_pos_embed(pos, grid, self.patch_embed.grid_size, self.num_prefix_tokens)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.pos_drop(x + pos)

    def _run_block(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, x, use_reentrant=False)
        return block(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised tokens ``(B, 1 + S, D)`` of the last block."""
        x = self.embed(x)
        for block in self.blocks:
            x = self._run_block(block, x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Class-token output to logits ``(B, num_classes)`` (or its ``(B, D)`` features with ``pre_logits``)."""
        x = self.head_drop(x[:, 0])
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of an image batch ``(B, C, H, W)``."""
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
        return_prefix_tokens: bool = False,
    ) -> list | tuple[torch.Tensor, list]:
        """Outputs of selected blocks, as timm's ``forward_intermediates``.

        Args:
            x: image batch.
            indices: None for every block, an int n for the last n blocks, or block indices
                (negative counts from the end).
            norm: apply the final LayerNorm to each intermediate.
            output_fmt: ``NCHW`` (patch tokens as a ``(B, D, H/P, W/P)`` map) or ``NLC`` (``(B, S, D)``).
            intermediates_only: return only the list.
            return_prefix_tokens: each entry becomes ``(patch_tokens, class_token (B, 1, D))``.

        Returns:
            ``(final_normed_tokens, intermediates)``, or ``intermediates`` alone.
        """
        if output_fmt not in ("NCHW", "NLC"):
            raise ValueError(f"output_fmt must be 'NCHW' or 'NLC', got {output_fmt!r}.")
        depth = len(self.blocks)
        take = self._block_indices(indices, depth)
        grid = self.grid_size(x)
        x = self.embed(x)
        last = max(take) if intermediates_only and take else depth - 1
        out = []
        for i, block in enumerate(self.blocks):
            if i > last:
                break
            x = self._run_block(block, x)
            if i in take:
                y = self.norm(x) if norm else x
                prefix, tokens = y[:, : self.num_prefix_tokens], y[:, self.num_prefix_tokens :]
                if output_fmt == "NCHW":
                    tokens = tokens.reshape(y.shape[0], grid[0], grid[1], -1).permute(0, 3, 1, 2).contiguous()
                out.append((tokens, prefix) if return_prefix_tokens else tokens)
        if intermediates_only:
            return out
        return self.norm(x), out

    @staticmethod
    def _block_indices(indices: int | Sequence[int] | None, depth: int) -> set[int]:
        if indices is None:
            return set(range(depth))
        if isinstance(indices, int):
            if not 0 < indices <= depth:
                raise ValueError(f"indices={indices}: asks for the last n blocks, n must be in 1..{depth}.")
            return set(range(depth - indices, depth))
        take = set()
        for i in indices:
            if not -depth <= i < depth:
                raise ValueError(f"block index {i} is out of range for a model with {depth} blocks "
                                 f"(-{depth}..{depth - 1}).")
            take.add(i % depth)
        return take

    # ------------------------------------------------------------------------------- attention maps
    def get_attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The softmax attention weights of every block, through the explicit math path.

        Returns:
            One ``(B, h, 1 + S, 1 + S)`` tensor per block (row = query token, column = key token; token 0 is
            the class token).
        """
        x = self.embed(x)
        maps = []
        for block in self.blocks:
            x, weights = block(x, return_attention=True)
            maps.append(weights)
        return maps

    @torch.no_grad()
    def attention_rollout(self, x: torch.Tensor, head_fusion: str = "mean", residual: float = 0.5) -> torch.Tensor:
        """Attention rollout (Abnar & Zuidema, 2020): how much the class token draws on each patch.

        Per block, the heads are fused, the residual connection is accounted for as
        ``residual * I + (1 - residual) * A`` and rows are renormalised; the blocks' matrices are then
        multiplied from the first to the last. The class token's row over the patch tokens is the map.

        Args:
            x: image batch.
            head_fusion: ``mean``, ``max`` or ``min`` over the heads.
            residual: weight of the identity (the skip connection), in [0, 1).

        Returns:
            ``(B, H/P, W/P)`` relevance maps scaled so that each map's maximum is 1.
        """
        fuse = {"mean": lambda a: a.mean(1), "max": lambda a: a.amax(1), "min": lambda a: a.amin(1)}
        if head_fusion not in fuse:
            raise ValueError(f"head_fusion must be one of {sorted(fuse)}, got {head_fusion!r}.")
        if not 0.0 <= residual < 1.0:
            raise ValueError(f"residual must be in [0, 1), got {residual}.")
        grid = self.grid_size(x)
        maps = self.get_attention_maps(x)
        tokens = maps[0].shape[-1]
        eye = torch.eye(tokens, device=x.device, dtype=torch.float32)
        rollout = eye.expand(x.shape[0], tokens, tokens)
        for weights in maps:
            a = residual * eye + (1.0 - residual) * fuse[head_fusion](weights.float())
            a = a / a.sum(dim=-1, keepdim=True)
            rollout = a @ rollout
        relevance = rollout[:, 0, self.num_prefix_tokens :].reshape(x.shape[0], *grid)
        return relevance / relevance.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]


# ------------------------------------------------------------------------------------- checkpoints
def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: VisionTransformer) -> dict[str, torch.Tensor]:
    """Make a timm or vgzoo ViT state dict fit ``model``: timm layout mapped, position embedding resampled.

    The position-embedding grid is resampled bicubically with antialiasing (class token kept) when the
    checkpoint was trained at another image size or patch grid. A checkpoint without a classifier keeps the
    model's freshly initialised head (with a warning).
    """
    from ..convert.timm_vit import from_timm_vit

    sd = from_timm_vit(state_dict)
    own = model.state_dict()
    pos = sd.get("pos_embed")
    if pos is not None and pos.shape != own["pos_embed"].shape and pos.shape[-1] == own["pos_embed"].shape[-1]:
        old = infer_grid_size(pos.shape[1], model.num_prefix_tokens)
        sd["pos_embed"] = resample_abs_pos_embed(pos, model.patch_embed.grid_size, old, model.num_prefix_tokens)
    if isinstance(model.head, nn.Linear) and "head.weight" not in sd and "head.bias" not in sd:
        warnings.warn(
            "The checkpoint has no classifier (head.weight/head.bias): the head is freshly initialised, train it "
            "before use.",
            stacklevel=3,
        )
        sd["head.weight"], sd["head.bias"] = own["head.weight"], own["head.bias"]
    return sd


# ------------------------------------------------------------------------------------- registration
_PAPER = "Dosovitskiy et al., An Image is Worth 16x16 Words, ICLR 2021, arXiv:2010.11929"


def _cfg(description: str, hf_hub_id: str, **facts: Any) -> PretrainedCfg:
    return make_cfg(interpolation="bicubic", paper=_PAPER, description=description, classifier="head",
                    first_conv="patch_embed.proj", hf_hub_id=hf_hub_id, source_format="timm", **facts)


_INCEPTION = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}
_IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
_CLIP = {"mean": (0.48145466, 0.4578275, 0.40821073), "std": (0.26862954, 0.26130258, 0.27577711)}

# The published timm weights of each variant, read off timm 1.0.31's pretrained configs (the
# plain class-token ViTs of vit_{base,small,tiny}_patch16_{224,384}): (image size, tag, classes, normalisation,
# licence). tests/test_pretrained.py checks the table against the installed timm.
_TIMM_TAGS = {
    "vit_base_patch16": [
        (224, "augreg2_in21k_ft_in1k", 1000, _INCEPTION, "apache-2.0"),
        (224, "augreg_in1k", 1000, _INCEPTION, "apache-2.0"),
        (224, "augreg_in21k", 21843, _INCEPTION, "apache-2.0"),
        (224, "augreg_in21k_ft_in1k", 1000, _INCEPTION, "apache-2.0"),
        (224, "bamboo", 115217, _CLIP, None),
        (224, "dino", 0, _IMAGENET, "apache-2.0"),
        (224, "mae", 0, _IMAGENET, "cc-by-nc-4.0"),
        (224, "orig_in21k", 0, _INCEPTION, "apache-2.0"),
        (224, "orig_in21k_ft_in1k", 1000, _INCEPTION, "apache-2.0"),
        (224, "sam_in1k", 1000, _INCEPTION, "apache-2.0"),
        (384, "augreg_in1k", 1000, _INCEPTION, "apache-2.0"),
        (384, "augreg_in21k_ft_in1k", 1000, _INCEPTION, "apache-2.0"),
        (384, "orig_in21k_ft_in1k", 1000, _INCEPTION, "apache-2.0"),
    ],
    "vit_small_patch16": [
        (224, "augreg_in1k", 1000, _INCEPTION, "apache-2.0"),
        (224, "augreg_in21k", 21843, _INCEPTION, "apache-2.0"),
        (224, "augreg_in21k_ft_in1k", 1000, _INCEPTION, "apache-2.0"),
        (224, "dino", 0, _IMAGENET, "apache-2.0"),
        (384, "augreg_in1k", 1000, _INCEPTION, "apache-2.0"),
        (384, "augreg_in21k_ft_in1k", 1000, _INCEPTION, "apache-2.0"),
    ],
    "vit_tiny_patch16": [
        (224, "augreg_in21k", 21843, _INCEPTION, "apache-2.0"),
        (224, "augreg_in21k_ft_in1k", 1000, _INCEPTION, "apache-2.0"),
        (384, "augreg_in21k_ft_in1k", 1000, _INCEPTION, "apache-2.0"),
    ],
}


def timm_name(timm_arch: str, size: int, tag: str) -> str:
    """The timm model name of a tag, e.g. ``vit_base_patch16_384.augreg_in1k``."""
    return f"{timm_arch}_{size}.{tag}"


def _tags(description: str, timm_arch: str, default: str) -> dict[str, PretrainedCfg]:
    """The variant's configs by tag, the default (timm's default tag for the 224 model) first.

    A 384 tag is keyed ``TAG_384`` (``vit_b16_scratch.augreg_in1k_384``), since timm publishes it under another
    architecture name; its image size and class count become architecture arguments.
    """
    cfgs = {}
    for size, tag, classes, norm, licence in _TIMM_TAGS[timm_arch]:
        key = tag if size == 224 else f"{tag}_{size}"
        model_args = {"num_classes": classes}
        if size != 224:
            model_args["img_size"] = size
        name = timm_name(timm_arch, size, tag)
        cfgs[key] = _cfg(f"{description}; timm {name}", f"timm/{name}", input_size=(3, size, size),
                         num_classes=classes, license=licence, model_args=model_args,
                         crop_pct=1.0 if size == 384 or tag == "bamboo" else 0.9, **norm)
    return {default: cfgs.pop(default), **cfgs}


# depth=2 keeps the variant's width and heads but makes the conformance runs cheap.
_vit = ModelFamily("vit", VisionTransformer, task="classification", checkpoint_filter=checkpoint_filter_fn,
                   test_kwargs={"img_size": 32, "patch_size": 16, "num_classes": 10, "depth": 2})

vit_b16_scratch = _vit.variant(
    "vit_b16_scratch", _tags("ViT-B/16: D=768, 12 blocks, 12 heads", "vit_base_patch16", "augreg2_in21k_ft_in1k"),
    dict(embed_dim=768, depth=12, num_heads=12))
vit_s16_scratch = _vit.variant(
    "vit_s16_scratch", _tags("ViT-S/16: D=384, 12 blocks, 6 heads", "vit_small_patch16", "augreg_in21k_ft_in1k"),
    dict(embed_dim=384, depth=12, num_heads=6))
vit_ti16_scratch = _vit.variant(
    "vit_ti16_scratch", _tags("ViT-Ti/16: D=192, 12 blocks, 3 heads", "vit_tiny_patch16", "augreg_in21k_ft_in1k"),
    dict(embed_dim=192, depth=12, num_heads=3))
