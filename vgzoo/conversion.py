"""Files in another implementation's layout -> a vgzoo model: readers, their result and ``vgzoo convert``.

A *reader* is a pure function of files, ``reader(files: dict[str, Path], cfg: PretrainedCfg) -> ConvertedWeights``:
it reads what another implementation published (a pickle, an ``.npz``, several files) and returns the constructor
arguments and the state dict in vgzoo's key layout. It never touches the network and imports nothing private of
vgzoo; the core fetches the files (a tag's ``files`` / ``hf_hub_files``) or takes them from the command line
(``vgzoo convert NAME FILE... OUT``), checks every key and shape against the architecture built on the meta device
(so a file that asks for an absurd size allocates nothing), then builds the model and loads it strictly.

A :class:`vgzoo.converters.Converter` makes a reader a ``vgzoo convert`` command (:mod:`vgzoo.converters`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import PluginError, WeightsError

if TYPE_CHECKING:
    from ._registry import ModelSpec, PretrainedCfg

@dataclass(frozen=True)
class ConvertedWeights:
    """What a reader returns.

    Attributes:
        config: constructor arguments of the model name's class, merged over the variant's and the tag's
            ``model_args`` (only what the files decide, e.g. a width read from a tensor's shape).
        state_dict: tensors in vgzoo's key layout; every key of the architecture, each with its shape.
        model: for ``vgzoo convert``, the registered name (or ``name.tag``) the files hold when it is not the
            converter's ``model`` (a converter whose files may hold one of several classes, e.g. an unconditional
            or a class-conditional generator, says which from what it read); None keeps the converter's.
    """

    config: dict[str, Any]
    state_dict: dict[str, Any]
    model: str | None = None


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
    """``spec``'s model for ``tag`` holding ``converted``: checked on the meta device, then built and loaded
    strictly."""
    from . import _hub
    from ._builder import build

    shown = f"{spec.name}.{tag}" if tag else spec.name
    _hub.check_fit(_meta_shapes(spec, cfg, converted.config, shown), converted.state_dict, source, shown)
    model = build(spec, tag, cfg, dict(converted.config), source)
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
