"""Inference defaults (vgzoo.inference): device and precision chosen by hardware, the first-batch quality guard,
what ran recorded, same-size batches and worker loading (translate, generate, eval, the demo's helpers)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch import nn

import vgzoo
from vgzoo import precision as prec
from vgzoo.cli import cli
from vgzoo.inference import (
    PSNR_FLOOR_DB,
    GuardedRunner,
    guard_score,
    inference_mode,
    load_image_batches,
    same_size_batches,
)
from vgzoo.precision import PrecisionError, PrecisionWarning, inference_precision
from vgzoo.translate import TranslationError, read_image, translate, translate_tensor

AMX_FLAGS = {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
AVX2_FLAGS = {"avx", "avx2", "fma"}


ISA_CAPS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def _cpu(monkeypatch, flags, capability):
    for name in ISA_CAPS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(prec, "_cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(prec, "_cpu_capability", lambda: capability)


def write_png(path, h, w, seed=0):
    rng = np.random.default_rng(seed + h * 1000 + w)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


class CancellingGenerator(nn.Module):
    """Adds 256 then subtracts it: exact in fp32, but bf16's 8-bit mantissa rounds x + 256 to steps of 2, so the
    output under bf16 autocast is a few grey levels (catastrophic cancellation) -- a network that breaks under bf16."""

    size_multiple = 1

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Conv2d(3, 3, 1)
        self.down = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            for conv, bias in ((self.up, 256.0), (self.down, -256.0)):
                conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
                conv.bias.fill_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.up(x))


class SmoothGenerator(nn.Module):
    """A well-conditioned 3x3 convolution + tanh: bf16 autocast stays far above the PSNR floor."""

    size_multiple = 1

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))


# ------------------------------------------------------------------------------------------ choice by hardware
@pytest.mark.parametrize("flags, capability, expected", [
    (AMX_FLAGS, "AVX512", torch.bfloat16),  # Sapphire Rapids and later: AMX + AVX512-BF16
    ({"avx512f", "avx512_bf16"}, "AVX512", torch.bfloat16),  # Cooper Lake, Zen 4
    (AVX2_FLAGS, "AVX2", None),  # AVX2 only: bf16 is emulated, fp32
    (AMX_FLAGS, "AVX2", None),  # units present but torch capped to AVX2 kernels: still emulated
    ({"fp", "asimd", "bf16"}, "DEFAULT", torch.bfloat16),  # ARM with the bf16 feature
])
def test_auto_precision_per_cpu(monkeypatch, flags, capability, expected):
    _cpu(monkeypatch, flags, capability)
    p = inference_precision("auto", "cpu")
    assert p.dtype is expected and not p.scaler
    assert ("bf16 autocast (auto" if expected else "fp32 (auto") in p.reason
    assert inference_precision("fp32", "cpu").dtype is None
    assert inference_precision("fp16", "cpu").dtype is torch.float16


def test_forced_bf16_on_an_avx2_cpu_warns(monkeypatch):
    _cpu(monkeypatch, AVX2_FLAGS, "AVX2")
    with pytest.warns(PrecisionWarning, match="emulated"):
        assert inference_precision("bf16", "cpu").dtype is torch.bfloat16
    with pytest.raises(PrecisionError, match="auto, fp32, bf16, fp16"):
        inference_precision("fp8", "cpu")


@pytest.mark.parametrize("native, expected", [(True, torch.bfloat16), (False, None)])
def test_auto_precision_on_cuda(monkeypatch, native, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: native)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Test GPU")
    p = inference_precision("auto", "cuda")
    assert p.dtype is expected and p.device_type == "cuda"  # a GPU without bf16: fp32, not fp16, for inference
    assert "Test GPU" in p.reason


def test_auto_device(monkeypatch):
    from vgzoo._runtime import auto_device, check_device

    monkeypatch.delenv("VGZOO_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert auto_device() == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert auto_device() == "cpu" and check_device("auto") == torch.device("cpu")
    monkeypatch.setenv("VGZOO_DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert auto_device() == "cpu"  # the environment wins (the test suite pins the CPU this way)


def test_this_machine_auto_mode_is_reported(monkeypatch):
    fast, why = prec.cpu_bf16_support()
    mode = inference_mode("cpu", "auto")
    assert mode.dtype_name == ("bf16" if fast else "fp32") and why in mode.precision.reason


@pytest.mark.parametrize("env, capped", [
    ({}, None),
    ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, "ONEDNN_MAX_CPU_ISA=AVX2"),
    ({"ONEDNN_MAX_CPU_ISA": "avx512_core"}, "ONEDNN_MAX_CPU_ISA=avx512_core"),  # AVX512 without bf16
    ({"DNNL_MAX_CPU_ISA": "AVX2_VNNI"}, "DNNL_MAX_CPU_ISA=AVX2_VNNI"),
    ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, None),  # still has the bf16 instructions
    ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}, None),
    ({"ONEDNN_MAX_CPU_ISA": "ALL"}, None),
    ({"ATEN_CPU_CAPABILITY": "avx2"}, "ATEN_CPU_CAPABILITY=avx2"),
    ({"ATEN_CPU_CAPABILITY": "default"}, "ATEN_CPU_CAPABILITY=default"),
    ({"ATEN_CPU_CAPABILITY": "avx512"}, None),
])
def test_an_isa_cap_below_bf16_means_no_fast_bf16(env, capped):
    assert prec.isa_cap(env) == capped
    fast, why = prec.cpu_bf16_support(AMX_FLAGS, "AVX512", env=env)
    assert fast is (capped is None)
    assert capped is None or (capped in why and "emulated" in why)
    assert prec.cpu_bf16_support(AVX2_FLAGS, "AVX2", env=env)[0] is False  # no units: capped or not


@pytest.mark.parametrize("name, value", [("ONEDNN_MAX_CPU_ISA", "AVX2"), ("ATEN_CPU_CAPABILITY", "avx2")])
def test_isa_cap_read_by_a_process_that_starts_with_it(name, value):
    """As a user sets it: torch starts with the variable, and auto precision keeps fp32 whatever this CPU has."""
    import json
    import os
    import subprocess
    import sys

    code = ("import json, torch; from vgzoo import precision as p; from vgzoo.inference import inference_mode; "
            "print(json.dumps([p.device_has_fast_bf16('cpu'), p.cpu_bf16_support({'avx512_bf16', 'amx_bf16'}, "
            "'AVX512'), inference_mode('cpu', 'auto').to_dict()]))")
    env = {k: v for k, v in os.environ.items() if k not in ISA_CAPS}
    done = subprocess.run([sys.executable, "-c", code], env={**env, name: value}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    here, stand_in, record = json.loads(done.stdout.splitlines()[-1])
    assert here[0] is False and stand_in[0] is False  # this machine, and one with AMX-BF16 and AVX512-BF16
    assert f"{name}={value}" in stand_in[1]
    assert record["precision"] == "fp32" and record["reason"].startswith("fp32 (auto")


def test_bf16_pays_by_work_per_call():
    floor = prec.CPU_BF16_MIN_FLOPS
    assert prec.bf16_pays(floor, "cpu")[0] and prec.bf16_pays(100 * floor, "cpu")[0]
    small, why = prec.bf16_pays(floor / 10, "cpu")
    assert not small and "GFLOP per forward call, below" in why
    assert prec.bf16_pays(1, "cuda")[0]  # the size rule is the CPU's
    assert prec.bf16_pays(None, "cpu")[0]
    calls = prec.MIN_CALLS_FOR_BF16
    assert prec.bf16_pays(100 * floor, "cpu", calls)[0] and prec.bf16_pays(100 * floor, "cuda", calls)[0]
    for device in ("cpu", "cuda"):  # too few calls to win back the guard's fp32 pass, on any device
        short, why = prec.bf16_pays(100 * floor, device, calls - 1)
        assert not short and "win back the quality guard's fp32 pass" in why


class CountingNet(nn.Module):
    """A linear layer of ``width``: 2 * batch * width**2 FLOPs per call; records the dtype it computed in."""

    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.dtypes = []

    def forward(self, x):
        y = self.fc(x)
        self.dtypes.append(y.dtype)
        return torch.tanh(y)


def test_auto_runs_fp32_for_a_call_too_small_for_bf16(monkeypatch):
    _cpu(monkeypatch, AMX_FLAGS, "AVX512")
    monkeypatch.setattr(prec, "CPU_BF16_MIN_FLOPS", 2 * 4 * 64 * 64 + 1)  # one FLOP more than the net does
    net = CountingNet(64)
    mode = inference_mode("cpu", "auto")
    assert mode.dtype_name == "bf16"  # the hardware half says bf16 ...
    run = GuardedRunner(net, mode, "images")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # deciding by size is not a fallback: nothing to warn about
        out = run(torch.full((4, 64), 0.01))
    assert net.dtypes == [torch.float32]  # ... the size half says fp32: one fp32 pass, no bf16 pass to compare
    assert mode.dtype_name == "fp32" and not mode.fell_back and mode.guard is None
    assert mode.flops_per_call == 2 * 4 * 64 * 64
    assert mode.to_dict()["reason"].startswith("fp32 (auto: ") and "GFLOP per forward call, below" in mode.to_dict()[
        "reason"]
    torch.testing.assert_close(out, net(torch.full((4, 64), 0.01)))
    run(torch.zeros(4, 64))
    assert net.dtypes[-1] == torch.float32  # later batches stay fp32


def test_auto_keeps_bf16_for_a_call_large_enough(monkeypatch):
    _cpu(monkeypatch, AMX_FLAGS, "AVX512")
    monkeypatch.setattr(prec, "CPU_BF16_MIN_FLOPS", 2 * 4 * 64 * 64)  # exactly what the net does
    net = CountingNet(64)
    mode = inference_mode("cpu", "auto")
    run = GuardedRunner(net, mode, "images")
    run(torch.full((4, 64), 0.01))
    assert net.dtypes == [torch.float32, torch.bfloat16]  # the fp32 reference (counted), then the bf16 run checked
    assert mode.dtype_name == "bf16" and mode.guard.startswith("first batch bf16: PSNR")
    assert "GFLOP per forward call (bf16 pays from" in mode.guard
    run(torch.zeros(4, 64))
    assert net.dtypes[-1] == torch.bfloat16 and len(net.dtypes) == 3  # no more checks


def test_auto_runs_fp32_for_a_run_of_one_call(monkeypatch):
    _cpu(monkeypatch, AMX_FLAGS, "AVX512")
    monkeypatch.setattr(prec, "CPU_BF16_MIN_FLOPS", 1)  # any size pays
    net = CountingNet(8)
    mode = inference_mode("cpu", "auto")
    out = GuardedRunner(net, mode, "images", calls=1)(torch.full((2, 8), 0.01))
    assert net.dtypes == [torch.float32] and mode.dtype_name == "fp32" and not mode.fell_back
    assert "1 forward call, fewer than" in mode.to_dict()["reason"]
    torch.testing.assert_close(out, net(torch.full((2, 8), 0.01)))
    net.dtypes.clear()
    mode = inference_mode("cpu", "auto")
    GuardedRunner(net, mode, "images", calls=prec.MIN_CALLS_FOR_BF16)(torch.full((2, 8), 0.01))
    assert net.dtypes == [torch.float32, torch.bfloat16] and mode.dtype_name == "bf16"


def test_generate_tells_the_guard_how_many_calls_it_makes(monkeypatch, tmp_path):
    from vgzoo.generate import generate

    _cpu(monkeypatch, AMX_FLAGS, "AVX512")
    monkeypatch.setattr(prec, "CPU_BF16_MIN_FLOPS", 1)
    cgan = vgzoo.create("cgan_embed_digits", ngf=8, ndf=8, nz=8)
    one = generate(cgan, out=tmp_path / "a.png", labels=[3], per_class=2).inference  # one class: one call
    assert one["precision"] == "fp32" and "1 forward call" in one["reason"]
    many = generate(cgan, out=tmp_path / "b.png", labels=[1, 2, 3], per_class=2).inference
    assert many["precision"] == "bf16" and many["guard"].startswith("first batch bf16")


def test_translate_tells_the_guard_how_many_calls_it_makes(monkeypatch, tmp_path):
    from vgzoo.translate import translate

    _cpu(monkeypatch, AMX_FLAGS, "AVX512")
    monkeypatch.setattr(prec, "CPU_BF16_MIN_FLOPS", 1)
    G = vgzoo.create("cyclegan_resnet", ngf=4, ndf=4, n_blocks=1, img_size=32).eval().G_AB
    (tmp_path / "in").mkdir()
    for i in range(3):
        write_png(tmp_path / "in" / f"{i}.png", 16, 16, seed=i)
    one = translate(G, tmp_path / "in" / "0.png", tmp_path / "one.png", progress=False).inference
    assert one["precision"] == "fp32" and "1 forward call" in one["reason"]  # a single image: no bf16 pass at all
    many = translate(G, tmp_path / "in", tmp_path / "many", progress=False).inference  # three batches of one
    assert many["precision"] == "bf16" and many["guard"].startswith("first batch bf16")
    pair = translate(G, tmp_path / "in", tmp_path / "pair", batch_size=2, progress=False).inference  # two batches
    assert pair["precision"] == "fp32" and "2 forward calls" in pair["reason"]


def test_an_explicit_bf16_is_not_overruled_by_size(monkeypatch):
    _cpu(monkeypatch, AMX_FLAGS, "AVX512")
    net = CountingNet(4)  # far below the floor
    mode = inference_mode("cpu", "bf16")
    GuardedRunner(net, mode, "images")(torch.full((1, 4), 0.01))
    assert mode.dtype_name == "bf16" and net.dtypes == [torch.float32, torch.bfloat16]


# ------------------------------------------------------------------------------------------ the quality guard
def test_guard_scores():
    ref = torch.linspace(-1, 1, 1000)
    ok, text = guard_score("images", ref, ref + 0.01)  # MSE 1e-4: PSNR 46 dB
    assert ok and "PSNR 46.0 dB" in text
    ok, text = guard_score("images", ref, ref + 0.1)  # 26 dB
    assert not ok and f"floor {PSNR_FLOOR_DB:g} dB" in text
    assert not guard_score("images", ref, ref * float("nan"))[0]
    logits = torch.eye(10)
    assert guard_score("logits", logits, logits + 0.01)[0]
    flipped = logits.clone()
    flipped[0] = torch.roll(flipped[0], 1)
    ok, text = guard_score("logits", logits, flipped)
    assert not ok and "90.0%" in text
    feats = torch.randn(4, 64)
    assert guard_score("features", feats, feats * 1.01)[0] and not guard_score("features", feats, feats * 1.5)[0]


def test_guard_falls_back_to_fp32_once_and_records_it(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        write_png(src / f"{i}.png", 12, 10, seed=i)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = translate(CancellingGenerator(), src, tmp_path / "out", precision="bf16", device="cpu",
                            progress=False, workers=0)
    said = [w for w in caught if issubclass(w.category, PrecisionWarning) and "quality floor" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in caught]  # said once, not per batch
    record = written.inference
    assert record["precision"] == "fp32" and record["fell_back"] and record["asked"] == "bf16"
    assert "fell back to fp32" in record["guard"] and "PSNR" in record["guard"]
    for i, path in enumerate(written):  # every image, the first included, is the exact fp32 result
        x = read_image(src / f"{i}.png", 3)
        with torch.no_grad():
            expected = ((CancellingGenerator()(x).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        assert np.array_equal(np.asarray(Image.open(path)), expected[0].permute(1, 2, 0).numpy())


def test_guard_keeps_a_good_reduced_precision(tmp_path):
    write_png(tmp_path / "a.png", 16, 16)
    written = translate(SmoothGenerator(), tmp_path / "a.png", tmp_path / "b.png", precision="bf16", device="cpu",
                        progress=False)
    record = written.inference
    assert record["precision"] == "bf16" and not record["fell_back"]
    assert record["guard"].startswith("first batch bf16: PSNR") and "floor 30 dB" in record["guard"]


def test_guard_on_logits_falls_back_for_a_classifier_that_breaks():
    flipper = nn.Linear(4, 4)  # logits 300, 300.25, 300.5, 300.75: bf16 (steps of 2 near 300) makes them all 300
    with torch.no_grad():
        flipper.weight.zero_()
        flipper.bias.copy_(300 + torch.arange(4.0) * 0.25)
    mode = inference_mode("cpu", "bf16")
    run = GuardedRunner(flipper, mode, "logits")
    with pytest.warns(PrecisionWarning, match="top-1 agreement"):
        out = run(torch.zeros(8, 4))
    assert mode.fell_back and (out.argmax(-1) == 3).all()


def test_guard_falls_back_when_the_reduced_precision_raises():
    class NoBf16(nn.Module):
        """A linear layer (bf16 under autocast) followed by an op that refuses bf16 input."""

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            y = self.fc(x)
            if y.dtype != torch.float32:
                raise RuntimeError(f"no kernel for {y.dtype}")
            return y

    net = NoBf16()
    mode = inference_mode("cpu", "bf16")
    run = GuardedRunner(net, mode, "logits")
    with pytest.warns(PrecisionWarning, match="no kernel for torch.bfloat16"):
        out = run(torch.ones(2, 3))
    assert mode.fell_back and "failed (RuntimeError" in mode.guard
    torch.testing.assert_close(out, net(torch.ones(2, 3)))
    torch.testing.assert_close(run(torch.zeros(2, 3)), net(torch.zeros(2, 3)))  # later batches: fp32


def test_a_first_batch_that_fails_in_fp32_too_leaves_the_check_for_the_next():
    def net(x):
        if x.shape[-1] == 1:
            raise ValueError("bad input")
        return torch.tanh(x @ torch.ones(x.shape[-1], 2))

    mode = inference_mode("cpu", "bf16")
    run = GuardedRunner(net, mode, "images")
    with pytest.raises(ValueError, match="bad input"):
        run(torch.ones(2, 1))
    assert not run.checked and mode.guard is None
    run(torch.full((2, 4), 0.1))
    assert run.checked and mode.guard.startswith("first batch bf16: PSNR")


def test_fp32_runs_are_not_checked():
    calls = []
    mode = inference_mode("cpu", "fp32")
    run = GuardedRunner(lambda x: calls.append(1) or x, mode, "images")
    run(torch.zeros(1, 3, 2, 2))
    assert calls == [1] and mode.guard is None and mode.to_dict()["precision"] == "fp32"


# ------------------------------------------------------------------------------------------ what ran, printed
def test_translate_cli_prints_what_ran(tmp_path):
    torch.manual_seed(0)
    vgzoo.save_pretrained(vgzoo.create("cyclegan_resnet", ngf=4, ndf=4, n_blocks=1, img_size=32), tmp_path / "m")
    write_png(tmp_path / "a.png", 16, 16)
    result = CliRunner().invoke(cli, ["translate", str(tmp_path / "m"), str(tmp_path / "a.png"),
                                      str(tmp_path / "b.png"), "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    assert "inference: cpu, fp32 (asked for)" in result.output
    result = CliRunner().invoke(cli, ["translate", str(tmp_path / "m"), str(tmp_path / "a.png"),
                                      str(tmp_path / "c.png"), "--precision", "fp8"])
    assert result.exit_code == 2 and "fp8" in result.output and not (tmp_path / "c.png").exists()


def test_generate_and_eval_record_what_ran(tmp_path):
    from vgzoo.generate import generate
    from vgzoo.metrics import eval_classify

    torch.manual_seed(0)
    cgan = vgzoo.create("cgan_embed_digits", ngf=8, ndf=8, nz=8)
    res = generate(cgan, out=tmp_path / "g.png", labels=[1, 2], per_class=2, precision="bf16", device="cpu")
    assert res.inference["precision"] in ("bf16", "fp32") and res.inference["asked"] == "bf16"
    assert res.inference["guard"].startswith("first batch bf16")
    fp32 = generate(cgan, out=tmp_path / "h.png", labels=[1, 2], per_class=2, precision="fp32")
    assert fp32.inference == {"device": "cpu", "precision": "fp32", "asked": "fp32", "reason": "fp32 (asked for)",
                              "compile": False, "guard": None, "fell_back": False, "flops_per_call": None}
    clf = vgzoo.create("vit_ti16_scratch", img_size=16, patch_size=8, in_chans=1, num_classes=10, depth=1)
    out = eval_classify(clf, "builtin:digits", split="val", precision="bf16", progress=False,
                        confusion_png=tmp_path / "c.png")
    assert out["inference"]["asked"] == "bf16" and "top-1 agreement" in out["inference"]["guard"]


# ------------------------------------------------------------------------------------------ loading and batching
def test_default_workers():
    from vgzoo.inference import MIN_FILES_FOR_WORKERS, default_workers

    assert default_workers(1, "cuda") == default_workers(MIN_FILES_FOR_WORKERS - 1, "cuda") == 0
    assert 1 <= default_workers(MIN_FILES_FOR_WORKERS, "cuda") <= 4
    assert default_workers(1000, "cpu") == 0  # a CPU model's threads use every core: decoding stays in between


def test_same_size_batches():
    sizes = [(8, 8), (4, 4), (8, 8), None, (4, 4), (8, 8), (8, 8)]
    assert same_size_batches(sizes, 2) == [[0, 2], [1, 4], [3], [5, 6]]
    assert same_size_batches(sizes, 1) == [[i] for i in range(7)]
    assert same_size_batches(sizes, 10) == [[0, 2, 5, 6], [1, 4], [3]]


def test_loader_batches_same_sizes_and_reports_bad_files(tmp_path):
    files = [write_png(tmp_path / "a.png", 8, 6), write_png(tmp_path / "b.png", 5, 5),
             write_png(tmp_path / "c.png", 8, 6, seed=1)]
    (tmp_path / "d.png").write_bytes(b"not a png")
    files.append(tmp_path / "d.png")
    got = list(load_image_batches(files, lambda p: read_image(p, 3), batch_size=4, workers=2))
    batches = [(idx, x.shape) for idx, x, f in got if f is None]
    failures = [f for _, _, f in got if f is not None]
    assert sorted(batches) == [([0, 2], (2, 3, 8, 6)), ([1], (1, 3, 5, 5))]
    assert len(failures) == 1 and failures[0][0] == 3 and "d.png" in failures[0][1]


def test_workers_and_same_size_batches_give_the_serial_outputs(tmp_path):
    torch.manual_seed(0)
    model = vgzoo.create("cyclegan_resnet", ngf=4, ndf=4, n_blocks=1, img_size=32).eval()
    src = tmp_path / "in"
    src.mkdir()
    for i, (h, w) in enumerate([(16, 16), (12, 20), (16, 16), (9, 7), (16, 16), (12, 20)]):
        write_png(src / f"{i}.png", h, w, seed=i)
    (src / "broken.png").write_bytes(b"\x89PNG broken")
    runs = {}
    for name, batch_size, workers in (("serial", 1, 0), ("loader", 3, 2)):
        with pytest.raises(TranslationError) as err:
            translate(model, src, tmp_path / name, batch_size=batch_size, workers=workers, precision="fp32",
                      progress=False)
        assert [f.name for f, _ in err.value.failures] == ["broken.png"]
        runs[name] = err.value.written
    assert [p.name for p in runs["serial"]] == [p.name for p in runs["loader"]] == [f"{i}.png" for i in range(6)]
    for a, b in zip(runs["serial"], runs["loader"], strict=True):
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b))), a.name
    x = read_image(src / "3.png", 3)  # and the files are the generator's output
    with torch.no_grad():
        y = ((translate_tensor(model.G_AB, x).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[0]
    assert np.array_equal(np.asarray(Image.open(runs["loader"][3])), y.permute(1, 2, 0).numpy())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_translate_runs_on_cuda_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("VGZOO_DEVICE", raising=False)  # the suite pins the CPU; here auto must find the GPU
    torch.manual_seed(0)
    model = vgzoo.create("cyclegan_resnet", ngf=8, ndf=8, n_blocks=2, img_size=32).eval()
    write_png(tmp_path / "a.png", 64, 64)
    written = translate(model, tmp_path / "a.png", tmp_path / "b.png", progress=False)
    record = written.inference
    assert record["device"].startswith("cuda")
    native = torch.cuda.is_bf16_supported(including_emulation=False)
    assert record["precision"] == ("bf16" if native else "fp32"), record
    if native:
        assert record["guard"].startswith("first batch bf16: PSNR") and not record["fell_back"], record


@pytest.mark.slow
def test_compiled_translation_matches_eager(tmp_path):
    torch.manual_seed(0)
    model = vgzoo.create("cyclegan_resnet", ngf=4, ndf=4, n_blocks=1, img_size=32).eval()
    write_png(tmp_path / "a.png", 16, 16)
    eager = translate(model, tmp_path / "a.png", tmp_path / "e.png", precision="fp32", progress=False)
    compiled = translate(model, tmp_path / "a.png", tmp_path / "c.png", precision="fp32", compile=True,
                         progress=False)
    assert compiled.inference["compile"] is True
    a, b = (np.asarray(Image.open(p[0]), dtype=int) for p in (eager, compiled))
    assert np.abs(a - b).max() <= 1  # inductor may fuse differently: at most one grey level


def test_make_grid_places_every_cell_and_pads_the_rest():
    from vgzoo.generate import make_grid

    images = torch.arange(5 * 2 * 3 * 1, dtype=torch.uint8).view(5, 2, 3, 1)
    grid = make_grid(images, cols=3, padding=1, scale=2, pad_value=200)
    assert grid.shape == (2 * (4 + 1) + 1, 3 * (6 + 1) + 1, 1)
    for i in range(5):
        r, k = divmod(i, 3)
        top, left = 1 + r * 5, 1 + k * 7
        cell = images[i].repeat_interleave(2, 0).repeat_interleave(2, 1)
        assert torch.equal(grid[top:top + 4, left:left + 6], cell)
        grid[top:top + 4, left:left + 6] = 200
    assert (grid == 200).all()  # padding and the empty sixth cell


@pytest.mark.parametrize("scale", [1, 3])
def test_make_grid_takes_a_models_output_in_the_layout_generate_passes(scale):
    """generate passes ``to_uint8(samples).permute(0, 2, 3, 1)``: a strided (N, H, W, 3) view, not a copy."""
    from vgzoo.data.images import to_uint8
    from vgzoo.generate import make_grid

    samples = torch.rand(6, 3, 4, 5, generator=torch.Generator().manual_seed(0)) * 2 - 1
    pixels = to_uint8(samples).permute(0, 2, 3, 1)
    grid = make_grid(pixels, rows=2, scale=scale)
    h, w = 4 * scale + 2, 5 * scale + 2
    assert grid.shape == (2 * h + 2, 3 * w + 2, 3)
    for i in range(6):
        r, k = divmod(i, 3)
        cell = pixels[i].repeat_interleave(scale, 0).repeat_interleave(scale, 1)
        assert torch.equal(grid[2 + r * h: r * h + h, 2 + k * w: k * w + w], cell), i


def test_require_finite_passes_finite_values_whose_sum_overflows_and_counts_the_bad_images():
    from vgzoo.data.images import require_finite
    from vgzoo.errors import NonFiniteOutputError

    big = torch.full((3, 1, 2, 2), 3e38)  # every value finite, their sum inf in fp32
    assert require_finite(big, "samples") is big
    big[1, 0, 0, 0], big[2, 0, 1, 1] = float("inf"), -float("inf")  # the sum NaN: still found
    with pytest.raises(NonFiniteOutputError, match=r"2 of 3 images hold non-finite values \(NaN or inf; 2 of 12"):
        require_finite(big, "samples")


def test_to_uint8_rounds_the_range_ends_and_the_middle_as_png_writers_do():
    from vgzoo.data.images import to_uint8

    x = torch.tensor([-2.0, -1.0, 0.0, 1.0, 7.0, 2 / 255 - 1]).view(1, 1, 1, 6)
    assert to_uint8(x).flatten().tolist() == [0, 0, 128, 255, 255, 1]
    assert x.flatten()[0] == -2.0  # the input is not changed in place


def _casts(run, x):
    """aten._to_copy calls during ``run(x)``: autocast's casts of inputs and weights."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += func is torch.ops.aten._to_copy.default
            return func(*args, **(kwargs or {}))

    with Count():
        run(x)
    return Count.n


