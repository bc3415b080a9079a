"""CUDA-only checks: each names the break it catches on the first GPU run. Skipped, with the reason, without CUDA.

Run on a GPU machine with ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (set below before CUDA starts, when this module is
collected first) so the deterministic mode can use cuBLAS. ``benchmarks/gpu_check.sh`` runs this file. The CPU halves
of the trainer's checks (no value read in a step, logs read back every N steps, one DataLoader per run) are in
tests/test_train_device_path.py.
"""

from __future__ import annotations

import functools
import json
import os
import warnings

import pytest
import torch
from torch.utils.data import Dataset

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available())")
SMALL = {"nz": 8, "ngf": 8, "ndf": 8}


def _cgan(tmp, steps, **kw):
    from vgzoo.train import fit

    return fit("cgan_embed_digits", "builtin:digits", tmp, steps=steps, batch_size=64, seed=3, device="cuda",
               model_kwargs=SMALL, progress=False, log=lambda m: None, **kw)


def _same(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class _Pairs(Dataset):
    def __init__(self, side: int = 32, n: int = 8) -> None:
        self.x = torch.rand(n, 2, 3, side, side, generator=torch.Generator().manual_seed(0))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"A": self.x[i, 0], "B": self.x[i, 1]}


# ------------------------------------------------------------------------------------------- training


def test_fp16_amp_overflow_step_is_skipped_not_fatal(tmp_path, monkeypatch):
    # GradScaler-skipped steps log an infinite grad norm; the monitor used to stop the run as "diverged"
    monkeypatch.setattr(torch.amp, "GradScaler", functools.partial(torch.amp.GradScaler, init_scale=2.0**40))
    res = _cgan(tmp_path / "r", 4, amp="fp16")
    assert res.step == 4 and res.health != "failed"
    health = json.loads((tmp_path / "r" / "health.json").read_text())
    assert health["amp_skipped_steps"] >= 1


def test_resume_is_bitwise_on_cuda_in_deterministic_mode(tmp_path):
    opts = {"diffaugment": "color,translation,cutout", "deterministic": True, "schedule_steps": 12}
    try:
        whole = _cgan(tmp_path / "w", 12, options=opts).model
        _cgan(tmp_path / "s", 6, options=opts)
        resumed = _cgan(tmp_path / "s", 12, options=opts, resume=True).model
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
    assert _same(whole, resumed)


def test_fit_without_a_device_runs_on_cuda_and_keeps_tensors_there(tmp_path):
    from vgzoo.train import fit

    res = fit("cgan_embed_digits", "builtin:digits", tmp_path / "d", steps=2, batch_size=16, model_kwargs=SMALL,
              progress=False, log=lambda m: None)
    assert all(p.is_cuda for p in res.model.parameters())


GAN_RECIPES = ["cgan_embed_digits", "gan_vanilla", "restoration_unet", "pix2pix_unet", "cyclegan_resnet6"]


@pytest.mark.parametrize("name", GAN_RECIPES)
def test_every_gan_recipe_trains_and_resumes_on_cuda(tmp_path, name):
    trains_and_resumes(tmp_path, name, "cuda")


def trains_and_resumes(tmp_path, name: str, device: str) -> None:
    """2 steps, then resumed to 3, with DiffAugment and EMA, on ``device``; no failure or warning logged
    (tests/test_train_hardware.py runs it on the CPU)."""
    import vgzoo
    from vgzoo._factory import model_info
    from vgzoo.train import fit

    if name not in vgzoo.list_models():
        pytest.skip(f"{name} is not installed (plugin)")
    info = model_info(name)
    data = _Pairs() if info.task.endswith("translation") else "builtin:digits"
    kw = dict(info.test_kwargs)
    logs: list[str] = []
    # planned for the 3 steps it is extended to: pix2pix's and CycleGAN's linear decay depend on the horizon, so a
    # resume past a 2-step plan is refused by design (engine._restore_or_seed)
    opts = {"diffaugment": "color,translation", "ema": True, "schedule_steps": 3}
    common = dict(batch_size=4, device=device, model_kwargs=kw, options=opts, progress=False, log=logs.append)
    fit(name, data, tmp_path / name, steps=2, **common)
    res = fit(name, data, tmp_path / name, steps=3, resume=True, **common)
    assert res.step == 3 and all(p.device.type == device for p in res.model.parameters())
    assert not [m for m in logs if "failed" in m or "warning" in m], logs


@pytest.mark.parametrize("name", ["cgan_embed_digits", "pix2pix_unet", "cyclegan_resnet6"])
def test_a_gan_training_step_does_not_sync(tmp_path, monkeypatch, name):
    # float(loss) logs, the labels' boolean-mask check and the range check each made the host wait for the GPU
    from vgzoo._factory import model_info
    from vgzoo.train import fit
    from vgzoo.train.recipes import Recipe

    step = Recipe.train_step

    def strict(self, batch, i):
        if i == 0:  # the first step may allocate and pick kernels
            return step(self, batch, i)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            return step(self, batch, i)
        finally:
            torch.cuda.set_sync_debug_mode(0)

    monkeypatch.setattr(Recipe, "train_step", strict)
    info = model_info(name)
    data = _Pairs() if info.task.endswith("translation") else "builtin:digits"
    res = fit(name, data, tmp_path / name, steps=3, batch_size=4, device="cuda", model_kwargs=dict(info.test_kwargs),
              options={"log_every": 3}, progress=False, log=lambda m: None)
    assert res.step == 3


