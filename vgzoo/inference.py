"""Running a trained model: where, in which precision, compiled or not, with image files loaded alongside.

One place for what ``vgzoo translate``, ``vgzoo generate``, ``vgzoo eval`` (feature extraction) and the demo do
around their forward passes:

- ``--device auto``: ``$VGZOO_DEVICE`` when set, else CUDA when a GPU is visible, else the CPU
  (:func:`vgzoo._runtime.auto_device`).
- ``--precision auto``: bf16 autocast where the hardware has bf16 units (CPUs with AVX512-BF16 or AMX, CUDA GPUs
  with native bf16) and, on a CPU, the network does enough work per forward call for bf16 to pay; fp32 elsewhere
  (:func:`vgzoo.precision.inference_precision` decides the hardware half, :func:`vgzoo.precision.bf16_pays` the size
  half from the FLOPs of the first batch).
- A quality guard (:class:`GuardedRunner`): the first batch of a reduced-precision run is also run in fp32 and
  compared. Images must stay within :data:`PSNR_FLOOR_DB` of the fp32 result, class logits must agree on the top-1
  class for :data:`TOP1_AGREEMENT_FLOOR` of the batch, features within :data:`FEATURE_ERROR_CEILING` relative
  error. Below that the run switches to fp32 and says so once (a :class:`~vgzoo.precision.PrecisionWarning`).
- One run (:func:`inference_run`): a command's forward calls share what they compute from the weights, and on a
  CPU the memory they free.
- ``--compile``: ``torch.compile`` of the network.
- Image files decoded by DataLoader workers while a GPU model runs (in the main process for a CPU model), in
  batches of same-size images (:func:`load_image_batches`).

What ran (:meth:`InferenceMode.to_dict`) is printed by the commands and recorded in their results.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ._heap import kept_freed_memory
from ._runtime import check_device, usable_cores
from .errors import DataError
from .layers.run_cache import weights_fixed
from .precision import Precision, PrecisionWarning, bf16_pays, inference_precision

__all__ = ["FEATURE_ERROR_CEILING", "GUARD_KINDS", "PSNR_FLOOR_DB", "TOP1_AGREEMENT_FLOOR", "GuardedRunner",
           "InferenceMode", "default_workers", "describe_inference", "guard_score", "image_size", "inference_mode",
           "inference_run", "load_image_batches", "prepare_module", "same_size_batches"]

#: Images in [-1, 1]: the reduced-precision result of the first batch must have at least this PSNR against fp32.
#: 30 dB is a mean error of about 4 of 255 grey levels, the usual floor for "visually the same" (lossy codecs aim
#: above it); bf16's 8-bit mantissa leaves a well-conditioned generator far above it.
PSNR_FLOOR_DB = 30.0
#: Class logits: the share of the first batch whose top-1 class must match fp32's.
TOP1_AGREEMENT_FLOOR = 0.99
#: Features (FID/KID extractors): the largest relative L2 error ``||f - f32|| / ||f32||`` of the first batch.
FEATURE_ERROR_CEILING = 0.02
GUARD_KINDS = ("images", "logits", "features")


@dataclass
class InferenceMode:
    """Where and how a model runs; updated by the quality guard when it falls back to fp32.

    Attributes:
        device: the device.
        precision: the autocast precision running now.
        asked: the ``--precision`` value asked for (``auto``, ``fp32``, ``bf16``, ``fp16``).
        compile: whether the network is compiled.
        guard: what the first-batch comparison with fp32 found (None before it ran, or for fp32 runs).
        fell_back: the guard found the reduced precision too far from fp32 and switched to fp32.
        flops_per_call: FLOPs of the first batch's forward call, counted where ``auto`` weighs them.
    """

    device: torch.device
    precision: Precision
    asked: str = "auto"
    compile: bool = False
    guard: str | None = None
    fell_back: bool = False
    flops_per_call: int | None = None

    @property
    def dtype_name(self) -> str:
        """``fp32``, ``bf16`` or ``fp16``: what runs."""
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.precision.dtype]

    def autocast(self):
        """Autocast to the precision on the device (a null context for fp32)."""
        return self.precision.autocast()

    def to_dict(self) -> dict[str, Any]:
        """JSON record of what ran."""
        return {"device": str(self.device), "precision": self.dtype_name, "asked": self.asked,
                "reason": self.precision.reason, "compile": self.compile, "guard": self.guard,
                "fell_back": self.fell_back, "flops_per_call": self.flops_per_call}


def describe_inference(record: dict[str, Any]) -> str:
    """The line a command prints about what ran (from :meth:`InferenceMode.to_dict`): device, precision and why,
    compile, and what the quality guard found."""
    line = f"inference: {record['device']}, {record['reason']}"  # the reason starts with the precision
    line += ", torch.compile" if record.get("compile") else ""
    return line + (f"; guard: {record['guard']}" if record.get("guard") else "")


def inference_mode(device: str | torch.device | None = "auto", precision: str | None = "auto",
                   compile: bool = False) -> InferenceMode:
    """The :class:`InferenceMode` for ``--device``, ``--precision`` and ``--compile``.

    Raises:
        DeviceError: a device this machine does not have.
        PrecisionError: an unknown precision.
    """
    dev = check_device(device, default="auto")
    asked = "auto" if precision is None else str(precision)
    return InferenceMode(dev, inference_precision(precision, dev), asked=asked, compile=bool(compile))


def prepare_module(module: nn.Module, mode: InferenceMode) -> nn.Module:
    """``module`` on the mode's device, compiled when the mode says so (eval/train mode is the caller's)."""
    module = module.to(mode.device)
    if mode.compile:
        module = torch.compile(module)
    return module


def _as_float(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, dict):
        return {k: _as_float(v) for k, v in out.items()}
    if isinstance(out, (tuple, list)):
        return type(out)(_as_float(v) for v in out)
    return out


def guard_score(kind: str, reference: torch.Tensor, candidate: torch.Tensor) -> tuple[bool, str]:
    """Compare a reduced-precision result with the fp32 one: ``(good enough, what was measured)``.

    ``kind``: ``images`` (values in [-1, 1]: PSNR over a peak-to-peak range of 2), ``logits`` (top-1 agreement
    over the last dimension) or ``features`` (relative L2 error). A NaN or infinity in the candidate fails.
    """
    ref, cand = reference.detach().float(), candidate.detach().float()
    if kind == "images":
        # hand-written: torchmetrics (which has PSNR) is an optional extra, and translate must run without it
        mse = float(torch.mean((cand - ref) ** 2))
        psnr = math.inf if mse == 0 else 10 * math.log10(4.0 / mse) if math.isfinite(mse) else -math.inf
        return psnr >= PSNR_FLOOR_DB, f"PSNR {psnr:.1f} dB vs fp32 (floor {PSNR_FLOOR_DB:g} dB)"
    if kind == "logits":
        finite = bool(torch.isfinite(cand).all())
        agree = float((cand.argmax(-1) == ref.argmax(-1)).float().mean()) if finite else 0.0
        return agree >= TOP1_AGREEMENT_FLOOR, (f"top-1 agreement {agree:.1%} with fp32 "
                                               f"(floor {TOP1_AGREEMENT_FLOOR:.0%})")
    if kind == "features":
        err = float(torch.linalg.vector_norm(cand - ref) / torch.linalg.vector_norm(ref).clamp_min(1e-12))
        if not math.isfinite(err):
            err = math.inf
        return err <= FEATURE_ERROR_CEILING, (f"feature error {err:.2%} of fp32 (ceiling "
                                              f"{FEATURE_ERROR_CEILING:.0%})")
    raise ValueError(f"guard kind {kind!r}; expected one of {', '.join(GUARD_KINDS)}.")


def _rng_state() -> tuple[torch.Tensor, list[torch.Tensor] | None]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def _set_rng_state(state: tuple[torch.Tensor, list[torch.Tensor] | None]) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state_all(state[1])


@contextlib.contextmanager
def inference_run(device: str | torch.device) -> Iterator[None]:
    """Around a run of forward calls of a model whose weights do not change in it: the calls share what the first
    computes from the weights. Autocast's casts (made when an op first takes a weight and forgotten when the
    outermost autocast context ends, which without this is every call), parametrized weights (a spectral norm's
    ``W / sigma``, computed on every access outside :func:`torch.nn.utils.parametrize.cached`) and what layers derive
    from their weights through :func:`vgzoo.layers.derived` (StyleGAN2's weight casts and kernel energies). On a CPU
    the calls also reuse the memory the previous one freed (:func:`vgzoo._heap.kept_freed_memory`), returned to the
    system when the run ends. :class:`GuardedRunner` enters it as ``with runner:``."""
    with contextlib.ExitStack() as stack:
        # An outer autocast context, disabled: the calls' own contexts nest inside it, so the cast cache outlives them
        stack.enter_context(torch.autocast(torch.device(device).type, enabled=False))
        stack.enter_context(torch.nn.utils.parametrize.cached())
        stack.enter_context(weights_fixed())  # what layers derive from their weights (vgzoo.layers.derived)
        if torch.device(device).type == "cpu":  # the activations' memory, freed by one call, serves the next
            stack.enter_context(kept_freed_memory())
        yield


class GuardedRunner:
    """Call ``fn`` under the mode's precision; the first call of a reduced-precision run decides and checks it.

    The first batch runs in fp32 with ``reference_fn`` (``fn`` itself by default; pass the uncompiled call so the
    check does not compile an fp32 graph too), its FLOPs counted. Under ``--precision auto`` a call too small for
    bf16 to pay (:func:`vgzoo.precision.bf16_pays`) switches ``mode`` to fp32 there and then, and the fp32 result is
    used: no reduced-precision pass, no comparison. Otherwise the batch runs again as it will run (autocast, compiled
    if asked); a result that fails :func:`guard_score`, or a reduced-precision run that raises (an op without a
    kernel for the dtype), switches ``mode`` to fp32 for this and every later batch, with one warning. The fp32 run
    raising is the caller's error, raised as it is.

    ``select`` picks the tensor to compare from ``fn``'s output (default: the output itself). ``calls``: how many
    forward calls the run will make, where the caller knows (a run too short to win back the fp32 pass stays fp32).

    Used as a context manager (``with runner:``) around a run of calls, it makes them one :func:`inference_run`:
    the calls share the weights as the first computes them (casts, parametrized weights, derived values) and, on a
    CPU, the memory they free. Weights must not change inside the ``with`` (an inference run does not change them).
    """

    def __init__(self, fn: Callable[..., Any], mode: InferenceMode, kind: str,
                 reference_fn: Callable[..., Any] | None = None,
                 select: Callable[[Any], torch.Tensor] | None = None, calls: int | None = None) -> None:
        if kind not in GUARD_KINDS:
            raise ValueError(f"guard kind {kind!r}; expected one of {', '.join(GUARD_KINDS)}.")
        self.fn, self.mode, self.kind, self.calls = fn, mode, kind, calls
        self.reference_fn = reference_fn or fn
        self.select = select or (lambda out: out)
        self.checked = not mode.precision.enabled  # fp32 needs no check
        self._run: contextlib.AbstractContextManager | None = None

    def __enter__(self) -> GuardedRunner:
        run = inference_run(self.mode.device)
        run.__enter__()
        self._run = run
        return self

    def __exit__(self, *exc: object) -> None:
        run, self._run = self._run, None
        if run is not None:
            run.__exit__(*exc)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.mode.fell_back:
            return _as_float(self.reference_fn(*args, **kwargs))
        if self.checked:
            with self.mode.autocast():
                return _as_float(self.fn(*args, **kwargs))
        rng = _rng_state()  # both runs draw the same random numbers (dropout kept on, samplers that draw noise)
        with FlopCounterMode(display=False) as counter:
            reference = _as_float(self.reference_fn(*args, **kwargs))  # raising here: the input's fault, check again
        self.checked = True
        self.mode.flops_per_call = counter.get_total_flops()
        pays, why = bf16_pays(self.mode.flops_per_call, self.mode.device, self.calls)
        if self.mode.asked.strip().lower() == "auto":
            if not pays:  # the fp32 result stands; no reduced-precision pass to compare
                self.mode.precision = replace(self.mode.precision, dtype=None, reason=f"fp32 (auto: {why})")
                return reference
            self.mode.guard = why
        after = _rng_state()
        _set_rng_state(rng)
        try:
            with self.mode.autocast():
                out = _as_float(self.fn(*args, **kwargs))
        except (RuntimeError, NotImplementedError, TypeError) as exc:  # an op without a kernel for this dtype
            out, failed = None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        _set_rng_state(after)
        if out is None:
            ok, measured = False, f"failed ({failed})"
        else:
            ok, measured = guard_score(self.kind, self.select(reference), self.select(out))
        size = f"; {self.mode.guard}" if self.mode.guard else ""
        if ok:
            self.mode.guard = f"first batch {self.mode.dtype_name}: {measured}{size}"
            return out
        was = self.mode.dtype_name
        self.mode.precision = replace(self.mode.precision, dtype=None,
                                      reason=f"fp32: {was} failed the quality guard ({measured})")
        self.mode.fell_back = True
        self.mode.guard = f"first batch {was}: {measured}; fell back to fp32"
        warnings.warn(f"{was} autocast gave {measured} on the first batch, below the quality floor; running fp32 "
                      "instead (pass --precision fp32 to skip the check)", PrecisionWarning, stacklevel=2)
        return reference


# ------------------------------------------------------------------------------------------ image file loading
#: Fewer files than this decode in the main process: a handful decodes faster than a worker process starts.
MIN_FILES_FOR_WORKERS = 8


def default_workers(n_items: int, device: str | torch.device) -> int:
    """Loader processes for ``n_items`` files read for a model on ``device``.

    None for a model on the CPU: its threads already use every core, and a decoding process only takes cores from
    them mid-operation, which costs more than decoding in between the forward passes. None for a few files either.
    Else (a GPU model) up to 4, leaving a core for the main process.
    """
    if torch.device(device).type == "cpu" or n_items < MIN_FILES_FOR_WORKERS:
        return 0
    return max(1, min(4, usable_cores() - 1))


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file's header without decoding it; None when the header cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.size
    except Exception:  # noqa: BLE001 - an unreadable file is reported when it is decoded
        return None


def same_size_batches(sizes: Sequence[Any], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of at most ``batch_size`` items of one size, in order of first appearance.

    A size of ``None`` (unknown) gets a batch of its own. Images of one size batch together even when others lie
    between them, so a folder of mixed sizes still runs in full batches.
    """
    groups: dict[Any, list[int]] = {}
    order: list[list[int]] = []
    for i, size in enumerate(sizes):
        if size is None:
            order.append([i])
            continue
        group = groups.get(size)
        if group is None or len(group) == batch_size:
            group = groups[size] = []
            order.append(group)
        group.append(i)
    return order


class _Files(torch.utils.data.Dataset):
    """Decodes one file per item in a worker; a file that fails is returned as its error, not raised."""

    def __init__(self, files: Sequence[Path], read: Callable[[Path], torch.Tensor]) -> None:
        self.files, self.read = list(files), read

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str | None]:
        try:
            return i, self.read(self.files[i]), None
        except DataError as exc:
            return i, None, str(exc)


