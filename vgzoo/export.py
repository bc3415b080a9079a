"""Export a vgzoo model's inference network to ONNX or to a ``torch.export`` program (``.pt2``), check it
against PyTorch, and run an exported ``.onnx`` file (onnxruntime) behind ``vgzoo translate``.

What is exported follows the model's capability (vgzoo.protocols), never its attributes:

- ``Translator`` -> ``inference_generator(direction)`` (pix2pix's U-Net, CycleGAN's ``G_AB``/``G_BA``);
- ``ConditionalSampler`` -> ``forward(z, labels)``; ``UnconditionalSampler`` -> ``forward(z)``;
- ``Restorer`` -> ``forward(degraded)``; ``Classifier`` -> ``forward(x)`` (logits).

Both formats come from torch's own exporters on one ``torch.export`` trace: ``torch.export.export`` for
``.pt2`` and ``torch.onnx.export(..., dynamo=True)`` for ``.onnx`` (checked with ``onnx.checker``). The batch
axis is always dynamic; height and width are dynamic where the exported network declares ``size_multiple``
(the convention ``vgzoo translate`` already pads to: any multiple of it from the smallest size the trace
allows), otherwise fixed at ``pretrained_cfg["input_size"]``. The graph is in eval mode; ``test_dropout=True``
keeps the dropout layers sampling, as the pix2pix reference does at test time.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import InputSizeError, VgzooError

__all__ = [
    "ExportError",
    "ExportTarget",
    "OnnxModel",
    "OnnxTranslator",
    "Traced",
    "check_export",
    "export_model",
    "export_target",
    "read_metadata",
    "trace_model",
]

FORMATS = ("onnx", "pt2")
METADATA_KEY = "vgzoo"  # ONNX metadata_props key / pt2 extra file holding the JSON below
PT2_EXTRA = "vgzoo.json"
CHECK_TOLERANCE = 1e-4
EXTRA_HINT = "pip install 'vgzoo[export]'"


class ExportError(VgzooError, ValueError):
    """A model, part or option that cannot be exported, or an export that does not match PyTorch."""


class MissingExportDependency(VgzooError, ImportError):
    """onnx / onnxruntime / onnxscript are not installed (the ``export`` extra)."""


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExportDependency(
            f"ONNX export and onnxruntime checks need the optional package {module!r}, which is not installed. "
            f"Install the export extra: {EXTRA_HINT} (onnx, onnxruntime, onnxscript)."
        ) from exc


# ----------------------------------------------------------------------------------------------- targets
@dataclass
class ExportTarget:
    """What one export holds: the network, its named inputs and the sizes it accepts."""

    module: nn.Module
    kind: str  # translation | conditional_generation | generation | restoration | classification
    input_names: list[str]
    output_names: list[str]
    make_inputs: Callable[[int, tuple[int, int] | None], tuple[torch.Tensor, ...]]
    image_input: bool  # the first input is an image (N, C, H, W)
    channels: int | None
    native_size: tuple[int, int] | None  # (H, W) of the first input when it is an image
    size_multiple: int | None  # H and W dynamic, multiples of this; None = fixed at native_size
    description: str
    part: str
    min_size: tuple[int, int] | None = None  # filled after tracing
    direction: str | None = None  # translators: the direction of the exported generator

    def size_rule(self) -> dict[str, Any]:
        """The accepted input sizes, as stored in the file's metadata."""
        rule: dict[str, Any] = {"batch": "any >= 1"}
        if not self.image_input:
            return rule
        if self.size_multiple is None:
            rule.update(height=self.native_size[0], width=self.native_size[1], fixed=True)
        else:
            low = self.min_size or (self.size_multiple, self.size_multiple)
            rule.update(multiple=self.size_multiple, min_height=low[0], min_width=low[1], fixed=False)
        return rule


def describe_size_rule(rule: dict[str, Any]) -> str:
    """A size rule (see :meth:`ExportTarget.size_rule`) in words."""
    if "multiple" in rule:
        m = rule["multiple"]
        return (f"any height and width that are multiples of {m}, at least {rule['min_height']}x{rule['min_width']} "
                f"(e.g. {rule['min_height']}x{rule['min_width']}, {rule['min_height'] + m}x{rule['min_width']})")
    if "height" in rule:
        return f"exactly {rule['height']}x{rule['width']}"
    return "any batch size"


