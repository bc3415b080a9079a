"""Read a StyleGAN2-ADA network snapshot (``*.pkl``) as data, without running anything from the file.

NVlabs/stylegan2-ada-pytorch saves its networks as "persistent" objects: each module pickles as a call to
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` whose ``meta`` carries the source code of the
module's Python file, and the reference's loader rebuilds the network by *executing* that source. A file from
the internet can therefore run anything on load. This reader never does: a restricted unpickler resolves only
the names below, each to a function of vgzoo's that builds plain data, and refuses every other name it meets.

- ``_reconstruct_persistent_obj`` -> a :class:`PersistentRecord`: the recorded class name, constructor
  arguments (``init_args``/``init_kwargs``) and module state (``_parameters``, ``_buffers``, ``_modules``);
  the embedded source is kept as a string and never compiled.
- tensor storage rebuilds (``torch._utils._rebuild_tensor_v2``/``_rebuild_parameter``, with each storage's bytes
  read by ``torch.load(weights_only=True)``), ``collections.OrderedDict``, the reference's ``dnnlib.util.EasyDict``
  (read as a plain dict) and numpy's numeric scalars (read as Python numbers).

vgzoo then builds its own :class:`~vgzoo_stylegan2.networks.Generator` and
:class:`~vgzoo_stylegan2.networks.Discriminator` from the recorded constructor arguments and maps every tensor
key by key, shape by shape: :func:`read_reference_snapshot` is the reader (vgzoo's published-weights interface) of
the ``stylegan2.*`` tags and of ``vgzoo convert stylegan2-reference``, and vgzoo's core compares every key and shape
with the architecture built on the meta device; a key or shape on either side without its partner is an error
that names it.
"""

from __future__ import annotations

import inspect
import io
import pickle
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vgzoo import ConvertedWeights, Converter
from vgzoo.errors import WeightsError

from .networks import Discriminator, Generator

__all__ = [
    "UnsafeSnapshotError",
    "PersistentRecord",
    "load_snapshot",
    "snapshot_config",
    "snapshot_state_dict",
    "convert_snapshot",
    "read_reference_snapshot",
    "stylegan2_reference_converter",
    "NETWORKS",
]

# The snapshot's networks and the prefix of each in the model's state dict (StyleGAN2.G, .D, .G_ema).
NETWORKS = {"G": "Generator", "D": "Discriminator", "G_ema": "Generator"}
# Constructor arguments of G that the model takes at its top level; the rest of D's go to D_kwargs.
_SHARED_D_ARGS = ("c_dim", "img_resolution", "img_channels")


class UnsafeSnapshotError(WeightsError):
    """A snapshot that names something the safe reader does not admit (it is refused, not run)."""


class PersistentRecord:
    """What a reference snapshot records for one persistent module, as data.

    Attributes:
        class_name: the recorded class name (``Generator``, ``Discriminator``, ``AugmentPipe``, ...).
        module_src: the embedded Python source, kept as text only (vgzoo never compiles or runs it).
        state: the module's ``__dict__`` as recorded (plain values, tensors, nested records).
    """

    def __init__(self, class_name: str, module_src: str, state: dict[str, Any]) -> None:
        self.class_name, self.module_src, self.state = class_name, module_src, state

    @property
    def init_args(self) -> tuple:
        return tuple(self.state.get("_init_args") or ())

    @property
    def init_kwargs(self) -> dict[str, Any]:
        return _plain(dict(self.state.get("_init_kwargs") or {}))

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """The parameters and persistent buffers of this module and its children, keyed as ``state_dict`` keys."""
        out: dict[str, torch.Tensor] = {}
        skip = set(self.state.get("_non_persistent_buffers_set") or ())
        for group in ("_parameters", "_buffers"):
            for name, value in (self.state.get(group) or {}).items():
                if value is None or (group == "_buffers" and name in skip):
                    continue
                if not isinstance(value, torch.Tensor):
                    raise WeightsError(f"stylegan2 snapshot: {prefix}{name} is a {type(value).__name__}, "
                                       "not a tensor; the file is not a network snapshot vgzoo can read.")
                out[prefix + name] = value
        for name, child in (self.state.get("_modules") or {}).items():
            if child is None:
                continue
            if not isinstance(child, PersistentRecord):
                raise WeightsError(f"stylegan2 snapshot: submodule {prefix}{name} is a {type(child).__name__}, "
                                   "not a recorded network module.")
            out.update(child.tensors(f"{prefix}{name}."))
        return out

    def __repr__(self) -> str:
        return f"PersistentRecord({self.class_name!r}, init_kwargs={self.init_kwargs!r})"


