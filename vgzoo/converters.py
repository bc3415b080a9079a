"""The library behind ``vgzoo convert``: converters by name and the file-level conversions.

A :class:`Converter` makes a reader (:mod:`vgzoo.conversion`) a ``vgzoo convert NAME FILE... OUT`` command.
Converters are entry points of the group ``vgzoo.converters`` (name -> ``"module:attr"`` of a :class:`Converter`);
vgzoo's own are declared the same way in its pyproject::

    [project.entry-points."vgzoo.converters"]
    stylegan2-pkl = "vgzoo_stylegan2.convert:stylegan2_pkl"

What a conversion writes is a published model: weights, config and model card (:func:`vgzoo.share.save_pretrained`).
"""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._plugins import EntryPointGroup, EntryPointRecord
from .conversion import ConvertedWeights, build_converted, read_files
from .errors import PluginError, VgzooError, WeightsError, WeightsNotFoundError

ENTRY_POINT_GROUP = "vgzoo.converters"


@dataclass(frozen=True)
class Converter:
    """A ``vgzoo convert NAME FILE... OUT`` command: ``reader`` applied to the files, saved as ``model``.

    Attributes:
        model: the registered model name the converted folder holds (its default tag's config is the reader's
            ``cfg``), or ``name.tag`` for a tag whose config (``model_args``, licence, ...) the folder records.
        reader: ``"package.module:function"`` (imported when the command runs) or the function itself.
        description: one line for ``vgzoo convert --help``.
        file_names: the names the reader's ``files`` dict uses, in the order the command takes the files.
        command: ``"module:attr"`` of a click command that replaces the generic one, for a converter that needs
            options of its own (vgzoo's built-in converters read a whole checkpoint folder, or infer the model).
    """

    model: str
    reader: str | Callable[..., ConvertedWeights]
    description: str
    file_names: tuple[str, ...] = ("weights",)
    command: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "file_names", tuple(self.file_names))
        if not self.file_names or len(set(self.file_names)) != len(self.file_names):
            raise ValueError(f"Converter for {self.model!r}: file_names must be distinct names, got {self.file_names}")


CONVERTERS = EntryPointGroup(ENTRY_POINT_GROUP, "converter")


def converter_entry_points() -> dict[str, list[EntryPointRecord]]:
    """Every installed ``vgzoo.converters`` entry point by name (no imports)."""
    return CONVERTERS.records()


def get_converter(name: str) -> Converter:
    """The converter called ``name``; an unknown name gets the known ones (and the close ones) in its error."""
    known = sorted(converter_entry_points())
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"Did you mean: {', '.join(close)}? " if close else ""
        raise UnknownConverterError(
            f"Unknown converter {name!r}. {hint}Known converters: {', '.join(known) or '(none)'}; plugins add "
            f"theirs through the {ENTRY_POINT_GROUP!r} entry-point group."
        )
    record = CONVERTERS.resolve(name)
    target = CONVERTERS.load(record)
    if not isinstance(target, Converter):
        raise PluginError(f"converter {name!r}: {record.where} is a {type(target).__name__}, not a vgzoo.Converter.")
    return target