def check_size(rule: dict[str, Any], h: int, w: int, what: str) -> None:
    """Raise :class:`InputSizeError` naming the accepted sizes when ``h`` x ``w`` breaks ``rule``."""
    if "multiple" in rule:
        m = rule["multiple"]
        ok = h % m == 0 and w % m == 0 and h >= rule["min_height"] and w >= rule["min_width"]
    elif "height" in rule:
        ok = (h, w) == (rule["height"], rule["width"])
    else:
        ok = True
    if not ok:
        raise InputSizeError(
            f"{what} cannot take a {h}x{w} input: it accepts {describe_size_rule(rule)}. Resize or pad the "
            "images (vgzoo translate pads to a multiple and crops back), or export again from the PyTorch model."
        )


def _exportable(model) -> str:
    from .protocols import ConditionalSampler, Translator

    if isinstance(model, Translator):
        return ", ".join(f"--direction {d}" for d in model.directions) + " (the translation generator)"
    if isinstance(model, ConditionalSampler):
        return "the generator as forward(z, labels) (no --part needed)"
    return "the model's inference forward (no --part needed)"


def _resolve_part(model, part: str | None, direction: str | None) -> str | None:
    """Map ``part`` (a generator/discriminator name) to a direction, or refuse a training-only part."""
    from .protocols import GANModel, Translator

    if part is None:
        return direction
    gens = model.generators() if isinstance(model, GANModel) else {}
    discs = model.discriminators() if isinstance(model, GANModel) else {}
    name = type(model).__name__
    if part in discs:
        raise ExportError(
            f"{name}.{part} is a discriminator: it is used only in training and has no inference role, so it is "
            f"not exported. Exportable: {_exportable(model)}."
        )
    if part in gens:
        if isinstance(model, Translator):
            for d in model.directions:
                if model.inference_generator(d) is gens[part]:
                    if direction is not None and direction != d:
                        raise ExportError(f"--part {part} translates {d}, but --direction {direction} was given.")
                    return d
            raise ExportError(f"{name}.{part} is not one of the inference generators. Exportable: "
                              f"{_exportable(model)}.")
        return direction  # the sampler's / restorer's forward is its generator
    known = sorted({*gens, *discs})
    raise ExportError(
        f"{name} has no part {part!r}" + (f" (its networks: {', '.join(known)})" if known else "")
        + f". Exportable: {_exportable(model)}."
    )


