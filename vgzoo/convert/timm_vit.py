"""Import timm VisionTransformer checkpoints into vgzoo's ViT (Dosovitskiy et al., 2020, arXiv:2010.11929).

vgzoo's ``vit_*_scratch`` models name their parameters as timm's ``VisionTransformer`` does
(``cls_token``, ``pos_embed``, ``patch_embed.proj``, ``blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,
mlp.fc2}``, ``norm``, ``head``), so the mapping is mostly a check. :func:`from_timm_vit`

- strips wrapper prefixes (``module.`` from DDP, ``_orig_mod.`` from ``torch.compile``, ``model.``);
- accepts a head saved as ``head.fc.*``;
- turns a position embedding without a class-token slot (timm's ``no_embed_class=True``) into one with a
  zero slot, which computes the same function;
- refuses, naming them, the timm features vgzoo's ViT does not have (register tokens, layer scale,
  QK-norm, average-pool ``fc_norm``, pre-norm, attention pooling), instead of loading them half-way.

Resampling the position embedding to another image size needs the target model and happens in the
model's checkpoint filter (:func:`vgzoo.models.vit.checkpoint_filter_fn`). :func:`read_timm_vit` is the reader
behind ``vgzoo convert timm-vit`` (:func:`vgzoo.converters.convert_timm_vit_file`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from ..conversion import ConvertedWeights
from ..errors import WeightsError

__all__ = ["from_timm_vit", "infer_timm_vit_config", "read_timm_vit"]

_WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.")

# timm features that have no counterpart in vgzoo's ViT: key pattern -> what it is.
_UNSUPPORTED = {
    r"^reg_token$": "register tokens (reg_token)",
    r"^dist_token$": "a distillation token (DeiT distilled)",
    r"\.ls[12]\.gamma$": "layer scale (ls1/ls2)",
    r"\.attn\.[qk]_norm\.": "QK normalisation (q_norm/k_norm)",
    r"^fc_norm\.": "average pooling with fc_norm",
    r"^norm_pre\.": "a pre-transformer norm (norm_pre)",
    r"^attn_pool\.": "attention pooling (attn_pool)",
    r"\.attn\.norm\.": "a norm inside attention (scale_attn_norm)",
    r"\.mlp\.norm\.": "a norm inside the MLP (scale_mlp_norm)",
    r"^head_dist\.": "a distillation head",
}
_REQUIRED = ("cls_token", "pos_embed", "patch_embed.proj.weight", "norm.weight")


def _strip_prefixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    changed = True
    while changed and state_dict:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in state_dict):
                state_dict = {k[len(prefix) :]: v for k, v in state_dict.items()}
                changed = True
    return state_dict


def from_timm_vit(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a timm ``VisionTransformer`` state dict (vit_base/small/tiny_patch16_*) to vgzoo's ViT layout.

    A vgzoo ViT state dict passes through unchanged, so the function can be applied to any ViT checkpoint.

    Args:
        state_dict: parameter name -> tensor, as ``timm_model.state_dict()`` or a timm ``model.safetensors``.

    Returns:
        A new dict in vgzoo's layout (the tensors are shared, not copied).

    Raises:
        WeightsError: the dict is not a class-token ViT, or uses timm features vgzoo's ViT lacks.
    """
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise WeightsError("from_timm_vit expects a state dict: a dict of parameter names to tensors.")
    sd = _strip_prefixes(dict(state_dict))
    sd = {re.sub(r"^head\.fc\.", "head.", k): v for k, v in sd.items()}

    unsupported = sorted({what for k in sd for pat, what in _UNSUPPORTED.items() if re.search(pat, k)})
    if unsupported:
        raise WeightsError(
            f"This timm ViT checkpoint uses {', '.join(unsupported)}, which vgzoo's vit_*_scratch models do not "
            "implement. Supported: plain class-token ViTs such as timm's vit_base/small/tiny_patch16_224/384."
        )
    missing = [k for k in _REQUIRED if k not in sd]
    if missing or not any(k.startswith("blocks.0.attn.qkv.") for k in sd):
        raise WeightsError(
            f"Not a timm/vgzoo ViT state dict: missing {missing or ['blocks.0.attn.qkv.weight']} (found keys such as "
            f"{sorted(sd)[:5]}). Expected timm VisionTransformer keys (cls_token, pos_embed, patch_embed.proj.weight, "
            "blocks.N.attn.qkv.weight, ...)."
        )

    pos = sd["pos_embed"]
    n = pos.shape[1]
    if math.isqrt(n) ** 2 == n:  # no class-token slot (no_embed_class): add a zero slot, same function
        sd["pos_embed"] = torch.cat([pos.new_zeros(pos.shape[0], 1, pos.shape[2]), pos], dim=1)
    return sd


def infer_timm_vit_config(state_dict: dict[str, torch.Tensor]) -> tuple[str, dict[str, int]]:
    """The vgzoo model name and kwargs that a (mapped) ViT state dict was made for.

    Returns:
        ``(name, kwargs)``, e.g. ``("vit_b16_scratch", {"img_size": 224, "patch_size": 16, ...})``.

    Raises:
        WeightsError: the width or depth matches none of vit_b16/s16/ti16_scratch.
    """
    sd = from_timm_vit(state_dict)
    width = sd["cls_token"].shape[-1]
    depth = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k)))
    names = {768: "vit_b16_scratch", 384: "vit_s16_scratch", 192: "vit_ti16_scratch"}
    if width not in names or depth != 12:
        raise WeightsError(
            f"A ViT with width {width} and {depth} blocks has no vgzoo counterpart; vgzoo provides width 768/384/192 "
            "with 12 blocks (vit_b16_scratch, vit_s16_scratch, vit_ti16_scratch)."
        )
    proj = sd["patch_embed.proj.weight"]
    patch = proj.shape[-1]
    side = math.isqrt(sd["pos_embed"].shape[1] - 1)
    kwargs = {"img_size": side * patch, "patch_size": patch, "in_chans": proj.shape[1]}
    kwargs["num_classes"] = sd["head.weight"].shape[0] if "head.weight" in sd else 0
    return names[width], kwargs


def read_timm_vit(files: dict[str, Path], cfg) -> ConvertedWeights:
    """The reader of a timm ViT ``.safetensors`` (``files["weights"]``): its size arguments and vgzoo's keys.

    The width and depth are the model name's (a file of another width fails the core's shape check, naming the
    keys); image size, patch size, channels and classes are read from the file.
    """
    from safetensors.torch import load_file

    raw = load_file(str(files["weights"]))
    _, kwargs = infer_timm_vit_config(raw)
    return ConvertedWeights(config=kwargs, state_dict=from_timm_vit(raw))