class UnknownConverterError(VgzooError, KeyError):
    """A ``vgzoo convert`` name that no installed converter has."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def convert_files(name: str, paths: list[str | os.PathLike], out: str | os.PathLike, overwrite: bool = False):
    """Run converter ``name`` on ``paths`` (in its ``file_names`` order) and save the model to ``out``.

    ``out`` must not hold a saved model unless ``overwrite``; it is written atomically either way.

    Returns:
        ``(model, path)``: the converted model and the folder written.
    """
    from ._builder import save_atomically
    from .share.card import save_pretrained

    converter = get_converter(name)
    if len(paths) != len(converter.file_names):
        raise ValueError(f"vgzoo convert {name} takes {len(converter.file_names)} file(s) "
                         f"({' '.join(n.upper() for n in converter.file_names)}), got {len(paths)}.")
    files = {n: Path(p) for n, p in zip(converter.file_names, paths, strict=True)}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"vgzoo convert {name}: no such file(s): {', '.join(missing)}.")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{str(out)!r} exists and is not empty; pass --overwrite to replace it, or name a new "
                              "folder.")
    spec, tag, cfg = _spec_and_cfg(converter.model)
    source = " + ".join(str(p) for p in files.values())
    converted = read_files(converter.reader, files, cfg, f"vgzoo convert {name}")
    if converted.model and converted.model != converter.model:  # the files hold another of the family's names
        spec, tag, cfg = _spec_and_cfg(converted.model)
    model = build_converted(spec, tag, cfg, converted, source)
    save_atomically(model, out, save=save_pretrained)
    return model, out


def convert_reference_generator(src: str | os.PathLike, out: str | os.PathLike, overwrite: bool = False,
                                **overrides):
    """A pytorch-CycleGAN-and-pix2pix generator ``.pth`` as a saved generator-only translator folder.

    ``overrides`` are :func:`vgzoo.convert.reference_generator`'s (``netG``, ``ngf``, ``norm``, ``in_chans``,
    ``out_chans``, ``dropout``; None reads them from the checkpoint). ``out`` must not hold anything unless
    ``overwrite``; it is written atomically either way.

    Returns:
        ``(model, path)``: the ``cyclegan_resnet_generator`` (ResNet) or ``pix2pix_unet_generator`` (U-Net) model
        and the folder written, which ``vgzoo.create("local-dir:OUT")``, translate, export and the demo read.
    """
    from ._builder import save_atomically
    from .convert.reference import read_reference_generator
    from .share.card import save_pretrained

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{str(out)!r} exists and is not empty; pass --overwrite to replace it, or name a new "
                              "folder.")
    converted = read_reference_generator(src, **{k: v for k, v in overrides.items() if v is not None})
    spec, tag, cfg = _spec_and_cfg(converted.model)
    model = build_converted(spec, tag, cfg, converted, str(src))
    save_atomically(model, out, save=save_pretrained)
    return model, out


def _spec_and_cfg(name: str):
    """``name`` or ``name.tag`` -> the spec, the tag (the default one for a plain name) and its config."""
    from ._registry import load_spec, resolve_name, split_name

    arch, tag = split_name(resolve_name(name))
    spec = load_spec(arch)
    return (spec, *spec.cfg_for(tag))


# ------------------------------------------------------------------------------ vgzoo's own converters
timm_vit = Converter(
    model="vit_b16_scratch",
    reader="vgzoo.convert.timm_vit:read_timm_vit",
    description="A timm ViT checkpoint (.safetensors) -> a vit_*_scratch folder (the width picks the name).",
    command="vgzoo.cli:convert_timm_vit_cmd",
)
pix2pix_reference = Converter(
    model="cyclegan_resnet_generator",
    reader="vgzoo.convert.reference:read_published_generator",
    description="A pytorch-CycleGAN-and-pix2pix generator .pth (or a checkpoints folder) -> a vgzoo folder.",
    command="vgzoo.cli:convert_pix2pix_reference_cmd",
)
generator_json = Converter(
    model="cyclegan_resnet_generator",  # or pix2pix_unet_generator: the reader says which from the JSON's kind
    reader="vgzoo.convert.reference:read_generator_json",
    description="A generator folder written by vgzoo 0.2 (generator.json + generator.safetensors) -> a model folder "
                "(cyclegan_resnet_generator or pix2pix_unet_generator).",
    file_names=("config", "weights"),
)


def convert_timm_vit_file(src: str | os.PathLike, dst_dir: str | os.PathLike, allow_pickle: bool = False):
    """Convert a timm ViT checkpoint file into a saved vgzoo folder (``model.safetensors`` + ``config.json``).

    Args:
        src: a timm ``.safetensors`` file (a ``.pth``/``.bin`` only with ``allow_pickle``).
        dst_dir: output folder; ``vgzoo.create("local-dir:DST_DIR")`` rebuilds the model.
        allow_pickle: opt in to reading a pickle with ``torch.load(weights_only=True)``.

    Returns:
        ``(model, path)``: the vgzoo model holding the weights and the folder written.
    """
    from . import _hub
    from ._factory import create
    from .convert.timm_vit import infer_timm_vit_config
    from .share.card import save_pretrained

    raw = _hub.load_state_dict(src, allow_pickle=allow_pickle)
    name, kwargs = infer_timm_vit_config(raw)
    model = create(name, checkpoint_path=src, allow_pickle=allow_pickle, **kwargs)
    path = save_pretrained(model, Path(dst_dir))
    return model, path


def reference_composite(directory: str | os.PathLike, model: str = "cycle_gan", epoch: str = "latest"):
    """Assemble a whole vgzoo composite from a reference ``checkpoints/NAME`` folder.

    Reads ``<epoch>_net_G_A.pth``, ``_G_B``, ``_D_A``, ``_D_B`` (``model="cycle_gan"``) or ``<epoch>_net_G.pth``,
    ``_D`` (``model="pix2pix"``). A missing discriminator file (test-only folders) leaves that discriminator at
    its initialisation, with a warning: fine for inference, not for resuming training.

    Returns:
        ``cyclegan_resnet`` / ``cyclegan_resnet6`` (or ``cyclegan_resnet`` with another ``n_blocks``), or
        ``pix2pix_unet`` / ``pix2pix_unet128``, built with ``vgzoo.create`` so ``vgzoo.save_pretrained`` works.
    """
    from ._factory import create
    from .convert.reference import parse_netG, reference_discriminator, reference_generator

    directory = Path(directory)
    if not directory.is_dir():
        raise WeightsNotFoundError(f"{str(directory)!r} is not a folder; expected a reference checkpoints/NAME folder.")
    if model not in ("cycle_gan", "pix2pix"):
        raise ValueError(f"model={model!r}; expected 'cycle_gan' or 'pix2pix' (the reference's --model).")

    def path(net: str, required: bool) -> Path | None:
        p = directory / f"{epoch}_net_{net}.pth"
        if p.is_file():
            return p
        if required:
            found = sorted(x.name for x in directory.glob("*_net_*.pth"))
            raise WeightsNotFoundError(
                f"{str(p)!r} does not exist (model={model!r}, epoch={epoch!r}); the folder holds "
                f"{found or 'no .pth files'}."
            )
        warnings.warn(f"{p.name} not found: that discriminator keeps its initial weights (inference only).",
                      stacklevel=3)
        return None

    if model == "cycle_gan":
        g_ab = reference_generator(path("G_A", True))
        g_ba = reference_generator(path("G_B", True))
        cfg = g_ab.reference_config
        kind, n_blocks = parse_netG(cfg["netG"])
        if kind != "resnet" or g_ba.reference_config["netG"] != cfg["netG"]:
            raise WeightsError(f"{directory}: vgzoo's CycleGAN uses ResNet generators; found {cfg['netG']} and "
                               f"{g_ba.reference_config['netG']}.")
        d_b_path, d_a_path = path("D_A", False), path("D_B", False)  # reference D_A judges domain B
        d_b = reference_discriminator(d_b_path) if d_b_path else None
        d_a = reference_discriminator(d_a_path) if d_a_path else None
        d_cfg = (d_b or d_a).reference_config if (d_b or d_a) else {"ndf": 64, "n_layers": 3}
        name = "cyclegan_resnet6" if n_blocks == 6 else "cyclegan_resnet"
        kwargs = {"ngf": cfg["ngf"], "ndf": d_cfg["ndf"], "n_layers_D": d_cfg["n_layers"], "norm": cfg["norm"],
                  "dropout": cfg["dropout"], "in_chans": cfg["in_chans"], "out_chans": cfg["out_chans"]}
        if n_blocks not in (6, 9):
            kwargs["n_blocks"] = n_blocks
        net = create(name, **kwargs)
        parts = {"G_AB": g_ab, "G_BA": g_ba, "D_A": d_a, "D_B": d_b}
    else:
        g = reference_generator(path("G", True))
        cfg = g.reference_config
        kind, depth = parse_netG(cfg["netG"])
        if kind != "unet" or depth not in (7, 8):
            raise WeightsError(
                f"{directory}: this pix2pix uses netG={cfg['netG']!r}; the registered pix2pix models use unet_256 or "
                "unet_128. Convert the generator alone: vgzoo convert pix2pix-reference latest_net_G.pth OUT_DIR."
            )
        d_path = path("D", False)
        d = reference_discriminator(d_path) if d_path else None
        d_cfg = d.reference_config if d else {"ndf": 64, "n_layers": 3}
        name = "pix2pix_unet" if depth == 8 else "pix2pix_unet128"
        net = create(name, ngf=cfg["ngf"], ndf=d_cfg["ndf"], n_layers_D=d_cfg["n_layers"], norm=cfg["norm"],
                           dropout=cfg["dropout"], in_chans=cfg["in_chans"], out_chans=cfg["out_chans"])
        parts = {"generator": g, "discriminator": d}
    for attr, part in parts.items():
        if part is not None:
            try:
                getattr(net, attr).load_state_dict(part.state_dict())
            except RuntimeError as exc:
                raise WeightsError(
                    f"{directory}: the {attr} checkpoint does not fit the assembled {name}: {exc}") from exc
    net.pretrained_cfg["weight_source"] = f"reference:{directory}"
    return net.eval()