def test_a_run_of_calls_casts_the_weights_once(monkeypatch):
    _cpu(monkeypatch, AMX_FLAGS, "AVX512")
    net = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16))
    x = torch.randn(4, 16)
    mode = inference_mode("cpu", "bf16")
    alone = GuardedRunner(net, mode, "images")
    with torch.no_grad():
        alone(x)  # the check
        per_call = _casts(alone, x)
        # each call casts the input, the output (back to fp32) and all four weights
        assert _casts(alone, x) == per_call == 2 + 4
        kept = GuardedRunner(net, inference_mode("cpu", "bf16"), "images")
        with kept:
            first = kept(x)
            assert _casts(kept, x) == 2  # the weights' casts are kept: the input and the output only
        torch.testing.assert_close(first, alone(x), rtol=0, atol=0)  # the same numbers
    assert not torch.is_autocast_enabled("cpu")


def test_a_run_of_calls_computes_parametrized_weights_once():
    """A spectral norm recomputes ``W / sigma`` on every access; inside ``with runner:`` the first call's is kept."""
    from torch.nn.utils import parametrize

    net = nn.Sequential(nn.utils.parametrizations.spectral_norm(nn.Linear(16, 16)), nn.ReLU()).eval()
    computed = []
    net[0].parametrizations.weight[0].register_forward_hook(lambda *_: computed.append(1))
    x = torch.randn(4, 16)
    run = GuardedRunner(net, inference_mode("cpu", "fp32"), "images")
    with torch.no_grad():
        alone = [run(x) for _ in range(3)]
        assert len(computed) == 3  # once a call
        computed.clear()
        with run:
            kept = [run(x) for _ in range(3)]
            assert len(computed) == 1
        assert not parametrize._cache_enabled and not parametrize._cache  # nothing outlives the run
        run(x)
        assert len(computed) == 2
    for a, b in zip(alone, kept, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


_FAULTS_SCRIPT = """
import resource, sys, torch
from vgzoo.inference import GuardedRunner, inference_mode

def faults_of_a_call():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a, b, c = torch.ones(5 << 20), torch.ones(5 << 20), torch.ones(3 << 20)  # activations of 20, 20, 12 MiB
    del a, b, c
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

if sys.argv[1] == "run":
    with GuardedRunner(lambda x: x, inference_mode("cpu", "fp32"), "images"):
        print([faults_of_a_call() for _ in range(5)])
print([faults_of_a_call()])
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_getaffinity"), reason="glibc's malloc: Linux")
def test_a_cpu_run_reuses_the_memory_its_calls_free(tmp_path):
    """glibc hands freed activations of tens of MiB back to the kernel and faults them in again on the next call;
    inside ``with runner:`` on a CPU the next call reuses them, and the memory goes back when the run ends."""
    import json
    import subprocess
    import sys

    from vgzoo import _heap

    if _heap._glibc() is None:
        pytest.skip("the C library is not glibc")
    script = tmp_path / "faults.py"
    script.write_text(_FAULTS_SCRIPT)
    out = subprocess.run([sys.executable, str(script), "run"], capture_output=True, text=True, check=True).stdout
    inside, after = (json.loads(line) for line in out.splitlines())
    pages = (52 << 20) // 4096
    assert inside[0] > pages // 2  # the first call faults its memory in
    assert min(inside[1:]) < pages // 10  # later ones reuse it (glibc may still map a block afresh now and then)
    assert after[0] > pages // 4  # the run gave it back (malloc_trim)


def test_kept_freed_memory_restores_only_when_the_last_run_ends(monkeypatch):
    from vgzoo import _heap

    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append(("mallopt", param, value))
            return 1

        def malloc_trim(self, pad):
            calls.append(("malloc_trim", pad))
            return 1

    monkeypatch.setattr(_heap, "_glibc", lambda: FakeLibc())
    mode = inference_mode("cpu", "fp32")
    outer, inner = GuardedRunner(lambda x: x, mode, "images"), GuardedRunner(lambda x: x, mode, "images")
    with outer:
        assert calls == [("mallopt", _heap.M_MMAP_THRESHOLD, _heap.MMAP_THRESHOLD_MAX),
                         ("mallopt", _heap.M_TRIM_THRESHOLD, _heap.RUN_TRIM_THRESHOLD)]
        with inner:
            pass
        assert len(calls) == 2  # the inner run neither sets again nor restores under the outer one
    assert calls[2:] == [("mallopt", _heap.M_TRIM_THRESHOLD, _heap.AFTER_RUN_TRIM_THRESHOLD), ("malloc_trim", 0)]
    with pytest.raises(RuntimeError), outer:
        raise RuntimeError("a failed call")
    assert calls[-2:] == [("mallopt", _heap.M_TRIM_THRESHOLD, _heap.AFTER_RUN_TRIM_THRESHOLD), ("malloc_trim", 0)]
    assert _heap._runs == 0


def test_a_run_derives_each_weight_value_once():
    """``vgzoo.layers.derived``: inside ``with runner:`` a parameter's derived value is computed by the first call
    only; outside, on every call; a temporary tensor, a parameter changed in place, or one autograd records, again."""
    from vgzoo.layers import derived, weights_fixed

    weight, computed = nn.Parameter(torch.randn(4, 4)), []

    def energy(w=weight):
        computed.append(1)
        return w.square().sum(1)

    with torch.no_grad():
        derived(weight, "energy", energy)
        derived(weight, "energy", energy)
        assert len(computed) == 2  # no run: every call
        with GuardedRunner(lambda x: x, inference_mode("cpu", "fp32"), "images"):
            first = derived(weight, "energy", energy)
            assert derived(weight, "energy", energy) is first and len(computed) == 3
            with weights_fixed():  # nested: the outermost run's values
                assert derived(weight, "energy", energy) is first
            derived(weight, "other", energy)  # another value of the same weight
            derived(weight.detach(), "energy", energy)  # not a parameter: not kept
            assert len(computed) == 5
            weight.mul_(2)  # changed in place: computed again
            torch.testing.assert_close(derived(weight, "energy", energy), first * 4)
            assert len(computed) == 6
        derived(weight, "energy", energy)
        assert len(computed) == 7  # nothing outlives the run
    with weights_fixed():
        derived(weight, "energy", energy)
        derived(weight, "energy", energy)
    assert len(computed) == 9  # grad enabled and the weight requires it: its value would carry the graph