# --------------------------------------------------------------------------------------- augmentation


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_transforms_keep_device_dtype_seeded_sequence_and_the_global_cuda_rng(dtype):
    from vgzoo.augment import DiffAugment, create_transform

    x = torch.rand(16, 3, 256, 256, device="cuda", dtype=dtype)
    y = torch.randint(0, 1000, (16,), device="cuda")
    for t, args in ((create_transform("vit_b16_scratch", seed=1, mixup=True, cutmix=True), (x, y)),
                    (create_transform("pix2pix_unet", seed=1), (x, x)),
                    (create_transform("cyclegan_resnet", seed=1), (x, x)), (DiffAugment(seed=1), (x * 2 - 1,))):
        before_cuda, before_cpu = torch.cuda.get_rng_state(), torch.get_rng_state()
        a = t(*args)
        t.calls = 0
        b = t(*args)
        a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
        assert a[0].is_cuda and a[0].dtype == dtype, type(t).__name__
        assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True)), type(t).__name__
        assert torch.equal(before_cuda, torch.cuda.get_rng_state()), type(t).__name__
        assert torch.equal(before_cpu, torch.get_rng_state()), type(t).__name__


@pytest.mark.parametrize("model", ["vit_b16_scratch", "pix2pix_unet"])
def test_train_transform_does_not_sync(model):
    # per-call H2D copies of mean/std, F.one_hot's range read-back and Kornia's per-image slice crops all sync
    from vgzoo.augment import create_transform

    t = create_transform(model, check_range=False)
    x = torch.rand(32, 3, 256, 256, device="cuda")
    args = (x,) if model.startswith("vit") else (x, x)
    t(*args)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        t(*args)
    finally:
        torch.cuda.set_sync_debug_mode(0)


# ------------------------------------------------------------------------------------------ benchmarks


def test_bench_attention_bf16_lists_fused_backends_with_real_reasons_and_peak():
    from vgzoo.bench.attention import run_attention

    doc = run_attention((512, 1024), device="cuda", dtype="bfloat16", repeats=3, budget_s=10, progress=False)
    ops = doc["operators"]
    assert ops["sdpa_flash"]["measured"] and ops["sdpa_efficient"]["measured"]
    for st in ops.values():
        assert st["available"] or "No available kernel" not in st["reason"]
    rows = {(r["operator"], r["mode"], r["seq_len"]): r for r in doc["rows"]}
    assert rows[("sdpa_flash", "forward", 1024)]["peak_mem_bytes"] * 10 < rows[("naive", "forward", 1024)][
        "peak_mem_bytes"]
    assert all(r["pct_of_peak"] is None or r["pct_of_peak"] <= 100 for r in doc["rows"])
    assert doc["dtype"] == "bfloat16" and doc["precision"]["allow_tf32_matmul"] is not None


def test_bench_attention_fp32_skips_flash_with_the_reason():
    from vgzoo.bench.attention import available_operators

    ops = available_operators("cuda", torch.float32)
    if not ops["sdpa_flash"]["available"]:
        assert "No available kernel" not in ops["sdpa_flash"]["reason"] and ops["sdpa_flash"]["reason"]


def test_bench_scaling_cuda_reports_time_share_and_precision():
    from vgzoo.bench.scaling import run_scaling

    doc = run_scaling(["vit_ti16_scratch"], (64, 128), device="cuda", amp_dtype="bfloat16", repeats=3,
                      min_repeats=3, budget_s=None, progress=False)
    assert all(r["attention_time_share"] is not None for r in doc["rows"])
    assert "allow_tf32_matmul" in json.dumps(doc["precision"]) and doc["sdpa_backend"]
    assert all(r["pct_of_peak"] is None or r["pct_of_peak"] <= 100 for r in doc["rows"])


def test_cuda_memory_profile_returns_kernel_times():
    from vgzoo.bench.memory import profile_call

    a = torch.randn(1024, 1024, device="cuda")
    prof = profile_call(lambda: torch.nn.functional.linear(a, a), "cuda")
    assert prof.peak_bytes >= 4 * 1024 * 1024 and prof.op_time_s["linear"] > 0 and prof.op_time_s["total"] > 0


def test_amp_auto_picks_bf16_on_a_bf16_gpu():
    from vgzoo.precision import resolve_amp

    p = resolve_amp("auto", "cuda")
    if torch.cuda.is_bf16_supported(including_emulation=False):
        assert p.dtype is torch.bfloat16 and not p.scaler
    else:
        assert p.dtype is torch.float16 and p.scaler


# ------------------------------------------------------------------------------- compile (last: the slowest)


def test_compile_has_no_graph_breaks(tmp_path):
    # the CPU half, every family with a counting backend, is tests/test_compile.py; this one runs inductor on CUDA
    from torch._dynamo.utils import counters

    counters.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _cgan(tmp_path / "c", 6, compile=True)
    assert counters["stats"]["unique_graphs"] >= 2
    assert sum(counters["graph_break"].values()) == 0, dict(counters["graph_break"])