def export_target(model, direction: str | None = None, part: str | None = None) -> ExportTarget:
    """The network of ``model`` that is exported, with its inputs and size rule.

    Args:
        model: a vgzoo model (vgzoo.protocols.ZooModel) implementing one inference protocol.
        direction: for a ``Translator``: which generator (default ``"AtoB"``).
        part: a network name from ``model.generators()``; a discriminator's name is refused.

    Raises:
        ExportError: not a vgzoo model, a training-only part, or no inference protocol.
    """
    from .protocols import (
        Classifier,
        ConditionalSampler,
        GANModel,
        Restorer,
        Translator,
        UnconditionalSampler,
        ZooModel,
    )

    kinds = ("Translator (its inference_generator), ConditionalSampler (forward(z, labels)), UnconditionalSampler "
             "(forward(z)), Restorer (forward(degraded)) or Classifier (logits)")
    if not isinstance(model, ZooModel):
        role = " A discriminator is used only in training." if "discriminator" in type(model).__name__.lower() else ""
        raise ExportError(
            f"export takes a vgzoo model (a name, a saved folder, or a model built by vgzoo.create); got a bare "
            f"{type(model).__name__}.{role} Exportable: the inference network of a model that is a {kinds}: pass "
            "the whole model and, for CycleGAN, a direction."
        )
    direction = _resolve_part(model, part, direction)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    input_size = tuple(cfg.get("input_size") or (3, 256, 256))
    if isinstance(model, Translator):
        direction = model.check_direction(direction or "AtoB")
        net = model.inference_generator(direction)
        channels = int(getattr(net, "in_chans", input_size[0]))
        target = _image_target(net, "translation", channels, input_size[1:], ["image"], ["translated"],
                               f"{direction} generator: images in [-1, 1] (N, {channels}, H, W) -> images in "
                               "[-1, 1]", f"inference_generator({direction!r})")
        target.direction = direction
        return target
    if direction is not None:
        raise ExportError(f"--direction is for translation models; {type(model).__name__} is not one. "
                          f"Exportable: {_exportable(model)}.")
    if isinstance(model, ConditionalSampler):
        def make(batch, size=None):
            z = model.sample_z(batch, torch.Generator().manual_seed(batch))
            return z, (torch.arange(batch) % model.num_classes).to(z.device)
        z = make(1)[0]
        return ExportTarget(model, "conditional_generation", ["z", "labels"], ["image"], make, False, None, None,
                            None, f"generator: z (N, {z.shape[1]}) float and labels (N,) int64 in "
                            f"[0, {model.num_classes}) -> images in [-1, 1]", "forward(z, labels)")
    if isinstance(model, UnconditionalSampler):
        def make(batch, size=None):
            return (model.sample_z(batch, torch.Generator().manual_seed(batch)),)
        z = make(1)[0]
        return ExportTarget(model, "generation", ["z"], ["image"], make, False, None, None, None,
                            f"generator: z (N, {z.shape[1]}) -> images in [-1, 1]", "forward(z)")
    if isinstance(model, Restorer):
        example = model.example_inputs(1)[0]
        return _image_target(model, "restoration", int(example.shape[1]), tuple(example.shape[-2:]), ["degraded"],
                             ["restored"], f"restorer: degraded (N, {example.shape[1]}, H, W) as model.degrade gives "
                             "it -> images in [-1, 1]", "forward(degraded)")
    if isinstance(model, Classifier):
        return _image_target(model, "classification", int(input_size[0]), input_size[1:], ["x"], ["logits"],
                             f"classifier: normalised images (N, {input_size[0]}, H, W) -> logits (N, "
                             f"{model.num_classes})", "forward(x)")
    what = "a GAN whose networks are all training-time" if isinstance(model, GANModel) else "a model"
    raise ExportError(f"{type(model).__name__} is {what} with no inference protocol; exportable models are a {kinds}.")


def _image_target(net, kind, channels, native, input_names, output_names, description, part) -> ExportTarget:
    multiple = getattr(net, "size_multiple", None)  # the translate-time padding convention (docs/export.md)
    multiple = int(multiple) if multiple else None
    native = (int(native[0]), int(native[1]))

    def make(batch, size=None):
        h, w = size or native
        g = torch.Generator().manual_seed(batch * 7919 + h * 31 + w)
        device = next(net.parameters(), torch.empty(0)).device  # traced and compared on the model's device
        return ((torch.rand(batch, channels, h, w, generator=g) * 2 - 1).to(device),)

    return ExportTarget(net, kind, input_names, output_names, make, True, channels, native, multiple, description,
                        part)


# ---------------------------------------------------------------------------------------------- tracing
def _dynamic_shapes(target: ExportTarget) -> tuple[dict[int, Any], ...]:
    """Per positional input: the batch axis always, H and W as multiples of ``size_multiple`` where declared."""
    from torch.export import Dim

    batch = Dim("batch", min=1)
    shapes: list[dict[int, Any]] = [{0: batch} for _ in target.input_names]
    if target.image_input and target.size_multiple:
        m = target.size_multiple
        shapes[0] = {0: batch, 2: m * Dim("h_blocks", min=1), 3: m * Dim("w_blocks", min=1)}
    return tuple(shapes)


class _TestDropout:
    """Within the block: eval mode, except dropout layers, which keep sampling (the reference's test)."""

    def __init__(self, module: nn.Module, test_dropout: bool) -> None:
        self.module, self.test_dropout = module, test_dropout
        self.modes = {m: m.training for m in module.modules()}

    def __enter__(self):
        self.module.eval()
        if self.test_dropout:
            for m in self.module.modules():
                if isinstance(m, nn.modules.dropout._DropoutNd):
                    m.train()
        return self

    def __exit__(self, *exc) -> None:
        for m, mode in self.modes.items():
            m.training = mode


