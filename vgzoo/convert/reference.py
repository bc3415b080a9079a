"""Importer for checkpoints of the pix2pix (Isola et al. 2017) and CycleGAN (Zhu et al. 2017) reference code.

The reference implementation (pytorch-CycleGAN-and-pix2pix) saves each network with
``torch.save(net.state_dict())`` as ``checkpoints/NAME/<epoch>_net_<G|D|G_A|G_B|D_A|D_B>.pth``. Its modules
are anonymous ``nn.Sequential`` lists, so its keys are positional (``model.10.conv_block.5.weight``); vgzoo's
modules are named (``blocks.0.conv2.weight``). This module maps one layout onto the other *structurally*, by
walking vgzoo's module tree, so the mapping holds for any ``ngf``/``ndf``, number of residual blocks or U-Net
depth, norm and channel counts.

Reading a pickle can run code; calling these functions is the explicit opt-in, and the files are read with
``torch.load(weights_only=True)`` only. Variants handled:

- ResNet generators with dropout (the reference's pix2pix with ``--netG resnet_*``): the dropout layer shifts
  the residual block's second conv from index 5 to 6 and its norm from 6 to 7 (detected, or ``dropout=``);
- old checkpoints holding InstanceNorm ``running_mean``/``running_var`` buffers (PyTorch < 0.4): dropped;
- a ``module.`` prefix (a network saved while wrapped in DataParallel): stripped.

Every argument left at ``None`` is read from the checkpoint (architecture, ``ngf``, norm, channels, depth).

Naming: the reference's ``netG_A`` maps A to B and is vgzoo's ``G_AB``; its ``netG_B`` is ``G_BA``; its
``netD_A`` judges domain-B images (it sees ``netG_A``'s outputs) and is vgzoo's ``D_B``; its ``netD_B`` is ``D_A``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..conversion import ConvertedWeights
from ..errors import WeightsError, WeightsNotFoundError
from ..layers.patchgan import PatchDiscriminator
from ..layers.resnet_generator import ResnetGenerator
from ..layers.unet import UnetGenerator

StateDict = dict[str, torch.Tensor]
_NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


# ------------------------------------------------------------------------------------------ reading
def read_reference_state_dict(path_or_state_dict: str | os.PathLike | dict) -> StateDict:
    """A reference state dict from a ``.pth`` file (``torch.load(weights_only=True)``) or a mapping.

    Raises:
        WeightsNotFoundError: the file does not exist.
        WeightsError: the file cannot be read or holds no state dict.
    """
    if isinstance(path_or_state_dict, dict):
        sd = dict(path_or_state_dict)
    else:
        path = Path(path_or_state_dict)
        if not path.is_file():
            raise WeightsNotFoundError(f"Reference checkpoint {str(path)!r} does not exist. Check the path.")
        try:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise WeightsError(
                f"Cannot read {str(path)!r} with torch.load(weights_only=True): {exc}. Expected a "
                "pytorch-CycleGAN-and-pix2pix checkpoint such as latest_net_G.pth."
            ) from exc
        if not isinstance(sd, dict):
            raise WeightsError(f"{str(path)!r} holds a {type(sd).__name__}, not a state dict (names -> tensors).")
    if any(not isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError("The reference checkpoint holds non-tensor values; expected net.state_dict() as saved "
                           "by pytorch-CycleGAN-and-pix2pix.")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


# ---------------------------------------------------------------------------------- inferring configs
def _unet_depth(sd: StateDict) -> int:
    return max(k.split(".").count("model") for k in sd) - 1


def _norm_from(sd: StateDict, norm_weight_key: str, conv_bias_key: str) -> str:
    if norm_weight_key in sd:
        return "batch"
    if conv_bias_key in sd:
        return "instance"
    return "none"


def infer_generator_config(sd: StateDict) -> dict[str, Any]:
    """Architecture (``netG``), ``ngf``, ``norm``, channels and (ResNet) ``dropout`` read from a reference G."""
    if "model.model.0.weight" in sd:
        first = sd["model.model.0.weight"]
        depth = _unet_depth(sd)
        return {
            "netG": f"unet_{2 ** depth}",
            "ngf": first.shape[0],
            "in_chans": first.shape[1],
            "out_chans": sd["model.model.3.weight"].shape[1],  # ConvTranspose weight: (in, out, k, k)
            "norm": _norm_from(sd, "model.model.1.model.2.weight", "model.model.1.model.1.bias"),
            "dropout": True,  # dropout has no weights; the reference's pix2pix default
        }
    if "model.1.weight" in sd and sd["model.1.weight"].ndim == 4 and sd["model.1.weight"].shape[-1] == 7:
        first = sd["model.1.weight"]
        blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
        n_blocks = len(blocks)
        last = max(int(k.split(".")[1]) for k in sd if re.fullmatch(r"model\.\d+\.weight", k))
        dropout = bool(n_blocks) and f"model.{blocks[0]}.conv_block.5.weight" not in sd
        return {
            "netG": f"resnet_{n_blocks}blocks",
            "ngf": first.shape[0],
            "in_chans": first.shape[1],
            "out_chans": sd[f"model.{last}.weight"].shape[0],
            "norm": _norm_from(sd, "model.2.weight", "model.1.bias"),
            "dropout": dropout,
        }
    raise WeightsError(
        "This state dict is not a reference ResNet or U-Net generator (expected keys 'model.1.weight' of a 7x7 "
        f"conv, or 'model.model.0.weight'); its first keys are {list(sd)[:4]}."
    )


def infer_discriminator_config(sd: StateDict) -> dict[str, Any]:
    """``n_layers``, ``ndf``, ``norm`` and ``in_chans`` read from a reference 'basic'/'n_layers' PatchGAN."""
    convs = sorted(int(k.split(".")[1]) for k in sd if re.fullmatch(r"model\.\d+\.weight", k) and sd[k].ndim == 4)
    if not convs or convs[0] != 0 or sd["model.0.weight"].shape[-1] != 4:
        raise WeightsError(
            "This state dict is not a reference PatchGAN (netD 'basic' or 'n_layers': expected 'model.0.weight' "
            f"of a 4x4 conv); its first keys are {list(sd)[:4]}. The 'pixel' discriminator is not supported."
        )
    first = sd["model.0.weight"]
    return {
        "n_layers": len(convs) - 2,
        "ndf": first.shape[0],
        "in_chans": first.shape[1],
        "norm": _norm_from(sd, "model.3.weight", "model.2.bias") if len(convs) > 2 else "none",
    }


def parse_netG(netG: str) -> tuple[str, int]:
    if m := re.fullmatch(r"resnet_(\d+)blocks", netG):
        return "resnet", int(m.group(1))
    if m := re.fullmatch(r"unet_(\d+)", netG):
        size = int(m.group(1))
        if size >= 32 and size & (size - 1) == 0:
            return "unet", size.bit_length() - 1
    raise ValueError(
        f"netG={netG!r} is not a reference generator; expected 'resnet_9blocks', 'resnet_6blocks' (any "
        "'resnet_<n>blocks'), 'unet_256' or 'unet_128' (any 'unet_<2^k>')."
    )


# ------------------------------------------------------------------------------------ key mappings
def generator_key_map(model: nn.Module) -> list[tuple[str, str]]:
    """``(vgzoo module prefix, reference module prefix)`` pairs for a vgzoo generator, by structure."""
    if isinstance(model, ResnetGenerator):
        n = model.n_blocks
        pairs = [("stem.conv", "model.1"), ("stem.norm", "model.2"),
                 ("down.0.conv", "model.4"), ("down.0.norm", "model.5"),
                 ("down.1.conv", "model.7"), ("down.1.norm", "model.8")]
        for i, block in enumerate(model.blocks):
            shift = 0 if isinstance(block.dropout, nn.Identity) else 1
            ref = f"model.{10 + i}.conv_block"
            pairs += [(f"blocks.{i}.conv1", f"{ref}.1"), (f"blocks.{i}.norm1", f"{ref}.2"),
                      (f"blocks.{i}.conv2", f"{ref}.{5 + shift}"), (f"blocks.{i}.norm2", f"{ref}.{6 + shift}")]
        pairs += [("up.0.conv", f"model.{10 + n}"), ("up.0.norm", f"model.{11 + n}"),
                  ("up.1.conv", f"model.{13 + n}"), ("up.1.norm", f"model.{14 + n}"),
                  ("head.conv", f"model.{17 + n}")]
        return pairs
    if isinstance(model, UnetGenerator):
        pairs, vg, ref = [], "block", "model.model"
        for block in model.blocks():
            if block.position == "outermost":
                pairs += [(f"{vg}.down_conv", f"{ref}.0"), (f"{vg}.up_conv", f"{ref}.3")]
                sub = f"{ref}.1.model"
            elif block.position == "innermost":
                pairs += [(f"{vg}.down_conv", f"{ref}.1"), (f"{vg}.up_conv", f"{ref}.3"), (f"{vg}.up_norm", f"{ref}.4")]
                sub = ""
            else:
                pairs += [(f"{vg}.down_conv", f"{ref}.1"), (f"{vg}.down_norm", f"{ref}.2"),
                          (f"{vg}.up_conv", f"{ref}.5"), (f"{vg}.up_norm", f"{ref}.6")]
                sub = f"{ref}.3.model"
            vg, ref = f"{vg}.submodule", sub
        return pairs
    raise TypeError(f"generator_key_map: expected a ResnetGenerator or UnetGenerator, got {type(model).__name__}.")


def discriminator_key_map(model: PatchDiscriminator) -> list[tuple[str, str]]:
    """``(vgzoo module prefix, reference module prefix)`` pairs for a PatchGAN, by structure."""
    pairs = [("stem.0", "model.0")]
    for i in range(len(model.body)):
        pairs += [(f"body.{i}.0", f"model.{2 + 3 * i}"), (f"body.{i}.1", f"model.{3 + 3 * i}")]
    pairs.append(("head", f"model.{2 + 3 * len(model.body)}"))
    return pairs


def map_state_dict(model: nn.Module, ref_sd: StateDict, pairs: list[tuple[str, str]], what: str) -> StateDict:
    """Rename a reference state dict to ``model``'s keys; refuse anything missing, left over or misshapen.

    InstanceNorm ``running_*`` buffers of old checkpoints (and of any norm the vgzoo model has no buffers
    for) are dropped.
    """
    own = model.state_dict()
    modules = dict(model.named_modules())
    out: StateDict = {}
    used: set[str] = set()
    for vg_prefix, ref_prefix in pairs:
        module = modules[vg_prefix]
        for name, _ in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
            ref_key = f"{ref_prefix}.{name}"
            if ref_key in ref_sd:
                out[f"{vg_prefix}.{name}"] = ref_sd[ref_key]
                used.add(ref_key)
        if isinstance(module, (nn.InstanceNorm2d, nn.Identity)):
            used.update(f"{ref_prefix}.{b}" for b in _NORM_BUFFERS if f"{ref_prefix}.{b}" in ref_sd)
    missing = [k for k in own if k not in out]
    leftover = [k for k in ref_sd if k not in used]
    mismatched = [f"{k}: checkpoint {tuple(out[k].shape)} vs vgzoo {tuple(own[k].shape)}"
                  for k in out if tuple(out[k].shape) != tuple(own[k].shape)]
    problems = []
    if missing:
        problems.append(f"vgzoo keys with no reference weight: {missing[:6]}")
    if leftover:
        problems.append(f"reference keys with no place: {leftover[:6]}")
    if mismatched:
        problems.append(f"shape mismatches: {mismatched[:6]}")
    if problems:
        raise WeightsError(
            f"The reference checkpoint does not fit {what}: " + "; ".join(problems) + ". Check the architecture "
            "arguments (netG/netD, ngf/ndf, norm, channels, dropout), or leave them at None to read them from "
            "the checkpoint."
        )
    return {k: v.to(own[k].dtype) for k, v in out.items()}


# ------------------------------------------------------------------------------------ public API
def reference_generator(
    path_or_state_dict: str | os.PathLike | dict,
    netG: str | None = None,
    ngf: int | None = None,
    norm: str | None = None,
    in_chans: int | None = None,
    out_chans: int | None = None,
    dropout: bool | None = None,
) -> nn.Module:
    """A vgzoo generator holding a reference generator's weights.

    Args:
        path_or_state_dict: a reference ``*_net_G*.pth`` (read with ``torch.load(weights_only=True)``) or its
            state dict.
        netG: ``"resnet_9blocks"``, ``"resnet_6blocks"``, ``"unet_256"``, ``"unet_128"`` (or any
            ``resnet_<n>blocks`` / ``unet_<2^k>``); None reads it from the keys.
        ngf: generator width; None reads it.
        norm: ``"batch"``, ``"instance"`` or ``"none"``; None reads it (batch-norm weights, or conv biases).
        in_chans, out_chans: image channels; None reads them.
        dropout: the ResNet dropout variant (shifted keys); None detects it. For a U-Net dropout has no
            weights and only acts in training mode; None means True, the reference pix2pix default.

    Returns:
        A :class:`~vgzoo.layers.resnet_generator.ResnetGenerator` or
        :class:`~vgzoo.layers.unet.UnetGenerator` in eval mode.
    """
    sd = read_reference_state_dict(path_or_state_dict)
    cfg = infer_generator_config(sd)
    given = {"netG": netG, "ngf": ngf, "norm": norm, "in_chans": in_chans, "out_chans": out_chans, "dropout": dropout}
    cfg.update({k: v for k, v in given.items() if v is not None})
    kind, depth = parse_netG(cfg["netG"])
    model = _generator(kind, depth, cfg["in_chans"], cfg["out_chans"], cfg["ngf"], cfg["norm"], cfg["dropout"])
    what = (f"a {cfg['netG']} generator (ngf={cfg['ngf']}, norm={cfg['norm']!r}, "
            f"{cfg['in_chans']}->{cfg['out_chans']} channels, dropout={cfg['dropout']})")
    model.load_state_dict(map_state_dict(model, sd, generator_key_map(model), what))
    model.reference_config = cfg
    return model.eval()


def _generator(kind: str, depth: int, in_chans: int, out_chans: int, ngf: int, norm: str, dropout: bool) -> nn.Module:
    """A ResNet (``depth`` blocks) or U-Net (``depth`` downsamplings) generator."""
    if kind == "resnet":
        return ResnetGenerator(in_chans, out_chans, ngf, depth, norm, dropout)
    return UnetGenerator(in_chans, out_chans, depth, ngf, norm, dropout)


def read_published_generator(files: dict[str, Path], cfg) -> ConvertedWeights:
    """The reader of the reference's published generators (``cyclegan_resnet.horse2zebra``, ...).

    ``files["weights"]`` is one generator's ``.pth``; the tag's ``model_args`` (a
    :class:`~vgzoo.models.translator.GeneratorTranslator`'s arguments) say which generator it must be. The key
    map is read off that generator built on the meta device, so nothing is allocated before the shapes are checked.
    """
    args = {"kind": "resnet", "in_chans": 3, "out_chans": 3, "ngf": 64, "n_blocks": 9, "num_downs": 8,
            "norm": "instance", "dropout": False, **cfg.model_args}
    depth = args["n_blocks"] if args["kind"] == "resnet" else args["num_downs"]
    with torch.device("meta"):
        generator = _generator(args["kind"], depth, args["in_chans"], args["out_chans"], args["ngf"], args["norm"],
                               args["dropout"])
    what = (f"a {args['kind']} generator (depth {depth}, ngf={args['ngf']}, norm={args['norm']!r}, "
            f"{args['in_chans']}->{args['out_chans']} channels, dropout={args['dropout']})")
    state = map_state_dict(generator, read_reference_state_dict(files["weights"]), generator_key_map(generator), what)
    return ConvertedWeights(config={}, state_dict={f"generator.{k}": v for k, v in state.items()})


def reference_discriminator(
    path_or_state_dict: str | os.PathLike | dict,
    n_layers: int | None = None,
    ndf: int | None = None,
    norm: str | None = None,
    in_chans: int | None = None,
) -> PatchDiscriminator:
    """A vgzoo :class:`~vgzoo.layers.patchgan.PatchDiscriminator` holding a reference PatchGAN's weights.

    Args:
        path_or_state_dict: a reference ``*_net_D*.pth`` (read with ``torch.load(weights_only=True)``) or its
            state dict.
        n_layers: stride-2 convs (3 for ``--netD basic``); None reads it.
        ndf: discriminator width; None reads it.
        norm: ``"batch"``, ``"instance"`` or ``"none"``; None reads it.
        in_chans: input channels (6 for pix2pix's stacked pair); None reads it.
    """
    sd = read_reference_state_dict(path_or_state_dict)
    cfg = infer_discriminator_config(sd)
    given = {"n_layers": n_layers, "ndf": ndf, "norm": norm, "in_chans": in_chans}
    cfg.update({k: v for k, v in given.items() if v is not None})
    model = PatchDiscriminator(cfg["in_chans"], cfg["ndf"], cfg["n_layers"], cfg["norm"])
    what = (f"a PatchGAN (n_layers={cfg['n_layers']}, ndf={cfg['ndf']}, norm={cfg['norm']!r}, "
            f"{cfg['in_chans']} channels)")
    model.load_state_dict(map_state_dict(model, sd, discriminator_key_map(model), what))
    model.reference_config = cfg
    return model.eval()


# ------------------------------------------------------------------------- generator-only translators
# The registered generator-only translator (vgzoo.models.translator.GeneratorTranslator) of each generator kind.
GENERATOR_NAMES = {"resnet": "cyclegan_resnet_generator", "unet": "pix2pix_unet_generator"}


def translator_config(kind: str, depth: int, in_chans: int, out_chans: int, ngf: int, norm: str, dropout: bool,
                      img_size: int | None = None) -> dict[str, Any]:
    """A GeneratorTranslator's constructor arguments for a generator of ``kind`` (``depth`` blocks or downs)."""
    size = img_size or (2 ** depth if kind == "unet" else 256)
    return {"kind": kind, "in_chans": in_chans, "out_chans": out_chans, "ngf": ngf,
            ("n_blocks" if kind == "resnet" else "num_downs"): depth, "norm": norm, "dropout": dropout,
            "img_size": size}


def read_reference_generator(path: str | os.PathLike, **overrides: Any) -> ConvertedWeights:
    """One reference generator ``.pth`` as a generator-only translator: its arguments, weights and name.

    ``overrides`` are :func:`reference_generator`'s (``netG``, ``ngf``, ``norm``, ...; None reads them). The
    model is ``cyclegan_resnet_generator`` for a ResNet generator, ``pix2pix_unet_generator`` for a U-Net.
    """
    generator = reference_generator(path, **overrides)
    cfg = generator.reference_config
    kind, depth = parse_netG(cfg["netG"])
    config = translator_config(kind, depth, cfg["in_chans"], cfg["out_chans"], cfg["ngf"], cfg["norm"],
                               cfg["dropout"])
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    return ConvertedWeights(config=config, state_dict=state, model=GENERATOR_NAMES[kind])


# vgzoo 0.2 wrote a lone converted generator as generator.json ({"kind", "kwargs", "source"}) + generator.safetensors;
# the reader below turns such a pair into a generator-only translator folder (`vgzoo convert generator-json`).


def read_generator_json(files: dict[str, Path], cfg=None) -> ConvertedWeights:
    """A vgzoo 0.2 ``generator.json`` + ``generator.safetensors`` pair (JSON and safetensors only).

    Raises:
        WeightsError: the JSON is not such a config, or the weights are not a safetensors file.
    """
    import json

    from .._hub import load_state_dict

    path = Path(files["config"])
    try:
        legacy = json.loads(path.read_text(encoding="utf-8"))
        kind, kwargs = legacy["kind"], dict(legacy["kwargs"])
        depth = kwargs.pop("n_blocks" if kind == "resnet" else "num_downs")
        config = translator_config(kind, depth, kwargs.pop("in_chans", 3), kwargs.pop("out_chans", 3),
                                   kwargs.pop("ngf", 64), kwargs.pop("norm", "instance"), kwargs.pop("dropout", False))
        name = GENERATOR_NAMES[kind]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WeightsError(f"{str(path)!r} is not a generator.json written by vgzoo 0.2 (expected {{'kind': "
                           f"'resnet'|'unet', 'kwargs': {{...}}}}; {exc!r}).") from exc
    if kwargs:
        raise WeightsError(f"{str(path)!r} holds generator arguments vgzoo does not know: {sorted(kwargs)}.")
    state = {f"generator.{k}": v for k, v in load_state_dict(files["weights"]).items()}
    return ConvertedWeights(config=config, state_dict=state, model=name)
