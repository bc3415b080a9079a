"""Issue 26, training side: the defaults people expect on the hardware at hand, with the hardware checks faked.

On CUDA: ``amp=auto`` (bf16, or fp16 + GradScaler on GPUs without bf16), TF32 matmuls and cuDNN autotuning unless
the run is deterministic, fused Adam/AdamW. On the CPU: fp32 unless asked, and ``vgzoo train`` says once when bf16
would be faster. The runs themselves on a GPU are in tests/test_cuda.py.
"""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from test_cuda import GAN_RECIPES, trains_and_resumes
from test_train import Blobs, TinyCGAN, TinyClassifier

from vgzoo import precision
from vgzoo.precision import fast_cuda_kernels, resolve_amp, training_amp
from vgzoo.train import fit
from vgzoo.train.recipes import ClassificationRecipe, GANRecipe

CUDA = torch.device("cuda")  # a device object only: nothing below runs a kernel on it


@pytest.fixture
def gpu_bf16(monkeypatch):
    """Fake the CUDA device's bf16 answer (True: an Ampere-class GPU; False: e.g. a V100 or T4)."""
    def fake(native: bool):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: native)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # no device-name lookup
    return fake


def test_training_defaults_to_auto_on_a_gpu_and_to_fp32_on_the_cpu(gpu_bf16, monkeypatch):
    gpu_bf16(True)
    p = resolve_amp(training_amp(None, "cuda"), "cuda")
    assert p.dtype is torch.bfloat16 and not p.scaler and p.mode == "bf16"
    gpu_bf16(False)
    p = resolve_amp(training_amp(None, "cuda:1"), "cuda:1")
    assert p.dtype is torch.float16 and p.scaler and p.mode == "fp16"
    monkeypatch.setattr(precision, "device_has_fast_bf16", lambda dev: (True, "bf16 units (faked)"))
    assert resolve_amp(training_amp(None, "cpu"), "cpu").dtype is None  # even where bf16 would be fast
    for asked in ("bf16", True, False, "off", "fp16"):  # what the user asks for is kept
        assert training_amp(asked, "cpu") == asked and training_amp(asked, "cuda") == asked


def _tf32_state():
    return (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)


def test_tf32_and_cudnn_autotuning_on_cuda_unless_deterministic():
    before = _tf32_state()
    with fast_cuda_kernels(CUDA):
        assert torch.get_float32_matmul_precision() == "high" and torch.backends.cudnn.benchmark
        assert torch.backends.cudnn.allow_tf32
    assert _tf32_state() == before  # restored when the run ends
    with fast_cuda_kernels(CUDA, enabled=False):  # -o deterministic=true
        assert _tf32_state() == before
    with fast_cuda_kernels("cpu"):
        assert _tf32_state() == before
    with pytest.raises(RuntimeError, match="boom"), fast_cuda_kernels(CUDA):
        raise RuntimeError("boom")
    assert _tf32_state() == before  # also after an error


def test_the_engine_applies_the_fast_kernels_to_cuda_runs_only(tmp_path, monkeypatch):
    seen = []
    real = precision.fast_cuda_kernels

    def spy(device, enabled=True):
        seen.append((torch.device(device).type, enabled))
        return real(device, enabled)

    monkeypatch.setattr("vgzoo.train.engine.fast_cuda_kernels", spy)
    fit(TinyCGAN(), Blobs(), tmp_path / "a", steps=1, batch_size=8, device="cpu", progress=False, log=lambda m: None)
    fit(TinyCGAN(), Blobs(), tmp_path / "b", steps=1, batch_size=8, device="cpu", progress=False, log=lambda m: None,
        options={"deterministic": True})
    assert seen == [("cpu", True), ("cpu", False)]


def _opt_fused(opt) -> bool:
    return bool(opt.defaults.get("fused")) and all(g.get("fused") for g in opt.param_groups)