def _has_dropout(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in module.modules())


def _trace(target: ExportTarget):
    """``torch.export`` the target at batch 2; find the smallest size the program takes and matches PyTorch at.

    Size-oblivious tracing (``backed_size_oblivious``) keeps torch from specialising a side of one block (the
    U-Net's innermost 1x1 map) away; the smallest size is then confirmed by running the program against eager.
    """
    import torch.fx.experimental._config as fx_config

    size = None
    if target.image_input and target.size_multiple:  # trace at >= 2 blocks a side: a 1 would be specialised
        size = tuple(max(s, 2 * target.size_multiple) for s in target.native_size)
    example = target.make_inputs(2, size)
    if not hasattr(fx_config, "backed_size_oblivious") or not hasattr(torch.compiler, "is_exporting"):
        raise ExportError(f"vgzoo export needs a newer torch than {torch.__version__} (torch.export with "
                          "size-oblivious tracing); upgrade torch (pip install -U torch).")
    try:
        with fx_config.patch(backed_size_oblivious=True):
            program = torch.export.export(target.module, example, dynamic_shapes=_dynamic_shapes(target))
    except Exception as exc:  # torch's own explanation is the useful part
        raise ExportError(f"torch.export could not trace {target.part} with a dynamic batch"
                          f"{' and size' if target.size_multiple else ''}: {exc}") from exc
    if target.image_input:
        target.min_size = target.native_size
        if target.size_multiple:
            target.min_size = _min_size(program, target)
    return program, example