def _collate(items: list[tuple[int, torch.Tensor | None, str | None]]):
    """Decoded images of a batch stacked by shape (a header can disagree with the decoded image), failures apart."""
    stacks: dict[tuple[int, ...], list[tuple[int, torch.Tensor]]] = {}
    failures = [(i, why) for i, x, why in items if x is None]
    for i, x, _ in items:
        if x is not None:
            stacks.setdefault(tuple(x.shape), []).append((i, x))
    return [([i for i, _ in group], torch.cat([x for _, x in group])) for group in stacks.values()], failures


def load_image_batches(files: Sequence[Path], read: Callable[[Path], torch.Tensor], batch_size: int,
                       workers: int | None = None, device: str | torch.device = "cpu",
                       ) -> Iterator[tuple[list[int] | None, torch.Tensor | None, Any]]:
    """Decode ``files`` with ``read`` (path -> (1, C, H, W)) in DataLoader workers, in same-size batches.

    Yields ``(indices, batch, None)`` for each batch and ``(None, None, (index, reason))`` for each file that could
    not be read (``read`` raised :class:`~vgzoo.errors.DataError`). ``workers`` = 0 decodes in this process;
    ``None`` picks :func:`default_workers` for a model on ``device``.
    """
    workers = default_workers(len(files), device) if workers is None else int(workers)
    batches = same_size_batches([image_size(f) for f in files], batch_size)
    loader = torch.utils.data.DataLoader(_Files(files, read), batch_sampler=batches, num_workers=workers,
                                         collate_fn=_collate, prefetch_factor=2 if workers else None,
                                         persistent_workers=False)
    for stacks, failures in loader:
        for failure in failures:
            yield None, None, failure
        for indices, x in stacks:
            yield indices, x, None
