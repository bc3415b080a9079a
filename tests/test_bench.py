"""Tests of the benchmark harness (vgzoo.bench): FLOP formulas, fits, schemas, plots, CLI. No timing is asserted."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from vgzoo.bench import attention as attn_mod
from vgzoo.bench.attention import ATTENTION_ROW_FIELDS, naive_attention, run_attention
from vgzoo.bench.fit import crossover, fit_power_law
from vgzoo.bench.flops import attention_flops, count_flops
from vgzoo.bench.memory import profile_call
from vgzoo.bench.model import MODEL_ROW_FIELDS, run_model
from vgzoo.bench.report import ENVELOPE_KEYS, FIT_FIELDS, format_table, write_results
from vgzoo.bench.scaling import SCALING_ROW_FIELDS, resolve_target, run_scaling
from vgzoo.cli import cli
from vgzoo.errors import UnknownModelError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
B, H, S, D = 2, 3, 48, 16


def _qkv(requires_grad: bool):
    torch.manual_seed(0)
    return [torch.randn(B, H, S, D, requires_grad=requires_grad) for _ in range(3)]


@pytest.mark.parametrize("impl", ["naive", "sdpa_math"])
def test_forward_flop_formula_matches_flop_counter_on_math_path(impl):
    q, k, v = _qkv(False)
    with FlopCounterMode(display=False) as counter:
        if impl == "naive":
            naive_attention(q, k, v)
        else:
            with sdpa_kernel(SDPBackend.MATH):
                F.scaled_dot_product_attention(q, k, v)
    assert counter.get_total_flops() == attention_flops(B, H, S, D) == 4 * B * H * S * S * D


@pytest.mark.parametrize("impl", ["naive", "sdpa_math"])
def test_backward_flop_formula_matches_flop_counter_on_math_path(impl):
    q, k, v = _qkv(True)
    if impl == "naive":
        out = naive_attention(q, k, v)
    else:
        with sdpa_kernel(SDPBackend.MATH):
            out = F.scaled_dot_product_attention(q, k, v)
    with FlopCounterMode(display=False) as counter:
        out.backward(torch.ones_like(out))
    assert counter.get_total_flops() == attention_flops(B, H, S, D, backward=True)
    assert attention_flops(B, H, S, D, backward=True) == 2 * attention_flops(B, H, S, D)
    assert attention_flops(B, H, S, D, backward=True, recompute=True) == 2.5 * attention_flops(B, H, S, D)


def test_count_flops_adds_the_fused_sdpa_term_flop_counter_misses():
    q, k, v = _qkv(True)
    proj = torch.nn.Linear(D, D)

    def step():
        out = F.scaled_dot_product_attention(proj(q), k, v)
        out.sum().backward()

    counted = count_flops(step)
    with FlopCounterMode(display=False) as stock:
        step()
    assert counted.builtin_total == stock.get_total_flops()  # what a plain count reports, kept for comparison
    fwd = attention_flops(B, H, S, D)
    if counted.attention_calls:  # a fused kernel ran (the CPU default): counted analytically
        assert counted.attention == fwd + attention_flops(B, H, S, D, backward=True, recompute=True)
        assert counted.attention_calls[0] == (B, H, S, S, D)
        assert counted.builtin_total < counted.total
    linear = 2 * B * H * S * D * D
    assert counted.linear >= linear  # the projection forward (backward adds more)
    assert counted.total >= counted.attention + counted.linear


def test_fit_recovers_known_exponent_and_crossover():
    xs = [64, 128, 256, 512, 1024, 2048]
    wiggle = [1.02, 0.98, 1.01, 0.99, 1.03, 0.97]  # deterministic multiplicative noise
    fit = fit_power_law(xs, [3.0 * x**1.7 * w for x, w in zip(xs, wiggle, strict=True)])
    assert fit is not None and abs(fit.exponent - 1.7) < 0.03 and fit.r2 > 0.99
    exact = fit_power_law([1, 2, 4], [5, 20, 80])
    assert math.isclose(exact.exponent, 2.0) and math.isclose(exact.coef, 5.0) and math.isclose(exact.predict(8), 320)
    assert fit_power_law([5, 5], [1, 2]) is None
    # quadratic a = x^2 against linear b = 100 x cross at x = 100
    x, how = crossover([10, 50, 200], [x * x for x in (10, 50, 200)], [100 * x for x in (10, 50, 200)])
    assert how == "measured" and abs(x - 100) < 1e-6
    # a noisy first point above b does not fake an early crossing
    x, how = crossover([5, 10, 50, 200], [10**4, 100, 2500, 40000], [500, 1000, 5000, 20000])
    assert how == "measured" and abs(x - 100) < 1e-6
    x, how = crossover([10, 20, 40], [x * x for x in (10, 20, 40)], [100 * x for x in (10, 20, 40)])
    assert how == "extrapolated" and abs(x - 100) < 1e-6
    assert crossover([1, 2], [1, 2], [10, 20]) == (None, None)


def test_naive_attention_memory_grows_quadratically():
    peaks = []
    for s in (256, 512):
        q = torch.randn(1, 2, s, 32)
        peaks.append(profile_call(lambda q=q: naive_attention(q, q, q)).peak_bytes)
    weights = 2 * 512 * 512 * 4  # the S x S weight matrix alone at S=512
    assert peaks[1] >= weights
    assert 3.0 < peaks[1] / peaks[0] < 4.5


@pytest.fixture(scope="module")
def attention_doc():
    return run_attention([32, 64, 128], operators=["naive", "sdpa_math", "sdpa_flash", "sdpa_efficient"],
                         repeats=1, warmup=0, budget_s=None, heads=2, head_dim=16, progress=False)


def test_attention_document_schema(attention_doc, tmp_path):
    doc = attention_doc
    assert set(ENVELOPE_KEYS) <= set(doc) and doc["kind"] == "attention" and doc["schema_version"] == 1
    measured = [o for o, st in doc["operators"].items() if st["measured"]]
    assert {"naive", "sdpa_math"} <= set(measured)
    assert len(doc["rows"]) == len(measured) * 3 * 2
    for row in doc["rows"]:
        assert tuple(row) == ATTENTION_ROW_FIELDS
        assert row["flops"] == attention_flops(1, 2, row["seq_len"], 16) * (
            1 if row["mode"] == "forward" else (3 if row["operator"] in ("naive", "sdpa_math") else 3.5))
    for op in measured:
        assert {"time_exponent", "memory_exponent", "forward_backward_time_exponent",
                "forward_backward_memory_exponent"} <= set(doc["fits"][op])
    assert doc["fits"]["naive"]["memory_exponent"] > 1.5  # the S x S weights
    if not torch.cuda.is_available():
        assert not doc["operators"]["sdpa_efficient"]["available"]
        assert any("sdpa_efficient skipped" in n for n in doc["notes"])
    paths = write_results(doc, tmp_path)
    assert {p.name for p in paths} == {"attention.json", "attention.csv", "attention_fits.csv", "attention.png"}
    loaded = json.loads((tmp_path / "attention.json").read_text())
    assert loaded["rows"][0].keys() == doc["rows"][0].keys()
    with (tmp_path / "attention.csv").open() as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == ATTENTION_ROW_FIELDS
        assert len(list(reader)) == len(doc["rows"])
    with (tmp_path / "attention_fits.csv").open() as fh:
        assert tuple(csv.DictReader(fh).fieldnames) == FIT_FIELDS
    png = tmp_path / "attention.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    from PIL import Image

    with Image.open(png) as im:
        im.verify()
    assert "naive" in format_table(doc)


def test_attention_ctrl_c_keeps_partial_results(monkeypatch, tmp_path):
    real = attn_mod._measure_point
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(attn_mod, "_measure_point", flaky)
    doc = run_attention([32, 64], operators=["naive"], modes=["forward"], repeats=1, warmup=0, budget_s=None,
                        progress=False)
    assert doc["interrupted"] is True and len(doc["rows"]) == 1
    assert (tmp_path / "attention.json") in write_results(doc, tmp_path, plots=False)
    assert "partial" in format_table(doc)


def test_attention_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown attention operator"):
        run_attention([32], operators=["sdpa_magic"], progress=False)
    with pytest.raises(ValueError, match="mode"):
        run_attention([32], modes=["sideways"], progress=False)


@pytest.fixture(scope="module")
def scaling_doc():
    return run_scaling(["vit_ti16_scratch", "timm:resnet18", "no_such_model_xyz"], [32, 48, 64], repeats=1,
                       min_repeats=1, warmup=1, budget_s=None, progress=False)


def test_scaling_document_schema(scaling_doc, tmp_path):
    doc = scaling_doc
    assert set(ENVELOPE_KEYS) <= set(doc) and doc["kind"] == "scaling"
    assert any("no_such_model_xyz skipped" in n for n in doc["notes"])
    assert {r["model"] for r in doc["rows"]} == {"vit_ti16_scratch", "resnet18"}
    assert any("resnet18: sizes [48] skipped" in n for n in doc["notes"])
    for row in doc["rows"]:
        assert tuple(row) == SCALING_ROW_FIELDS
    vit = [r for r in doc["rows"] if r["model"] == "vit_ti16_scratch"]
    assert [r["img_size"] for r in vit] == [32, 48, 64]  # multiples of the patch size 16
    assert [r["tokens"] for r in vit] == [5, 10, 17]  # patches + class token
    for r in vit:  # 12 layers, 3 heads of 64
        assert r["attention_flops"] == 12 * attention_flops(1, 3, r["tokens"], 64)
        assert 0 < r["attention_flop_share"] < 1
    conv = [r for r in doc["rows"] if r["model"] == "resnet18"]
    assert [r["img_size"] for r in conv] == [32, 64] and all(r["attention_flops"] == 0 for r in conv)
    assert conv[-1]["conv_flops"] > conv[0]["conv_flops"]
    assert doc["fits"]["vit_ti16_scratch"]["x"] == "tokens" and doc["fits"]["resnet18"]["x"] == "pixels"
    for fit in doc["fits"].values():
        assert {"time_exponent", "memory_exponent", "flops_exponent"} <= set(fit)
    # conv FLOPs are linear in pixels
    assert abs(doc["fits"]["resnet18"]["flops_exponent"] - 1.0) < 0.05
    cross = doc["crossover"]["vit_ti16_scratch"]
    assert cross["embed_dim"] == 192 and cross["predicted_tokens"] == 1152
    assert abs(cross["predicted_px"] - 543) < 1
    assert cross["flops_method"] == "extrapolated" and 300 < cross["flops_px"] < 900
    paths = write_results(doc, tmp_path)
    assert (tmp_path / "scaling.png").read_bytes()[:8] == PNG_SIGNATURE and len(paths) == 4
    with (tmp_path / "scaling.csv").open() as fh:
        assert tuple(csv.DictReader(fh).fieldnames) == SCALING_ROW_FIELDS


def test_threads_auto_follows_the_load(monkeypatch):
    from vgzoo.bench import timing

    monkeypatch.setattr(timing.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(timing.os, "getloadavg", lambda: (3.0, 3.0, 3.0))
    assert timing.resolve_threads("auto") == 1
    assert "load average 3.0 on 2 cores" in timing.load_note()
    monkeypatch.setattr(timing.os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    assert timing.resolve_threads("auto") is None and timing.load_note() is None
    assert timing.resolve_threads(3) == 3 and timing.resolve_threads(None) is None
    before = torch.get_num_threads()
    with timing.threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_resolve_target_errors_and_size_rules():
    with pytest.raises(UnknownModelError, match="unknown benchmark model"):
        resolve_target("definitely_not_a_model")
    assert resolve_target("cyclegan_resnet6").size_multiple == 4
    assert resolve_target("pix2pix_unet").size_multiple == 256
    assert resolve_target("vit_ti16_scratch").kind == "vit"
    with pytest.raises(ValueError, match="sizes"):
        run_scaling(["vit_ti16_scratch"], [0], progress=False)


def test_run_model_vs_timm_schema():
    doc = run_model("vit_ti16_scratch", batch_size=1, img_size=32, vs_timm="vit_tiny_patch16_224", repeats=1,
                    warmup=0, progress=False)
    assert [r["model"] for r in doc["rows"]] == ["vit_ti16_scratch", "vit_tiny_patch16_224"]
    for row in doc["rows"]:
        assert tuple(row) == MODEL_ROW_FIELDS and row["img_size"] == 32 and row["flops"] > 0
    # same architecture, same analytic FLOPs
    assert doc["rows"][0]["flops"] == doc["rows"][1]["flops"]
    assert "throughput_ratio" in doc["ratio"]


def test_run_model_train_step_on_a_gan():
    doc = run_model("cgan_embed_digits", batch_size=2, train=True, repeats=1, warmup=0, progress=False)
    row = doc["rows"][0]
    assert row["mode"] == "train" and row["flops"] > 0 and row["samples_per_s"] > 0


def test_cli_bench_end_to_end(tmp_path):
    runner = CliRunner()
    out = tmp_path / "att"
    threads_before = torch.get_num_threads()
    result = runner.invoke(cli, ["bench", "attention", "--seq-lens", "16,32", "--operators", "naive,sdpa_math",
                                 "--repeats", "1", "--budget", "0", "--out", str(out), "--json", "--no-progress",
                                 "--threads", "1"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["machine"]["torch_threads"] == 1 and torch.get_num_threads() == threads_before
    assert doc["kind"] == "attention" and set(doc["fits"]) == {"naive", "sdpa_math"}
    assert (out / "attention.png").exists() and (out / "attention.csv").exists()

    out = tmp_path / "scal"
    result = runner.invoke(cli, ["bench", "scaling", "--models", "vit_ti16_scratch", "--sizes", "32,64",
                                 "--repeats", "1", "--min-repeats", "1", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "vit_ti16_scratch" in result.stdout and "crossover" in result.stdout
    assert json.loads((out / "scaling.json").read_text())["rows"]

    out = tmp_path / "model"
    result = runner.invoke(cli, ["bench", "model", "vit_ti16_scratch", "--img-size", "32", "--batch-size", "1",
                                 "--repeats", "1", "--warmup", "0", "--out", str(out), "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"][0]["samples_per_s"] > 0

    result = runner.invoke(cli, ["bench", "scaling", "--sizes", "a,b", "--out", str(out)])
    assert result.exit_code == 2 and "--sizes" in result.output
    result = runner.invoke(cli, ["bench", "model", "not_a_model_anywhere", "--out", str(out)])
    assert result.exit_code == 1 and "unknown model" in result.output


def test_peak_is_robust_and_no_row_exceeds_it():
    from vgzoo.bench.flops import clip_to_peak, measure_matmul_peak

    assert measure_matmul_peak("cpu", torch.float32, sizes=(32, 64), repeats=2) > 0
    doc = {"dtype": "bfloat16", "matmul_peak_flops": 100e9, "notes": [],
           "rows": [{"model": "a", "flops_per_s": 50e9, "pct_of_peak": 50.0},
                    {"model": "fused", "flops_per_s": 103e9, "pct_of_peak": 103.0},
                    {"model": "nothing counted", "flops_per_s": None, "pct_of_peak": None}]}
    clip_to_peak(doc)
    assert doc["matmul_peak_flops"] == 103e9 and doc["matmul_peak_measured_flops"] == 100e9
    assert [r["pct_of_peak"] for r in doc["rows"]] == [pytest.approx(100 * 50 / 103), 100.0, None]
    assert "fused" in doc["notes"][0] and "bfloat16" in doc["notes"][0]


def test_bf16_run_records_device_dtype_precision_and_a_same_dtype_peak(monkeypatch):
    seen = []
    real = attn_mod.measure_matmul_peak
    monkeypatch.setattr(attn_mod, "measure_matmul_peak",
                        lambda dev, dtype: seen.append(dtype) or real(dev, dtype, sizes=(64,), repeats=1))
    doc = run_attention([32, 64], operators=["naive", "sdpa_flash", "sdpa_efficient"], modes=["forward"],
                        dtype="bfloat16", repeats=1, warmup=0, budget_s=None, progress=False)
    assert seen == [torch.bfloat16] and doc["dtype"] == "bfloat16" and doc["device"] == "cpu"
    assert all(r["pct_of_peak"] is None or r["pct_of_peak"] <= 100 for r in doc["rows"])
    assert doc["sdpa_backend"] in ("FLASH_ATTENTION", "MATH")
    assert {"allow_tf32_matmul", "float32_matmul_precision", "sdpa_enabled", "fast_bf16"} <= set(doc["precision"])
    assert "CUDA kernels only" in doc["operators"]["sdpa_efficient"]["reason"]
    assert "matmul peak" in format_table(doc) and "SDPA picks" in format_table(doc)


def test_bench_defaults_follow_the_device(monkeypatch):
    from vgzoo.bench.defaults import bench_defaults, resolve_device

    assert bench_defaults("attention", "cpu")["dtype"] == "float32"
    cuda = bench_defaults("attention", "cuda:0")
    assert cuda["dtype"] == "bfloat16" and max(cuda["seq_lens"]) == 16384
    scaling = bench_defaults("scaling", "cuda")
    assert scaling["batch_size"] >= 16 and max(scaling["sizes"]) > 1086 and scaling["amp_dtype"] == "bfloat16"
    assert bench_defaults("model", "cuda")["batch_size"] >= 128
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cuda:1") == "cuda:1"


@pytest.mark.parametrize("args", [["bench"], ["bench", "scaling"], ["bench", "attention"], ["bench", "model", "x"]])
def test_every_bench_command_takes_device(args):
    res = CliRunner().invoke(cli, [*args, "--help"])
    assert res.exit_code == 0 and "--device" in res.output, res.output