def _min_size(program, target: ExportTarget) -> tuple[int, int]:
    """The smallest square side (in blocks of ``size_multiple``) at which eager and the program agree."""
    m = target.size_multiple
    bound = 2
    for sym, vr in program.range_constraints.items():  # torch.export's own lower bounds of the block counts
        if getattr(sym, "is_Symbol", False):
            bound = max(bound, int(vr.lower))
    module = program.module()
    declared = int(getattr(target.module, "min_size", 1))  # a network may state its smallest side (ResNet: 8)
    for blocks in range(max(1, -(-declared // m)), bound + 1):
        inputs = target.make_inputs(1, (blocks * m, blocks * m))
        try:
            diff = (module(*inputs) - target.module(*inputs)).abs().max()
            ok = _has_dropout_on(target.module) or bool(diff <= CHECK_TOLERANCE)  # dropout: running is enough
        except Exception:  # a size the network or the program cannot take
            ok = False
        if ok:
            return blocks * m, blocks * m
    return bound * m, bound * m


def _has_dropout_on(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.dropout._DropoutNd) and m.training and m.p > 0 for m in module.modules())


# --------------------------------------------------------------------------------------------- metadata
def _metadata(model, target: ExportTarget, fmt: str, test_dropout: bool, source: str | None) -> dict[str, Any]:
    from ._version import __version__

    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    return {
        "format": fmt,
        "model": cfg.get("architecture", type(model).__name__),
        "tag": cfg.get("tag"),
        "source": source,
        "weight_source": cfg.get("weight_source"),
        "task": cfg.get("task"),
        "kind": target.kind,
        "exported": target.part,
        "direction": target.direction,
        "description": target.description,
        "config": getattr(model, "config", {}),
        "inputs": target.input_names,
        "outputs": target.output_names,
        "in_chans": target.channels,
        "input_range": list(cfg.get("value_range") or (-1.0, 1.0)),
        "mean": list(cfg.get("mean") or ()),
        "std": list(cfg.get("std") or ()),
        "size_rule": target.size_rule(),
        "accepts": describe_size_rule(target.size_rule()),
        "test_dropout": test_dropout,
        "vgzoo_version": __version__,
        "torch_version": torch.__version__,
    }


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The vgzoo metadata stored in an exported ``.onnx`` or ``.pt2`` file."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{str(path)!r} does not exist; expected a .onnx or .pt2 file written by vgzoo export.")
    try:
        if path.suffix.lower() == ".onnx":
            onnx = _require("onnx")
            model = onnx.load(str(path), load_external_data=False)
            props = {p.key: p.value for p in model.metadata_props}
        else:
            extra = {PT2_EXTRA: ""}
            torch.export.load(str(path), extra_files=extra)
            props = {METADATA_KEY: extra[PT2_EXTRA]}
    except MissingExportDependency:
        raise
    except Exception as exc:  # protobuf's DecodeError, zipfile's and torch's errors: none names the file
        raise _unreadable(path, exc) from exc
    if not props.get(METADATA_KEY):
        raise ExportError(f"{str(path)!r} holds no vgzoo metadata: it was not written by vgzoo export. Export the "
                          "model with `vgzoo export MODEL --format onnx --out FILE`.")
    return json.loads(props[METADATA_KEY])


# ------------------------------------------------------------------------------------------------ export
def _resolve_model(model, pretrained: bool):
    if not isinstance(model, (str, os.PathLike)):
        return model, None
    import warnings

    from ._factory import load_model

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*random weights.*")  # recorded as weight_source: None instead
        return load_model(model, pretrained=pretrained), str(model)


@dataclass
class Traced:
    """One ``torch.export`` trace of a model's inference network, written to any number of files."""

    model: nn.Module
    target: ExportTarget
    program: Any  # torch.export.ExportedProgram
    meta: dict[str, Any]

    def save(self, out: str | os.PathLike, format: str | None = None, overwrite: bool = False) -> dict[str, Any]:
        """Write the program as ``.pt2`` or ONNX (checked with ``onnx.checker``), atomically; returns the metadata."""
        from ._hub import atomic_write

        out = Path(out)
        fmt = _format(out, format, overwrite)
        meta = {**self.meta, "format": fmt}
        text = json.dumps(meta, default=list)
        if fmt == "pt2":
            buffer = io.BytesIO()  # torch.export.save wants a .pt2 name or a buffer; the file is written atomically
            torch.export.save(self.program, buffer, extra_files={PT2_EXTRA: text})
            atomic_write(out, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))
            return meta
        onnx = _require("onnx")
        proto = _onnx_proto(self.target, self.program)
        for key, value in {METADATA_KEY: text, "vgzoo_model": str(meta["model"]), "vgzoo_tag": str(meta["tag"]),
                           "vgzoo_version": meta["vgzoo_version"], "vgzoo_accepts": meta["accepts"]}.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.producer_name = "vgzoo"
        onnx.checker.check_model(proto, full_check=True)
        atomic_write(out, lambda tmp: onnx.save_model(proto, tmp))
        return meta


def _format(out: Path, format: str | None, overwrite: bool) -> str:
    fmt = format or out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r}: expected one of {', '.join(FORMATS)} (or an --out ending in .onnx/.pt2).")
    if out.exists() and not overwrite:
        raise ExportError(f"{str(out)!r} exists; pass overwrite=True (CLI: --overwrite) to replace it, or choose "
                          "another --out.")
    if fmt == "onnx":
        _require("onnx")
        _require("onnxscript")  # the dynamo exporter's graph builder
    return fmt


def trace_model(model, *, direction: str | None = None, part: str | None = None, test_dropout: bool = False,
                pretrained: bool = False) -> Traced:
    """Trace ``model``'s inference network once (see :func:`export_model` for the arguments)."""
    model, source = _resolve_model(model, pretrained)
    target = export_target(model, direction, part)
    if test_dropout and not _has_dropout(target.module):
        raise ExportError(f"test_dropout: {target.part} of {type(model).__name__} has no dropout layer to keep on.")
    with torch.no_grad(), _TestDropout(target.module, test_dropout):
        program, _ = _trace(target)
    return Traced(model, target, program, _metadata(model, target, "", test_dropout, source))