@pytest.mark.parametrize("device, fused", [(CUDA, True), (torch.device("cpu"), False)])
def test_adam_and_adamw_are_fused_on_cuda(device, fused):
    # torch's fused Adam also runs on CPU tensors, so the CUDA choice is built here without a GPU
    gan = GANRecipe(TinyCGAN(), call=None, lr=None, batch_size=8, options={}, device=device)
    gan.build(horizon=10, steps_per_epoch=5)
    assert [_opt_fused(o) for o in gan.optimizers.values()] == [fused, fused]
    vit = ClassificationRecipe(TinyClassifier(), call=None, lr=None, batch_size=8, options={}, device=device)
    vit.build(horizon=10, steps_per_epoch=5)
    assert isinstance(vit.optimizers["model"], torch.optim.AdamW) and _opt_fused(vit.optimizers["model"]) == fused
    sgd = ClassificationRecipe(TinyClassifier(), call=None, lr=None, batch_size=8, options={"opt": "sgd"},
                               device=device)
    sgd.build(horizon=10, steps_per_epoch=5)  # an optimizer without a fused kernel is built as asked
    assert isinstance(sgd.optimizers["model"], torch.optim.SGD)


def test_a_cpu_run_records_fp32_and_a_resume_keeps_the_precision(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "device_has_fast_bf16", lambda dev: (True, "bf16 units (faked)"))
    fit(TinyCGAN(), Blobs(), tmp_path / "r", steps=1, batch_size=8, device="cpu", progress=False, log=lambda m: None)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["amp"] == "off"
    fit(TinyCGAN(), Blobs(), tmp_path / "a", steps=1, batch_size=8, device="cpu", amp="auto", progress=False,
        log=lambda m: None)
    assert json.loads((tmp_path / "a" / "config.json").read_text())["amp"] == "bf16"
    logs = []
    fit(TinyCGAN(), Blobs(), tmp_path / "a", steps=2, batch_size=8, device="cpu", resume=True, progress=False,
        log=logs.append)
    assert any("precision: bf16 autocast" in m for m in logs), logs


CGAN_CLI = ["--data", "builtin:digits", "--steps", "1", "--batch-size", "8", "--device", "cpu", "-k", "nz=8",
            "-k", "ngf=8", "-k", "ndf=8", "-o", "threads=1", "--no-progress"]


@pytest.mark.parametrize("units", [True, False])
def test_vgzoo_train_says_once_when_bf16_would_be_faster_on_this_cpu(tmp_path, monkeypatch, units):
    from vgzoo.cli import cli

    flags = precision.BF16_CPU_FLAGS[:2] if units else ("avx2",)
    monkeypatch.setattr(precision, "_cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(precision, "_cpu_capability", lambda: "AVX512" if units else "AVX2")
    res = CliRunner().invoke(cli, ["train", "cgan_embed_digits", "--out", str(tmp_path / "d"), *CGAN_CLI])
    assert res.exit_code == 0, res.output
    hints = [line for line in res.output.splitlines() if "bf16 autocast usually trains faster" in line]
    assert len(hints) == (1 if units else 0), res.output
    if units:
        assert "amx_bf16" in hints[0] and "--amp auto" in hints[0]
    # asked for fp32 or bf16 explicitly: nothing to suggest
    for amp in ("off", "bf16"):
        res = CliRunner().invoke(cli, ["train", "cgan_embed_digits", "--out", str(tmp_path / amp), "--amp", amp,
                                       *CGAN_CLI])
        assert res.exit_code == 0 and "trains faster" not in res.output, res.output
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["amp"] == "bf16"


def test_the_hint_follows_this_machines_own_cpu(tmp_path):
    """Unfaked: the hint appears exactly where this CPU has bf16 units (the project's Xeon with AMX has them)."""
    logs = []
    fit(TinyCGAN(), Blobs(), tmp_path / "r", steps=1, batch_size=8, device="cpu", progress=False, log=logs.append)
    fast, why = precision.cpu_bf16_support()
    hints = [m for m in logs if "trains faster" in m]
    assert hints == ([f"precision: fp32 (the CPU default); this CPU has bf16 units ({why}), where bf16 autocast "
                      "usually trains faster: pass --amp auto (or --amp bf16) to use it"] if fast else [])


@pytest.mark.slow
@pytest.mark.parametrize("name", GAN_RECIPES)
def test_every_gan_recipe_trains_and_resumes_on_the_cpu_stand_in(tmp_path, name):
    """The CPU half of tests/test_cuda.py's recipe test (pix2pix and CycleGAN plan their decay for the extension)."""
    trains_and_resumes(tmp_path, name, "cpu")
