"""Files in another implementation's layout -> a vgzoo model: readers, their result and ``vgzoo convert``.

A *reader* is a pure function of files, ``reader(files: dict[str, Path], cfg: PretrainedCfg) -> ConvertedWeights``:
it reads what another implementation published (a pickle, an ``.npz``, several files) and returns the constructor
arguments and the state dict in vgzoo's key layout. It never touches the network and imports nothing private of
vgzoo; the core fetches the files (a tag's ``files`` / ``hf_hub_files``) or takes them from the command line
(``vgzoo convert NAME FILE... OUT``), checks every key and shape against the architecture built on the meta device
(so a file that asks for an absurd size allocates nothing), then builds the model and loads it strictly.

A :class:`Converter` makes a reader a ``vgzoo convert`` command. Converters are entry points of the group
``vgzoo.converters`` (name -> ``"module:attr"`` of a :class:`Converter`); vgzoo's own are declared the same way::

    [project.entry-points."vgzoo.converters"]
    stylegan2-pkl = "vgzoo_stylegan2.convert:stylegan2_pkl"
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import PluginError, VgzooError, WeightsError

if TYPE_CHECKING:
    from ._registry import ModelSpec, PretrainedCfg

ENTRY_POINT_GROUP = "vgzoo.converters"


@dataclass(frozen=True)
class ConvertedWeights:
    """What a reader returns.

    Attributes:
        config: constructor arguments of the model name's class, merged over the variant's and the tag's
            ``model_args`` (only what the files decide, e.g. a width read from a tensor's shape).
        state_dict: tensors in vgzoo's key layout; every key of the architecture, each with its shape.
        model: for ``vgzoo convert``, the registered name the files hold when it is not the converter's ``model``
            (a converter whose files may hold one of several classes, e.g. an unconditional or a class-conditional
            generator, says which from what it read); None keeps the converter's.
    """

    config: dict[str, Any]
    state_dict: dict[str, Any]
    model: str | None = None


@dataclass(frozen=True)
class Converter:
    """A ``vgzoo convert NAME FILE... OUT`` command: ``reader`` applied to the files, saved as ``model``.

    Attributes:
        model: the registered model name the converted folder holds (its default tag's config is the reader's
            ``cfg``).
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


def load_object(ref: str, what: str) -> Any:
    """The object ``"package.module:attr"`` names; a PluginError that says ``what`` it was for otherwise."""
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name.strip())
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a broken plugin must not break the zoo
        raise PluginError(f"{what}: {ref!r} failed to import: {exc!r}") from exc
    target = getattr(module, attr.strip(), None)
    if target is None:
        raise PluginError(f"{what}: module {module_name!r} has no attribute {attr!r} (from {ref!r}).")
    return target


def read_files(reader: str | Callable, files: Mapping[str, Path], cfg: PretrainedCfg, what: str) -> ConvertedWeights:
    """Call ``reader(files, cfg)`` and check its result's type; a reader that fails raises WeightsError.

    Any exception of a reader is taken to mean the files are not what it reads (a reader is a pure function of
    its files), so the caller can drop them from the cache.
    """
    function = load_object(reader, f"the reader of {what}") if isinstance(reader, str) else reader
    shown = reader if isinstance(reader, str) else getattr(reader, "__qualname__", repr(reader))
    try:
        result = function(dict(files), cfg)
    except WeightsError:
        raise
    except Exception as exc:
        names = ", ".join(f"{k}={str(v)!r}" for k, v in files.items())
        raise WeightsError(f"{what}: the reader {shown} cannot read {names}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(result, ConvertedWeights):
        raise PluginError(f"{what}: the reader {shown} returned a {type(result).__name__}; a reader must return "
                          "vgzoo.ConvertedWeights(config, state_dict).")
    return result


def build_converted(spec: ModelSpec, tag: str, cfg: PretrainedCfg, converted: ConvertedWeights, source: str):
    """``spec``'s model for ``tag`` holding ``converted``: checked on the meta device, then built and loaded strictly."""
    from . import _hub
    from ._factory import _build

    shown = f"{spec.name}.{tag}" if tag else spec.name
    _hub.check_fit(_meta_shapes(spec, cfg, converted.config, shown), converted.state_dict, source, shown)
    model = _build(spec, tag, cfg, dict(converted.config), source)
    _hub.load_into(model, dict(converted.state_dict), source, strict=True)
    return model.eval()


def _meta_shapes(spec: ModelSpec, cfg: PretrainedCfg, config: dict[str, Any], shown: str) -> dict[str, tuple]:
    """The architecture's key -> shape, built on the meta device (no memory for the tensors)."""
    import torch

    try:
        with torch.device("meta"):
            skeleton = spec.build(cfg, **config)
    except TypeError as exc:  # an argument the class does not take
        raise WeightsError(f"{shown}: the reader's config {config} does not build the model: {exc}") from exc
    return {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}


# ------------------------------------------------------------------------------------ the converters group
def converter_entry_points() -> dict[str, metadata.EntryPoint]:
    """Every installed ``vgzoo.converters`` entry point by name (vgzoo's own win a name claimed twice)."""
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        builtin = ep.dist is not None and ep.dist.metadata["Name"] == "vgzoo"
        if ep.name not in found or builtin:
            found[ep.name] = ep
    return found


def get_converter(name: str) -> Converter:
    """The converter called ``name``; an unknown name gets the known ones (and the close ones) in its error."""
    eps = converter_entry_points()
    if name not in eps:
        close = difflib.get_close_matches(name, sorted(eps), n=3, cutoff=0.5)
        hint = f"Did you mean: {', '.join(close)}? " if close else ""
        raise UnknownConverterError(
            f"Unknown converter {name!r}. {hint}Known converters: {', '.join(sorted(eps)) or '(none)'}; plugins add "
            f"theirs through the {ENTRY_POINT_GROUP!r} entry-point group."
        )
    target = load_object(eps[name].value, f"converter {name!r}")
    if not isinstance(target, Converter):
        raise PluginError(f"converter {name!r}: {eps[name].value!r} is a {type(target).__name__}, not a "
                          "vgzoo.Converter.")
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
    from ._registry import load_spec
    from .pretrained import save_atomically

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
    spec = load_spec(converter.model)
    tag, cfg = spec.cfg_for(None)
    source = " + ".join(str(p) for p in files.values())
    converted = read_files(converter.reader, files, cfg, f"vgzoo convert {name}")
    if converted.model and converted.model != converter.model:  # the files hold another of the family's names
        spec = load_spec(converted.model)
        tag, cfg = spec.cfg_for(None)
    model = build_converted(spec, tag, cfg, converted, source)
    save_atomically(model, out)
    return model, out
