"""Pictures of what models do: ViT attention rollout drawn over the input image.

Attention rollout is from "Quantifying Attention Flow in Transformers" (Abnar & Zuidema, ACL 2020),
applied to the Vision Transformer of Dosovitskiy et al. (2020). ``vgzoo attention-map`` calls
:func:`save_attention_map`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["load_model", "preprocess_image", "attention_overlay", "save_attention_map"]


def load_model(model_or_dir: str | os.PathLike, pretrained: bool = False):
    """A model from a saved folder, a ``local-dir:``/``hf-hub:`` source or a registered name.

    Kept for backward compatibility; it is :func:`vgzoo._factory.load_model` (which warns about random weights).
    """
    from ._factory import load_model as _load_model

    return _load_model(model_or_dir, pretrained=pretrained)


def preprocess_image(image, cfg: dict[str, Any]):
    """A PIL image (or path) resized to ``cfg['input_size']`` and normalised with the cfg's mean/std.

    Returns:
        ``(tensor (1, C, H, W), the PIL image as loaded in the model's colour mode)``.
    """
    import numpy as np
    import torch
    from PIL import Image

    if not isinstance(image, Image.Image):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"Image {str(path)!r} does not exist; pass the path of a PNG/JPEG file.")
        image = Image.open(path)
    c, h, w = cfg["input_size"]
    if c not in (1, 3):
        raise ValueError(f"can only draw attention maps for 1- or 3-channel models, this one takes {c} channels.")
    image = image.convert("RGB" if c == 3 else "L")
    resample = Image.Resampling.BICUBIC if cfg.get("interpolation", "bicubic") == "bicubic" else Image.Resampling.BILINEAR
    arr = np.asarray(image.resize((w, h), resample), dtype=np.float32) / 255.0
    x = torch.from_numpy(arr.reshape(h, w, c)).permute(2, 0, 1)
    mean = torch.tensor(cfg.get("mean", (0.5,) * c), dtype=torch.float32).view(c, 1, 1)
    std = torch.tensor(cfg.get("std", (0.5,) * c), dtype=torch.float32).view(c, 1, 1)
    return ((x - mean) / std).unsqueeze(0), image


def attention_overlay(image, relevance, alpha: float = 0.5, cmap: str = "jet"):
    """Blend a relevance map (2-D, values in [0, 1]) over a PIL image, upsampled to the image's size.

    Returns:
        An RGB PIL image.
    """
    import numpy as np
    from matplotlib import colormaps
    from PIL import Image

    rel = np.asarray(relevance, dtype=np.float32)
    rel = (rel - rel.min()) / max(float(rel.max() - rel.min()), 1e-12)
    heat = Image.fromarray((rel * 255).astype(np.uint8)).resize(image.size, Image.Resampling.BILINEAR)
    colored = colormaps[cmap](np.asarray(heat, dtype=np.float32) / 255.0)[..., :3]
    base = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    blended = (1.0 - alpha) * base + alpha * colored
    return Image.fromarray((blended.clip(0, 1) * 255).round().astype(np.uint8))


def save_attention_map(
    model,
    image,
    out: str | os.PathLike,
    alpha: float = 0.5,
    head_fusion: str = "mean",
    pretrained: bool = False,
) -> dict[str, Any]:
    """Draw a ViT's attention rollout over ``image`` and save it as PNG.

    Args:
        model: a model with ``attention_rollout`` (a vgzoo ViT), a registered name or a saved folder.
        image: a path or PIL image.
        out: PNG path to write.
        alpha: opacity of the heat map.
        head_fusion: how heads are fused (``mean``, ``max``, ``min``).
        pretrained: with a model name, load its published weights.

    Returns:
        ``{"out": path, "top_class": int, "top_prob": float, "grid": (H/P, W/P)}``.
    """
    import torch

    if isinstance(model, (str, os.PathLike)):
        from ._factory import load_model as _load_model

        model = _load_model(model, pretrained=pretrained)
    from .models.vit import VisionTransformer

    if not isinstance(model, VisionTransformer):
        arch = getattr(model, "pretrained_cfg", {}).get("architecture", type(model).__name__)
        raise TypeError(f"{arch} has no attention_rollout(); attention maps need a vision transformer (vit_*).")
    model.eval()
    x, shown = preprocess_image(image, model.pretrained_cfg)
    p = next(model.parameters())
    x = x.to(device=p.device, dtype=p.dtype)
    with torch.no_grad():
        relevance = model.attention_rollout(x, head_fusion=head_fusion)[0].float().cpu()
        logits = model(x)[0].float()
    info: dict[str, Any] = {"grid": tuple(relevance.shape)}
    if logits.ndim == 1 and logits.numel() > 1:
        prob = logits.softmax(-1)
        info["top_class"], info["top_prob"] = int(prob.argmax()), float(prob.max())
    from ._hub import atomic_write

    out = Path(out)
    overlay = attention_overlay(shown, relevance.numpy(), alpha=alpha)
    atomic_write(out, lambda tmp: overlay.save(tmp, format="PNG"))
    info["out"] = str(out)
    return info