def export_model(
    model,
    out: str | os.PathLike,
    format: str | None = None,
    *,
    direction: str | None = None,
    part: str | None = None,
    test_dropout: bool = False,
    pretrained: bool = False,
    overwrite: bool = False,
    check: bool = False,
) -> dict[str, Any]:
    """Export ``model``'s inference network to ``out`` (``.onnx`` or ``.pt2``).

    Args:
        model: a built vgzoo model, or anything ``vgzoo._factory.load_model`` resolves (name, ``name.tag``,
            saved folder, ``local-dir:``/``hf-hub:`` source).
        out: the file to write (atomically; an existing file only with ``overwrite``).
        format: ``"onnx"`` or ``"pt2"``; default from the suffix of ``out``.
        direction: ``Translator`` models: ``"AtoB"`` (default) or ``"BtoA"``.
        part: a network name (``G_BA``); a discriminator is refused with what can be exported.
        test_dropout: keep dropout sampling at inference (the pix2pix reference's test-time behaviour); the
            default exports eval mode, dropout off.
        pretrained: with a model name, load its published weights.
        overwrite: replace an existing ``out``.
        check: run the written file against PyTorch (:func:`check_export`) and fail above 1e-4.

    Returns:
        The metadata written into the file, with ``"check"`` added when ``check`` ran.
    """
    _format(Path(out), format, overwrite)  # refuse before the (slow) trace
    traced = trace_model(model, direction=direction, part=part, test_dropout=test_dropout, pretrained=pretrained)
    meta = traced.save(out, format, overwrite)
    if check:
        meta["check"] = check_export(out, traced.model, direction=direction, part=part)
    return meta


def _onnx_proto(target: ExportTarget, program):
    """``torch.onnx.export`` (the dynamo exporter) of the traced program, so both formats share one trace."""
    try:
        onnx_program = torch.onnx.export(program, dynamo=True, input_names=target.input_names,
                                         output_names=target.output_names, verbose=False)
    except Exception as exc:
        raise ExportError(f"torch.onnx.export (dynamo) could not export {target.part}: {exc}") from exc
    return onnx_program.model_proto


# ------------------------------------------------------------------------------------------------- check
def _unreadable(path: Path, exc: BaseException) -> ExportError:
    return ExportError(f"{str(path)!r} cannot be read as a {path.suffix} file written by vgzoo export (truncated or "
                       f"corrupt: {type(exc).__name__}: {exc}). Export the model again with `vgzoo export`.")


def _onnx_session(path: Path, test_dropout: bool = False):
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = torch.get_num_threads()  # the same CPU share PyTorch takes
    # onnxruntime's optimizer removes Dropout even in training mode; a test-dropout export keeps it
    disabled = ["EliminateDropout"] if test_dropout else None
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=disabled)
    except Exception as exc:  # onnxruntime's own error types
        raise _unreadable(path, exc) from exc


def _runner(path: Path) -> Callable[..., torch.Tensor]:
    if path.suffix.lower() == ".onnx":
        return OnnxModel(path)
    module = torch.export.load(str(path)).module()
    return lambda *inputs: module(*inputs)


def check_sizes(target: ExportTarget) -> list[tuple[int, tuple[int, int] | None]]:
    """(batch, size) pairs a check runs: batch 2 at two sizes where the size is dynamic, batch 2 and 3 otherwise."""
    if not target.image_input or not target.size_multiple:
        return [(2, None), (3, None)]
    h, w = target.native_size
    return [(2, (h, w)), (2, (h + target.size_multiple, w))]