# --------------------------------------------------------------------------- what the unpickler admits
def _persistent_record(meta: Any) -> PersistentRecord:
    if not isinstance(meta, Mapping) or meta.get("type") != "class":
        raise UnsafeSnapshotError("stylegan2 snapshot: a persistent object without the reference's "
                                  "{'type': 'class', ...} record; refusing the file.")
    class_name, state, src = meta.get("class_name"), meta.get("state"), meta.get("module_src")
    if not isinstance(class_name, str) or not isinstance(state, Mapping):
        raise UnsafeSnapshotError("stylegan2 snapshot: a persistent object whose class name or state is "
                                  "malformed; refusing the file.")
    return PersistentRecord(class_name, src if isinstance(src, str) else "", dict(state))


def _load_storage(data: Any) -> Any:
    if not isinstance(data, bytes):
        raise UnsafeSnapshotError("stylegan2 snapshot: a tensor storage that is not bytes; refusing the file.")
    # torch's own restricted unpickler: storages and tensors only
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _rebuild_tensor(storage: Any, storage_offset: int, size: tuple, stride: tuple, requires_grad: bool = False,
                    backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    if not isinstance(storage, torch.storage.TypedStorage) or not all(
            isinstance(v, int) for v in (storage_offset, *size, *stride)):
        raise UnsafeSnapshotError("stylegan2 snapshot: a tensor record that is not storage, offset, size and "
                                  "stride; refusing the file.")
    t = torch.empty(0, dtype=storage.dtype)
    return t.set_(storage._untyped_storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data: Any, requires_grad: bool = False, backward_hooks: Any = None,
                       state: Any = None) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise UnsafeSnapshotError("stylegan2 snapshot: a parameter record without a tensor; refusing the file.")
    return data  # the values are what vgzoo needs; its own modules own the parameters


class _DType:
    """numpy's ``dtype(name, align, copy)`` as data: only numeric kinds, resolved to a numpy dtype on use."""

    _NUMERIC = {"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8"}

    def __init__(self, name: Any, align: Any = False, copy: Any = True) -> None:
        if name not in self._NUMERIC:
            raise UnsafeSnapshotError(f"stylegan2 snapshot: numpy dtype {name!r} is not a plain number type; "
                                      "refusing the file.")
        self.name, self.byteorder = name, "<"

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.byteorder = state[1]

    def numpy(self) -> np.dtype:
        return np.dtype(("" if self.byteorder in "|=" else self.byteorder) + self.name)


def _numpy_scalar(dtype: Any, data: Any = b"") -> Any:
    if not isinstance(dtype, _DType) or not isinstance(data, bytes):
        raise UnsafeSnapshotError("stylegan2 snapshot: a numpy scalar that is not a plain number; refusing it.")
    return np.frombuffer(data, dtype=dtype.numpy(), count=1)[0].item()


class _PlainDict(dict):
    """The reference's ``dnnlib.util.EasyDict`` read as the dict it is (its attribute access is not needed)."""

    def __setstate__(self, state: Any) -> None:  # an EasyDict pickles an empty instance __dict__; nothing to keep
        pass


_ADMITTED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_record,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("numpy", "dtype"): _DType,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("dnnlib.util", "EasyDict"): _PlainDict,
}


