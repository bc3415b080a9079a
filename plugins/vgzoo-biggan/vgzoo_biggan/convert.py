"""The published BigGAN-deep files -> vgzoo: ``config.json`` + ``pytorch_model.bin`` (pytorch-pretrained-biggan).

:func:`read` is the tags' reader (``vgzoo.ConvertedWeights``): a pure function of the two files. The weights are a
``torch.save`` of the reference's state dict, read with ``torch.load(weights_only=True)`` (tensors and plain
containers only; naming a tag, or running ``vgzoo convert biggan-deep`` on your own pair, is the opt-in to reading a
pickle). Every
key is renamed by :func:`published_key`; a key it does not know is an error, and the core checks that the
result holds every key of the architecture with its shape.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from vgzoo import ConvertedWeights, Converter

__all__ = ["biggan_deep_converter", "config_from_published", "published_key", "published_to_vgzoo", "read",
           "vgzoo_to_published"]

# The reference's spectral norm (torch.nn.utils.spectral_norm) -> torch's parametrization.
SPECTRAL = {"weight_orig": "parametrizations.weight.original", "weight_u": "parametrizations.weight.0._u",
            "weight_v": "parametrizations.weight.0._v", "bias": "bias"}
ATTENTION = {"snconv1x1_theta": "query", "snconv1x1_phi": "key", "snconv1x1_g": "value", "snconv1x1_o_conv": "out"}
NORM_MAPS = {"scale": "gain", "offset": "bias"}
PUBLISHED_ARGS = ("z_dim", "class_embed_dim", "channel_width", "num_classes", "layers", "eps", "n_stats")


def config_from_published(published: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments of :class:`~vgzoo_biggan.model.BigGANDeep` for a published ``config.json``."""
    missing = [k for k in (*PUBLISHED_ARGS, "output_dim", "attention_layer_position") if k not in published]
    if missing:
        raise ValueError(f"config.json lacks {missing}; expected the BigGANConfig of pytorch-pretrained-biggan "
                         "(output_dim, z_dim, class_embed_dim, channel_width, num_classes, layers, ...).")
    args = {k: published[k] for k in PUBLISHED_ARGS}
    args.update(img_size=int(published["output_dim"]), in_chans=3, attention_position=published[
        "attention_layer_position"], to_rgb_chans=int(published["channel_width"]),
        class_names="imagenet-1k" if published["num_classes"] == 1000 else None)
    args["layers"] = [[bool(up), int(cin), int(cout)] for up, cin, cout in args["layers"]]
    return args


def published_key(key: str, attention_position: int | None) -> str | None:
    """vgzoo's name of a reference key (None: not a BigGAN-deep generator key). The reference numbers the
    attention module among the blocks (``generator.layers.<attention_position>``); vgzoo keeps it apart."""
    if key == "embeddings.weight":
        return "generator.class_embed.weight"
    m = re.fullmatch(r"generator\.(gen_z|conv_to_rgb)\.(\w+)", key)
    if m and m[2] in SPECTRAL:
        return f"generator.{'project' if m[1] == 'gen_z' else 'to_rgb'}.{SPECTRAL[m[2]]}"
    m = re.fullmatch(r"generator\.bn\.(weight|bias|running_means|running_vars)", key)
    if m:
        return f"generator.final_norm.{m[1]}"
    m = re.fullmatch(r"generator\.layers\.(\d+)\.(.+)", key)
    if not m:
        return None
    index, rest = int(m[1]), m[2]
    if index == attention_position:
        if rest == "gamma":
            return "generator.attention.gamma"
        conv, _, tail = rest.partition(".")
        return f"generator.attention.{ATTENTION[conv]}.{SPECTRAL[tail]}" if conv in ATTENTION and tail in SPECTRAL \
            and tail != "bias" else None
    block = f"generator.blocks.{index - (attention_position is not None and index > attention_position)}"
    m = re.fullmatch(r"conv_([0-3])\.(\w+)", rest)
    if m and m[2] in SPECTRAL:
        return f"{block}.convs.{m[1]}.{SPECTRAL[m[2]]}"
    m = re.fullmatch(r"bn_([0-3])\.(running_means|running_vars)", rest)
    if m:
        return f"{block}.norms.{m[1]}.{m[2]}"
    m = re.fullmatch(r"bn_([0-3])\.(scale|offset)\.(weight_orig|weight_u|weight_v)", rest)
    return f"{block}.norms.{m[1]}.{NORM_MAPS[m[2]]}.{SPECTRAL[m[3]]}" if m else None


