"""Mixed precision chosen by hardware: which autocast dtype a device runs fast, and what ``--amp`` means.

bf16 autocast only pays where the hardware has bf16 arithmetic. CUDA GPUs from Ampere on have it (torch reports
it through ``torch.cuda.is_bf16_supported``); older GPUs get fp16 with a GradScaler instead. On x86 CPUs, bf16
units are AVX512-BF16 and AMX (Cooper Lake, Sapphire Rapids and later, Zen 4 and later); on ARM, the ``bf16``
feature. Without them oneDNN emulates bf16 through fp32 conversions and autocast is much *slower* than fp32
(benchmarks/RESULTS.md, "bf16 on CPU"), so ``auto`` keeps fp32 there and a forced bf16 warns.

``--amp`` values (:func:`resolve_amp`):

=========  ===============================================================================================
``off``    fp32 (also ``False``/``None``/``fp32``)
``auto``   bf16 where the device has fast bf16; fp16 + GradScaler on a CUDA GPU without bf16; else fp32
``on``     (also ``True``) like ``auto``, but a CPU without bf16 units still gets bf16, with a warning
``bf16``   bf16 autocast everywhere (warns on a CPU without bf16 units or a GPU without native bf16)
``fp16``   fp16 autocast with a GradScaler (overflowing steps are skipped by the scaler, not fatal)
=========  ===============================================================================================

Training without ``--amp`` (:func:`training_amp`) runs ``auto`` on a GPU and fp32 on the CPU, where mixed precision
is a choice the user makes (:func:`cpu_bf16_hint` says when it would pay). A CUDA run also takes TF32 matmuls and
cuDNN's autotuner (:func:`fast_cuda_kernels`) unless it asked for deterministic kernels.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import VgzooError

__all__ = ["AMP_CHOICES", "CPU_BF16_MIN_FLOPS", "INFERENCE_PRECISIONS", "MIN_CALLS_FOR_BF16", "Precision",
           "PrecisionError", "PrecisionWarning", "bf16_pays", "cpu_bf16_hint", "cpu_bf16_support",
           "device_has_fast_bf16", "fast_cuda_kernels", "inference_precision", "isa_cap",
           "precision_settings", "resolve_amp", "training_amp"]

AMP_CHOICES = ("off", "auto", "on", "bf16", "fp16")
_ALIASES = {"off": "off", "false": "off", "no": "off", "none": "off", "fp32": "off", "float32": "off",
            "auto": "auto", "on": "on", "true": "on", "yes": "on",
            "bf16": "bf16", "bfloat16": "bf16", "fp16": "fp16", "float16": "fp16", "half": "fp16"}
#: /proc/cpuinfo flags (x86) and Features (ARM) that mean native bf16 arithmetic.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")
#: oneDNN ISA names (``ONEDNN_MAX_CPU_ISA`` values) below ``AVX512_CORE_BF16``: a cap at one of them leaves no bf16
#: instruction to oneDNN.
ONEDNN_ISAS_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")


class PrecisionError(VgzooError, ValueError):
    """An ``--amp`` value vgzoo does not know."""


class PrecisionWarning(UserWarning):
    """A precision that will run, but slowly (bf16 emulated on hardware without bf16 units)."""


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return frozenset(flags)


def _cpu_capability() -> str:
    """torch's dispatch level for CPU kernels (``DEFAULT``, ``AVX2``, ``AVX512``, ...)."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # pragma: no cover - very old torch
        return "unknown"


def isa_cap(env: Mapping[str, str] | None = None) -> str | None:
    """The user's cap on the x86 instruction sets torch and oneDNN use, when it leaves out the bf16 ones.

    ``ONEDNN_MAX_CPU_ISA`` (or its older name ``DNNL_MAX_CPU_ISA``) below ``AVX512_CORE_BF16`` keeps oneDNN's
    convolutions and matmuls off the bf16 instructions; ``ATEN_CPU_CAPABILITY`` set to ``avx2`` or ``default`` keeps
    torch's own kernels off AVX512. Either way bf16 is emulated through fp32, as on an AVX2-only CPU. Returns the
    setting (``"ONEDNN_MAX_CPU_ISA=AVX2"``) or None when nothing caps bf16 (default: ``os.environ``).
    """
    env = os.environ if env is None else env
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        value = env.get(name, "").strip()
        if value.upper() in ONEDNN_ISAS_WITHOUT_BF16:
            return f"{name}={value}"
    value = env.get("ATEN_CPU_CAPABILITY", "").strip()
    if value.lower() in ("avx2", "default"):
        return f"ATEN_CPU_CAPABILITY={value}"
    return None