class _SnapshotUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ADMITTED[(module, name)]
        except KeyError:
            raise UnsafeSnapshotError(
                f"stylegan2 snapshot: refusing '{module}.{name}': the safe reader admits only the reference's "
                "persistent-module records, tensor storages, plain containers and numbers, and never runs code "
                "from a file. If this is a snapshot of a modified StyleGAN2-ADA, re-save its networks' state "
                "dicts as safetensors and load them with vgzoo.create(..., checkpoint_path=...)."
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeSnapshotError("stylegan2 snapshot: a persistent id, which network snapshots do not use; "
                                  "refusing the file.")


def load_snapshot(path: str | Path) -> dict[str, Any]:
    """The snapshot's top-level dict (``G``, ``D``, ``G_ema`` as :class:`PersistentRecord`, ...) read as data."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = _SnapshotUnpickler(fh).load()
    except FileNotFoundError:
        raise
    except (UnsafeSnapshotError, WeightsError):
        raise
    except Exception as exc:  # truncated or not a pickle: say which file and what was expected
        raise WeightsError(f"stylegan2 snapshot {path}: cannot be read as a StyleGAN2-ADA network snapshot "
                           f"({type(exc).__name__}: {exc}).") from exc
    if not isinstance(data, Mapping):
        raise WeightsError(f"stylegan2 snapshot {path}: holds a {type(data).__name__}, not the reference's dict "
                           "of networks (G, D, G_ema, ...).")
    return dict(data)


# -------------------------------------------------------------------------------------- conversion
def _plain(value: Any) -> Any:
    """Containers as plain dicts and lists (JSON's kinds), numbers as Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _constructor_args(record: PersistentRecord, cls: type, what: str) -> dict[str, Any]:
    """The recorded ``init_args``/``init_kwargs`` bound to vgzoo's class of the same name and signature."""
    try:
        bound = inspect.signature(cls).bind(*_plain(list(record.init_args)), **record.init_kwargs)
    except TypeError as exc:
        raise WeightsError(f"stylegan2 snapshot: {what}'s recorded constructor arguments do not fit "
                           f"{cls.__name__}: {exc}. Recorded: args={record.init_args!r}, "
                           f"kwargs={record.init_kwargs!r}.") from exc
    return dict(bound.arguments)


def _networks(snapshot: Mapping[str, Any], source: str) -> dict[str, PersistentRecord]:
    records = {}
    for key, class_name in NETWORKS.items():
        record = snapshot.get(key)
        if key not in snapshot:
            raise WeightsError(f"stylegan2 snapshot {source}: no network {key!r} (found {sorted(snapshot)}); "
                               "vgzoo reads snapshots holding G, D and G_ema, as the reference's training writes.")
        if not isinstance(record, PersistentRecord):
            raise WeightsError(f"stylegan2 snapshot {source}: {key!r} is a {type(record).__name__}, not a "
                               "recorded network; the file is not a StyleGAN2-ADA network snapshot.")
        if record.class_name != class_name:
            raise WeightsError(f"stylegan2 snapshot {source}: {key} is a {record.class_name!r}, expected "
                               f"{class_name!r}.")
        records[key] = record
    return records


def snapshot_config(snapshot: Mapping[str, Any], source: str = "snapshot") -> dict[str, Any]:
    """The model's constructor arguments (``StyleGAN2(**config)``) from the recorded G, G_ema and D arguments."""
    records = _networks(snapshot, source)
    g_args = _constructor_args(records["G_ema"], Generator, "G_ema")
    if _constructor_args(records["G"], Generator, "G") != g_args:
        raise WeightsError(f"stylegan2 snapshot {source}: G and G_ema were built with different arguments; "
                           "vgzoo's model keeps one generator configuration for both.")
    d_args = _constructor_args(records["D"], Discriminator, "D")
    for name in _SHARED_D_ARGS:
        if d_args.pop(name) != g_args[name]:
            raise WeightsError(f"stylegan2 snapshot {source}: D's {name} differs from G's; a snapshot's "
                               "networks must agree on it.")
    return {**{k: v for k, v in g_args.items()}, "D_kwargs": d_args}


def snapshot_state_dict(snapshot: Mapping[str, Any], source: str = "snapshot") -> dict[str, torch.Tensor]:
    """Every tensor of G, D and G_ema under the model's keys (``G.``, ``D.``, ``G_ema.`` + the reference's key)."""
    out: dict[str, torch.Tensor] = {}
    for key, record in _networks(snapshot, source).items():
        out.update(record.tensors(f"{key}."))
    return out


def convert_snapshot(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(config, state_dict)`` of a snapshot: the model's constructor arguments and its tensors under its keys.

    Nothing is checked against an architecture here: the reader's caller (vgzoo's core) builds the model on the
    meta device and compares every key and shape before allocating anything.
    """
    source = str(path)
    snapshot = load_snapshot(path)
    return snapshot_config(snapshot, source), {k: v.clone() for k, v in snapshot_state_dict(snapshot, source).items()}


def read_reference_snapshot(files: dict[str, Path], cfg: Any = None) -> ConvertedWeights:
    """The reader of the published tags and of ``vgzoo convert stylegan2-reference``: ``files["weights"]`` is a
    network snapshot; the model is ``stylegan2_cifar``'s class when it records ``c_dim > 0``, else ``stylegan2``'s."""
    config, state_dict = convert_snapshot(files["weights"])
    return ConvertedWeights(config=config, state_dict=state_dict,
                            model="stylegan2_cifar" if config["c_dim"] > 0 else "stylegan2")


stylegan2_reference_converter = Converter(
    model="stylegan2",
    reader="vgzoo_stylegan2.snapshot:read_reference_snapshot",
    description="A StyleGAN2-ADA network snapshot (.pkl), read without running its code -> a vgzoo folder.",
)