def published_to_vgzoo(state_dict: dict[str, torch.Tensor], attention_position: int | None) -> dict[str, torch.Tensor]:
    """Rename a reference state dict's keys to vgzoo's; every key must be one :func:`published_key` knows."""
    out, unknown = {}, []
    for key, value in state_dict.items():
        new = published_key(key, attention_position)
        if new is None:
            unknown.append(key)
        else:
            out[new] = value
    if unknown:
        raise ValueError(f"{len(unknown)} key(s) of the file are not BigGAN-deep generator keys of "
                         f"pytorch-pretrained-biggan (attention at layer {attention_position}): {unknown[:6]}")
    return out


def vgzoo_to_published(state_dict: dict[str, torch.Tensor], attention_position: int | None) -> dict[str, torch.Tensor]:
    """The inverse renaming (vgzoo -> reference keys), for writing files in the published format."""
    inverse = {v: k for k, v in SPECTRAL.items()}
    out = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if key.startswith("generator.class_embed."):
            out["embeddings.weight"] = value
            continue
        cut = parts.index("parametrizations") if "parametrizations" in parts else len(parts) - 1
        tail = ".".join(parts[cut:])
        sn = inverse.get(tail, tail)
        parts = parts[:cut] + [tail]
        head = parts[1]
        if head == "project":
            new = f"generator.gen_z.{sn}"
        elif head == "attention":
            names = {v: k for k, v in ATTENTION.items()}
            new = (f"generator.layers.{attention_position}.gamma" if parts[2] == "gamma"
                   else f"generator.layers.{attention_position}.{names[parts[2]]}.{sn}")
        elif head == "blocks":
            index = int(parts[2])
            index += attention_position is not None and index >= attention_position
            if parts[3] == "convs":
                new = f"generator.layers.{index}.conv_{parts[4]}.{sn}"
            elif parts[5] in ("running_means", "running_vars"):
                new = f"generator.layers.{index}.bn_{parts[4]}.{parts[5]}"
            else:
                maps = {v: k for k, v in NORM_MAPS.items()}
                new = f"generator.layers.{index}.bn_{parts[4]}.{maps[parts[5]]}.{sn}"
        elif head == "final_norm":
            new = f"generator.bn.{parts[2]}"
        elif head == "to_rgb":
            new = f"generator.conv_to_rgb.{sn}"
        else:
            raise ValueError(f"{key!r} is not a BigGAN-deep generator key")
        out[new] = value
    return out


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{str(path)!r} holds a {type(state).__name__}, not a state dict of tensors; expected "
                         "pytorch_model.bin of pytorch-pretrained-biggan (torch.save of BigGAN.state_dict()).")
    return dict(state)


def read(files: dict[str, Path], cfg: Any = None) -> ConvertedWeights:
    """The reader of the ``biggan_deep`` tags: ``files = {"config": config.json, "weights": pytorch_model.bin}``.

    Where ``cfg`` (the tag's pretrained config) fixes architecture arguments, ``config.json`` must agree with them.
    """
    for name in ("config", "weights"):
        if name not in files:
            raise ValueError(f"the BigGAN-deep reader needs the files 'config' and 'weights'; got {sorted(files)}.")
    try:
        published = json.loads(Path(files["config"]).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{str(files['config'])!r} is not a JSON config.json ({exc}).") from exc
    if not isinstance(published, dict):
        raise ValueError(f"{str(files['config'])!r} holds a {type(published).__name__}, not a BigGANConfig object.")
    config = config_from_published(published)
    expected = getattr(cfg, "model_args", None) or {}
    shown_first = ("img_size", "num_classes", "channel_width", "z_dim")  # the telling ones lead the message
    differ = {k: (config[k], expected[k]) for k in (*shown_first, *sorted(set(config) - set(shown_first)))
              if k in expected and config[k] != expected[k]}
    if differ:  # a mirror serving another model's files must not pass for the tag's
        raise ValueError("config.json describes another generator than this tag's: " + ", ".join(
            f"{k}={got!r} (the tag has {want!r})" for k, (got, want) in list(differ.items())[:4])
            + ". Check the files served "
            "for it (VGZOO_MIRROR, HF_ENDPOINT); a pair of your own reads with vgzoo_biggan.convert.read.")
    state = published_to_vgzoo(_read_state_dict(Path(files["weights"])), config["attention_position"])
    return ConvertedWeights(config=config, state_dict=state)



# The name's untagged config has no model_args, so read() takes every size from the user's config.json.
biggan_deep_converter = Converter(
    model="biggan_deep_generator",
    reader="vgzoo_biggan.convert:read",
    description="A pytorch-pretrained-biggan config.json + pytorch_model.bin (a pickle: read with "
                "torch.load(weights_only=True)) -> a biggan_deep generator folder.",
    file_names=("config", "weights"),
)