def cpu_bf16_support(flags: Iterable[str] | None = None, capability: str | None = None,
                     env: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """Whether this CPU has bf16 units that torch will use, and a sentence saying what was read.

    Args:
        flags: CPU feature flags (default: /proc/cpuinfo).
        capability: torch's CPU capability (default: ``torch.backends.cpu.get_cpu_capability()``).
        env: the environment read for the user's ISA cap (:func:`isa_cap`; default ``os.environ``).

    Returns:
        ``(fast, reason)``. ``fast`` is true with AMX-BF16 or AVX512-BF16 (x86; torch must dispatch to AVX512
        kernels and no :func:`isa_cap` may keep oneDNN below them) or the ARM ``bf16`` feature. Apple silicon (no
        /proc/cpuinfo) counts as fast.
    """
    flags = set(_cpu_flags() if flags is None else flags)
    capability = _cpu_capability() if capability is None else capability
    found = [f for f in BF16_CPU_FLAGS if f in flags]
    if not flags and platform.system() == "Darwin" and platform.machine() == "arm64":
        return True, "Apple silicon CPU (bf16 instructions)"
    x86_units = [f for f in found if f != "bf16"]
    cap = isa_cap(env) if x86_units else None
    if cap:
        return False, f"CPU flags {', '.join(x86_units)} present but {cap} caps them, so bf16 is emulated"
    if x86_units:
        if capability.upper().startswith("AVX512"):
            return True, f"CPU flags {', '.join(x86_units)} with torch dispatching {capability} kernels"
        return False, (f"CPU flags {', '.join(x86_units)} present but torch dispatches {capability} kernels "
                       "(ATEN_CPU_CAPABILITY caps it?), so bf16 is emulated")
    if "bf16" in found:
        return True, "ARM CPU with the bf16 feature"
    return False, f"no bf16 units on this CPU (no amx_bf16/avx512_bf16 flag; torch kernels {capability})"


def device_has_fast_bf16(device: str | torch.device) -> tuple[bool, str]:
    """Whether bf16 autocast runs on native bf16 arithmetic on ``device``, with the reason."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            native = torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # pragma: no cover - torch < 2.4
            native = torch.cuda.is_bf16_supported()
        name = torch.cuda.get_device_name(device) if torch.cuda.is_available() else "CUDA device"
        return native, f"{name} {'supports' if native else 'has no native'} bf16"
    if device.type == "cpu":
        return cpu_bf16_support()
    if device.type == "mps":  # pragma: no cover - no MPS here
        return True, "Apple GPU"
    return False, f"unknown bf16 support on {device.type}"


@dataclass(frozen=True)
class Precision:
    """The precision a run uses.

    Attributes:
        dtype: The autocast dtype, or ``None`` for fp32 (no autocast).
        scaler: Whether a ``torch.amp.GradScaler`` guards the backward (fp16 only).
        device_type: ``cpu``, ``cuda``...
        reason: Why this precision was chosen (for logs and run config).
        warning: Set when the choice is known to be slow here (also issued as a :class:`PrecisionWarning`).
    """

    dtype: torch.dtype | None
    scaler: bool
    device_type: str
    reason: str
    warning: str | None = None

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    @property
    def mode(self) -> str:
        """The ``--amp`` value that gives this precision again anywhere (``off``, ``bf16`` or ``fp16``)."""
        return {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    @property
    def name(self) -> str:
        """``bfloat16``, ``float16`` or ``float32``."""
        return str(self.dtype or torch.float32).removeprefix("torch.")

    def autocast(self):
        """A fresh autocast context (a null context for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler, enabled only for fp16."""
        return torch.amp.GradScaler(self.device_type, enabled=self.scaler)


def _normalise(amp: bool | str | None) -> str:
    if amp is None or amp is False:
        return "off"
    if amp is True:
        return "on"
    key = str(amp).strip().lower()
    if key not in _ALIASES:
        raise PrecisionError(f"--amp {amp!r} is not a precision; expected one of {', '.join(AMP_CHOICES)} "
                             "(auto picks bf16 where the hardware has bf16 units, else fp32 on CPU).")
    return _ALIASES[key]


def resolve_amp(amp: bool | str | None, device: str | torch.device, *, warn: bool = True) -> Precision:
    """The :class:`Precision` for an ``--amp`` value on ``device`` (table in the module docstring).

    Raises:
        PrecisionError: an unknown value.
    """
    mode = _normalise(amp)
    dev = torch.device(device)
    if mode == "off":
        return Precision(None, False, dev.type, "fp32 (amp off)")
    if mode == "fp16":
        return Precision(torch.float16, True, dev.type, "fp16 autocast with a GradScaler (asked for)")
    fast, why = device_has_fast_bf16(dev)
    if mode == "auto":
        if fast:
            return Precision(torch.bfloat16, False, dev.type, f"bf16 autocast: {why}")
        if dev.type == "cuda":
            return Precision(torch.float16, True, dev.type, f"fp16 autocast with a GradScaler: {why}")
        return Precision(None, False, dev.type, f"fp32: {why}, where bf16 autocast runs slower than fp32")
    if mode == "on" and dev.type == "cuda" and not fast:
        return Precision(torch.float16, True, dev.type, f"fp16 autocast with a GradScaler: {why}")
    warning = None
    if not fast:
        warning = (f"bf16 autocast on {dev.type} without native bf16 ({why}): it is emulated and usually slower "
                   "than fp32 (on an AVX2-only CPU ViT-B ran 6.8x slower); use --amp auto to pick fp32 here")
        if warn:
            warnings.warn(warning, PrecisionWarning, stacklevel=2)
    return Precision(torch.bfloat16, False, dev.type, f"bf16 autocast ({'asked for' if mode == 'bf16' else 'on'}): "
                     f"{why}", warning)


def training_amp(amp: bool | str | None, device: str | torch.device) -> bool | str:
    """The ``--amp`` value a training run uses: the given one, else ``auto`` off the CPU and ``off`` on it.

    A GPU user expects mixed precision by default (bf16, or fp16 with a GradScaler on GPUs without bf16). On the CPU
    the default stays fp32: bf16 changes the numbers of a run, and it only pays on CPUs with bf16 units
    (:func:`cpu_bf16_hint` tells the user when it would).
    """
    if amp is not None:
        return amp
    return "off" if torch.device(device).type == "cpu" else "auto"


def cpu_bf16_hint(device: str | torch.device, precision: Precision) -> str | None:
    """A sentence for an fp32 run on a CPU with bf16 units, where ``--amp auto`` would run bf16 autocast faster."""
    if torch.device(device).type != "cpu" or precision.enabled:
        return None
    fast, why = cpu_bf16_support()
    if not fast:
        return None
    return (f"precision: fp32 (the CPU default); this CPU has bf16 units ({why}), where bf16 autocast usually "
            "trains faster: pass --amp auto (or --amp bf16) to use it")


@contextlib.contextmanager
def fast_cuda_kernels(device: str | torch.device, enabled: bool = True):
    """TF32 for fp32 matmuls and convolutions, and cuDNN's autotuner, for a run on CUDA; restored afterwards.

    TF32 keeps fp32's range with a 10-bit mantissa on tensor cores (Ampere and later), the precision PyTorch's own
    training recipes use; ``cudnn.benchmark`` times the convolution algorithms once per input shape and keeps the
    fastest, which pays for the fixed shapes of a training run. Both make results vary between runs and machines,
    so a run that asked for deterministic kernels (``enabled=False``) keeps torch's settings. Nothing changes for a
    device other than CUDA.
    """
    if not enabled or torch.device(device).type != "cuda":
        yield
        return
    before = (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = True, True
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before[0])
        torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = before[1], before[2]


def precision_settings(device: str | torch.device) -> dict:
    """The global settings that decide what an fp32/bf16 number means: TF32, reduced-precision reductions, the
    SDPA backends enabled, cuDNN flags, the matmul precision and the CPU's bf16 units. Recorded by benchmarks."""
    dev = torch.device(device)
    fast, why = device_has_fast_bf16(dev)
    out = {"float32_matmul_precision": torch.get_float32_matmul_precision(), "fast_bf16": fast,
           "fast_bf16_reason": why, "cpu_capability": _cpu_capability(),
           "deterministic_algorithms": torch.are_deterministic_algorithms_enabled()}
    b = torch.backends
    if dev.type == "cuda":
        out.update({
            "allow_tf32_matmul": b.cuda.matmul.allow_tf32, "allow_tf32_cudnn": b.cudnn.allow_tf32,
            "allow_bf16_reduced_precision_reduction": b.cuda.matmul.allow_bf16_reduced_precision_reduction,
            "allow_fp16_reduced_precision_reduction": b.cuda.matmul.allow_fp16_reduced_precision_reduction,
            "cudnn_benchmark": b.cudnn.benchmark, "cudnn_deterministic": b.cudnn.deterministic,
            "cudnn_version": b.cudnn.version(), "cuda": torch.version.cuda,
            "sdpa_enabled": {"flash": b.cuda.flash_sdp_enabled(), "efficient": b.cuda.mem_efficient_sdp_enabled(),
                             "cudnn": b.cuda.cudnn_sdp_enabled(), "math": b.cuda.math_sdp_enabled()},
        })
    else:
        out.update({"allow_tf32_matmul": None, "allow_tf32_cudnn": None,
                    "mkldnn": b.mkldnn.is_available(), "sdpa_enabled": {"math": b.cuda.math_sdp_enabled(),
                                                                       "flash_cpu": b.cuda.flash_sdp_enabled()}})
    return out


#: bf16 autocast on a CPU pays only for a forward call with this much arithmetic (FLOPs, a multiply-add counting 2,
#: as ``torch.utils.flop_counter`` counts). Autocast adds a fixed cost per op (casting weights and activations to
#: bf16 and back); a call with less work than this, such as a 32 px generator on a few latents, runs faster in plain
#: fp32. The crossover and the margin above it are measured in benchmarks/RESULTS.md ("inference-default-<CPU kind>").
CPU_BF16_MIN_FLOPS = 2e8


#: ``auto`` needs at least this many forward calls for bf16: the quality guard runs the first one in fp32 as well,
#: which the following bf16 calls must first win back, and one call alone is fp32 work plus bf16 work for an answer
#: the fp32 pass already gave.
MIN_CALLS_FOR_BF16 = 3


def bf16_pays(flops_per_call: float | None, device: str | torch.device,
              calls: int | None = None) -> tuple[bool, str]:
    """Whether bf16 autocast pays for a run of ``calls`` forward calls of ``flops_per_call`` FLOPs on ``device``.

    The size half of ``--precision auto`` (the hardware half is :func:`device_has_fast_bf16`): on a CPU, bf16 only
    where a call does at least :data:`CPU_BF16_MIN_FLOPS`; on a GPU a call of any size. On any device the run must
    make at least :data:`MIN_CALLS_FOR_BF16` calls when the caller knows how many (``calls``), to win back the quality
    guard's fp32 pass. ``None`` (not counted, not known) does not limit.
    """
    if calls is not None and calls < MIN_CALLS_FOR_BF16:
        return False, (f"{calls} forward call{'s' if calls != 1 else ''}, fewer than the {MIN_CALLS_FOR_BF16} that win "
                       "back the quality guard's fp32 pass of the first")
    if torch.device(device).type != "cpu" or flops_per_call is None:
        return True, "work per call not limiting"
    gflops, floor = flops_per_call / 1e9, CPU_BF16_MIN_FLOPS / 1e9
    if flops_per_call >= CPU_BF16_MIN_FLOPS:
        return True, f"{gflops:.3g} GFLOP per forward call (bf16 pays from {floor:g})"
    return False, (f"{gflops:.3g} GFLOP per forward call, below the {floor:g} GFLOP where bf16 autocast's per-op casts "
                   "pay on a CPU")


INFERENCE_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_INFERENCE_ALIASES = {"float32": "fp32", "off": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}


def inference_precision(precision: str | None, device: str | torch.device, *, warn: bool = True) -> Precision:
    """The autocast precision for running a model (``--precision`` of translate, generate, eval and the demo).

    ``auto`` (also ``None``) is bf16 autocast where :func:`device_has_fast_bf16` finds bf16 units (CPUs with
    AVX512-BF16 or AMX, CUDA GPUs with native bf16) and fp32 elsewhere, where emulated bf16 is slower than fp32.
    Its size half, :func:`bf16_pays`, is applied on the first batch once the work per call is counted
    (:class:`vgzoo.inference.GuardedRunner`): a CPU call below :data:`CPU_BF16_MIN_FLOPS` runs fp32. Unlike
    training's ``auto``, a GPU without bf16 stays fp32: inference has no GradScaler to catch fp16 overflow.
    No GradScaler either way (``scaler`` is False).

    Raises:
        PrecisionError: an unknown value.
    """
    key = "auto" if precision is None else str(precision).strip().lower()
    key = _INFERENCE_ALIASES.get(key, key)
    if key not in INFERENCE_PRECISIONS:
        raise PrecisionError(f"--precision {precision!r} is not a precision; expected one of "
                             f"{', '.join(INFERENCE_PRECISIONS)} (auto: bf16 where the hardware has bf16 units, "
                             "else fp32).")
    dev = torch.device(device)
    if key == "fp32":
        return Precision(None, False, dev.type, "fp32 (asked for)")
    if key == "fp16":
        return Precision(torch.float16, False, dev.type, "fp16 autocast (asked for)")
    fast, why = device_has_fast_bf16(dev)
    if key == "auto":
        if fast:
            return Precision(torch.bfloat16, False, dev.type, f"bf16 autocast (auto: {why})")
        return Precision(None, False, dev.type, f"fp32 (auto: {why}; bf16 would be emulated, slower than fp32)")
    warning = None
    if not fast:
        warning = (f"bf16 autocast on {dev.type} without native bf16 ({why}): it is emulated and usually slower than "
                   "fp32; use --precision auto to pick fp32 here")
        if warn:
            warnings.warn(warning, PrecisionWarning, stacklevel=2)
    return Precision(torch.bfloat16, False, dev.type, f"bf16 autocast (asked for: {why})", warning)