def check_export(path: str | os.PathLike, model, *, direction: str | None = None, part: str | None = None,
                 tolerance: float = CHECK_TOLERANCE) -> dict[str, Any]:
    """Run the exported file (onnxruntime on CPU for ``.onnx``, the loaded program for ``.pt2``) and PyTorch on the
    same inputs: batch 2 at two sizes. Raises :class:`ExportError` above ``tolerance`` (max abs difference).

    A file exported with test-time dropout samples on every run: only shapes and finiteness are checked then.
    """
    path = Path(path)
    meta = read_metadata(path)
    target = export_target(model, direction, part)
    run = _runner(path)
    results = []
    reference = target.module
    with torch.no_grad(), _TestDropout(reference, False):
        for batch, size in check_sizes(target):
            inputs = target.make_inputs(batch, size)
            ref = reference(*inputs)
            got = run(*inputs).to(ref.device)
            if tuple(got.shape) != tuple(ref.shape):
                raise ExportError(f"{path.name}: output shape {tuple(got.shape)} differs from PyTorch's "
                                  f"{tuple(ref.shape)} for inputs {[tuple(x.shape) for x in inputs]}.")
            diff = None if meta.get("test_dropout") else float((got.float() - ref.float()).abs().max())
            if not bool(torch.isfinite(got).all()):
                raise ExportError(f"{path.name}: non-finite outputs for inputs {[tuple(x.shape) for x in inputs]}.")
            results.append({"inputs": [list(x.shape) for x in inputs], "max_abs_diff": diff})
            if diff is not None and diff > tolerance:
                raise ExportError(
                    f"{path.name} differs from PyTorch by {diff:.3g} (max abs) on inputs "
                    f"{[tuple(x.shape) for x in inputs]}; the tolerance is {tolerance:g} in fp32. Report this with "
                    "the model name and the output of `vgzoo --debug export ...`."
                )
    worst = [r["max_abs_diff"] for r in results if r["max_abs_diff"] is not None]
    return {"runs": results, "max_abs_diff": max(worst) if worst else None, "tolerance": tolerance,
            "runtime": "onnxruntime CPU" if path.suffix.lower() == ".onnx" else "torch.export program"}


# ------------------------------------------------------------------------------------- onnxruntime backend
class OnnxModel(nn.Module):
    """An exported ``.onnx`` file as a module: ``forward(*inputs)`` runs onnxruntime on CPU.

    Inputs are checked against the file's size rule first, so a size the graph cannot take raises
    :class:`InputSizeError` naming the sizes it accepts (instead of an onnxruntime shape error).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        self.path = Path(path)
        self.meta = read_metadata(self.path)
        self.rule = self.meta["size_rule"]
        self.size_multiple = int(self.rule.get("multiple") or 1)
        # the smallest side, for vgzoo.translate's padding of tiny images (as the PyTorch generator's min_size)
        self.min_size = max(int(self.rule.get("min_height", 1)), int(self.rule.get("min_width", 1)))
        self.in_chans = int(self.meta.get("in_chans") or 3)
        self._session = _onnx_session(self.path, bool(self.meta.get("test_dropout")))
        self._inputs = [i.name for i in self._session.get_inputs()]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if len(inputs) != len(self._inputs):
            raise ExportError(f"{self.path.name} takes {len(self._inputs)} input(s) ({', '.join(self._inputs)}); "
                              f"got {len(inputs)}.")
        if "height" in self.rule or "multiple" in self.rule:
            x = inputs[0]
            check_size(self.rule, int(x.shape[-2]), int(x.shape[-1]), f"{self.path.name} ({self.meta.get('model')})")
        feeds = {n: x.detach().cpu().numpy() for n, x in zip(self._inputs, inputs, strict=True)}
        return torch.from_numpy(self._session.run(None, feeds)[0]).to(inputs[0].device)


class OnnxTranslator(OnnxModel):
    """An exported translation generator: what ``vgzoo translate FILE.onnx`` runs. ``size_multiple`` and
    ``in_chans`` come from the metadata, so images are read and padded exactly as for the PyTorch generator."""

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        if self.meta.get("kind") != "translation":
            raise ExportError(
                f"{self.path.name} holds a {self.meta.get('task') or self.meta.get('kind')} model "
                f"({self.meta.get('model')}); vgzoo translate needs an exported translation generator "
                "(pix2pix or CycleGAN: `vgzoo export NAME --format onnx --out FILE`)."
            )


def load_onnx_translator(path: str | os.PathLike, direction: str = "AtoB") -> OnnxTranslator:
    """The translator in an exported ``.onnx`` file (its direction was fixed at export time)."""
    generator = OnnxTranslator(path)
    exported = generator.meta.get("direction") or "AtoB"
    if direction != "AtoB" and direction != exported:  # AtoB is the default: it takes whichever the file holds
        raise ExportError(f"{generator.path.name} holds the {exported} generator; direction={direction!r} needs "
                          f"the other one: export it with `vgzoo export MODEL --direction {direction} ...`.")
    return generator
