"""Pictures of what models do: ViT attention rollout drawn over the input image.

Attention rollout is from "Quantifying Attention Flow in Transformers" (Abnar & Zuidema, ACL 2020),
applied to the Vision Transformer of Dosovitskiy et al. (2020). ``vgzoo attention-map`` calls
:func:`save_attention_map`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["preprocess_image", "attention_overlay", "attention_figure", "save_attention_map"]


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
    bicubic = cfg.get("interpolation", "bicubic") == "bicubic"
    resample = Image.Resampling.BICUBIC if bicubic else Image.Resampling.BILINEAR
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


def attention_figure(image, relevance, info: dict[str, Any] | None = None, alpha: float = 0.5, cmap: str = "jet",
                     title: str = ""):
    """The image beside its attention overlay, with a colour bar and the predicted class and probability.

    Args:
        image: the PIL image as the model saw it (after resizing).
        relevance: the 2-D rollout map (any range; shown normalised to [0, 1]).
        info: ``{"top_class": int, "top_prob": float, "class_name": str}`` (any may be missing).
        alpha: opacity of the heat map.
        cmap: a matplotlib colour map name.
        title: the figure title (the model's name).

    Returns:
        A matplotlib figure (close it with ``matplotlib.pyplot.close``).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib import cm, colors

    info = info or {}
    rel = np.asarray(relevance, dtype=np.float32)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 4.4), layout="constrained")
    shown = image.convert("RGB")
    left.imshow(shown, interpolation="nearest")
    left.set_title(f"input ({shown.width}x{shown.height})", fontsize=10)
    right.imshow(attention_overlay(shown, rel, alpha=alpha, cmap=cmap), interpolation="nearest")
    right.set_title(f"attention rollout ({rel.shape[0]}x{rel.shape[1]} patches)", fontsize=10)
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(cm.ScalarMappable(norm=colors.Normalize(0, 1), cmap=cmap), ax=right, fraction=0.046, pad=0.03)
    bar.set_label("relevance of the patch to the class token (normalised)", fontsize=8)
    if "top_class" in info:
        name = f" {info['class_name']!r}" if info.get("class_name") else ""
        pred = f"predicted class {info['top_class']}{name} (p={info['top_prob']:.3f})"
    else:
        pred = "no class prediction (the model has no classifier head)"
    fig.suptitle(f"{title}: {pred}" if title else pred, fontsize=11)
    return fig


def _class_name(cfg: dict[str, Any], index: int) -> str | None:
    names = cfg.get("label_names") or cfg.get("class_names")
    if isinstance(names, (list, tuple)) and 0 <= index < len(names):
        return str(names[index])
    return None


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

    The PNG shows the input beside the overlay, a colour bar, and the predicted class with its probability.
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
        name = _class_name(model.pretrained_cfg, info["top_class"])
        if name:
            info["class_name"] = name
    import matplotlib.pyplot as plt

    from ._hub import atomic_write

    out = Path(out)
    arch = model.pretrained_cfg.get("architecture", type(model).__name__)
    fig = attention_figure(shown, relevance.numpy(), info, alpha=alpha, title=str(arch))
    try:
        atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    finally:
        plt.close(fig)
    info["out"] = str(out)
    return info
