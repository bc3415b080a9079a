"""--amp chosen by hardware: the CPU's bf16 units read from its flags, faked here to test both kinds of CPU."""

from __future__ import annotations

import warnings

import pytest
import torch

from vgzoo import precision
from vgzoo.precision import PrecisionError, PrecisionWarning, cpu_bf16_support, resolve_amp

AVX2_EPYC = frozenset({"fpu", "sse4_2", "avx", "avx2", "fma"})
AMX_XEON = AVX2_EPYC | {"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}


@pytest.fixture
def cpu(monkeypatch):
    def fake(flags, capability):
        monkeypatch.setattr(precision, "_cpu_flags", lambda: frozenset(flags))
        monkeypatch.setattr(precision, "_cpu_capability", lambda: capability)
    return fake


def test_cpu_bf16_units_from_flags_and_torch_capability():
    assert cpu_bf16_support(AMX_XEON, "AVX512")[0]
    assert "amx_bf16" in cpu_bf16_support(AMX_XEON, "AVX512")[1]
    fast, why = cpu_bf16_support(AVX2_EPYC, "AVX2")
    assert not fast and "no bf16 units" in why
    fast, why = cpu_bf16_support(AMX_XEON, "AVX2")  # ATEN_CPU_CAPABILITY=avx2 hides the units from torch
    assert not fast and "AVX2" in why
    assert cpu_bf16_support({"fp", "asimd", "bf16"}, "DEFAULT")[0]  # ARMv8.6 bf16


def test_auto_picks_fp32_on_an_avx2_cpu_and_bf16_with_amx(cpu):
    cpu(AVX2_EPYC, "AVX2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = resolve_amp("auto", "cpu")
    assert p.dtype is None and not p.enabled and p.name == "float32" and "slower" in p.reason
    cpu(AMX_XEON, "AVX512")
    p = resolve_amp("auto", "cpu")
    assert p.dtype is torch.bfloat16 and not p.scaler and p.warning is None
    with p.autocast():
        assert torch.get_autocast_dtype("cpu") is torch.bfloat16 and torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize("value", [True, "on", "bf16", "bfloat16"])
def test_forced_bf16_on_a_cpu_without_units_warns(cpu, value):
    cpu(AVX2_EPYC, "AVX2")
    with pytest.warns(PrecisionWarning, match="6.8x slower"):
        p = resolve_amp(value, "cpu")
    assert p.dtype is torch.bfloat16 and p.warning and "--amp auto" in p.warning
    cpu(AMX_XEON, "AVX512")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_amp(value, "cpu").warning is None


def test_off_fp16_and_unknown_values(cpu):
    cpu(AVX2_EPYC, "AVX2")
    for off in (False, None, "off", "fp32", "FLOAT32"):
        assert resolve_amp(off, "cpu").dtype is None
    p = resolve_amp("fp16", "cpu")
    assert p.dtype is torch.float16 and p.scaler and p.grad_scaler().is_enabled()
    assert not resolve_amp("bf16", "cpu", warn=False).grad_scaler().is_enabled()
    with pytest.raises(PrecisionError, match="expected one of off, auto, on, bf16, fp16"):
        resolve_amp("fp8", "cpu")


def test_cuda_choice_follows_native_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: native)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # no device name lookup
    native = True
    assert resolve_amp("auto", "cuda").dtype is torch.bfloat16
    assert resolve_amp(True, "cuda").dtype is torch.bfloat16
    native = False  # e.g. a V100 / T4
    for value in ("auto", True):
        p = resolve_amp(value, "cuda")
        assert p.dtype is torch.float16 and p.scaler
    with pytest.warns(PrecisionWarning):
        assert resolve_amp("bf16", "cuda").dtype is torch.bfloat16


def test_precision_settings_records_tf32_and_sdpa(cpu):
    cpu(AMX_XEON, "AVX512")
    s = precision.precision_settings("cpu")
    assert s["fast_bf16"] and s["float32_matmul_precision"] in ("highest", "high", "medium")
    assert {"allow_tf32_matmul", "sdpa_enabled", "cpu_capability", "deterministic_algorithms"} <= set(s)


def test_fit_takes_amp_by_hardware_and_a_deterministic_mode(tmp_path, monkeypatch):
    """--amp on a CPU without bf16 units warns; amp='auto' keeps fp32 there; deterministic mode is restored."""
    import torch

    from vgzoo import precision
    from vgzoo.train import fit

    monkeypatch.setattr(precision, "device_has_fast_bf16", lambda dev: (False, "no bf16 units (faked)"))
    seen = []
    with pytest.warns(precision.PrecisionWarning, match="slower"):
        fit("cgan_embed_digits", "builtin:digits", tmp_path / "on", steps=1, batch_size=8, progress=False,
            log=seen.append, amp=True, model_kwargs={"nz": 8, "ngf": 8, "ndf": 8})
    assert any("bf16 autocast" in m for m in seen)
    seen.clear()
    fit("cgan_embed_digits", "builtin:digits", tmp_path / "auto", steps=1, batch_size=8, progress=False,
        log=seen.append, amp="auto", model_kwargs={"nz": 8, "ngf": 8, "ndf": 8},
        options={"deterministic": True})
    assert not any("autocast" in m for m in seen)  # fp32 on a CPU without bf16 units
    assert not torch.are_deterministic_algorithms_enabled()  # the mode ends with the run
