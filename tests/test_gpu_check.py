"""benchmarks/gpu_check.sh: it parses, refuses bad arguments, its caps fit its deadline, it installs offline from
the wheel folder benchmarks/gpu_wheels.sh fills (rehearsed here in a stand-in for the GPU image with the network
off), and its CPU dry run (tiny sizes) completes every step and writes its JSON and RESULTS section into OUT only.
(No GPU here: the GPU run itself is not tested.)"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
WHEELS_SCRIPT = ROOT / "benchmarks" / "gpu_wheels.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_image  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="needs bash and coreutils timeout")


def _env():
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # this venv's python/vgzoo
    return env


def test_script_parses_and_refuses_unknown_arguments():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    res = subprocess.run(["bash", str(SCRIPT), "--sizes", "1"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2 and "unknown argument --sizes" in res.stderr


def test_every_step_has_a_cap_and_the_caps_fit_the_deadline():
    res = subprocess.run(["bash", str(SCRIPT), "--plan"], capture_output=True, text=True, check=True)
    *steps, total = res.stdout.splitlines()
    caps = {name: int(cap) for name, cap in (line.split() for line in steps)}
    _, total_s, _, deadline = total.split()
    assert sum(caps.values()) == int(total_s) <= int(deadline) == 540
    assert {"install", "test_cuda", "checks", "attn_bf16", "train_cgan", "compile", "report"} <= set(caps)
    res = subprocess.run(["bash", str(SCRIPT), "--deadline", "300"], capture_output=True, text=True)
    assert res.returncode == 2 and "past the 300s deadline" in res.stderr


def test_without_a_wheel_folder_it_stops_at_once_and_says_what_to_do(tmp_path):
    res = subprocess.run(["bash", str(SCRIPT), "--wheels", str(tmp_path / "none"), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 1 and "every vgzoo step would fail" in res.stdout
    assert "gpu_wheels.sh" in (tmp_path / "o" / "install.log").read_text()
    assert "START env" not in (tmp_path / "o" / "steps.log").read_text()


def test_the_wheel_list_is_what_the_image_lacks(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    assert set(gpu_image.our_wheels(tmp_path)) == {"vgzoo"}
    need = gpu_image.missing(tmp_path)
    assert {"kornia", "kornia-rs"} <= set(need)  # the rest follows vgzoo's requirements (click, requests, ...)
    assert not {"torch", "timm", "numpy", "torchvision", "scikit-learn", "vgzoo"} & set(need)


def _plugin_names() -> set[str]:
    """The distribution names of every package under plugins/ (each folder with a pyproject.toml)."""
    return {tomllib.loads(p.read_text())["project"]["name"] for p in ROOT.glob("plugins/*/pyproject.toml")}


def _standin_image(tmp: Path) -> Path:
    """A fresh venv standing in for the GPU image: beside its own pip, only the image's packages (gpu_image.IMAGE
    and what they need), linked from this machine's site-packages, so kornia and vgzoo are not there."""
    farm = tmp / "image-site"
    farm.mkdir()
    system: dict[str, md.Distribution] = {}
    for dist in md.distributions():  # in sys.path order: the copy this interpreter imports comes first
        system.setdefault(canonicalize_name(dist.name), dist)
    for name in sorted(gpu_image.closure(gpu_image.IMAGE) & set(system)):
        dist = system[name]
        root = Path(dist.locate_file(""))
        for top in {Path(f).parts[0] for f in dist.files or () if Path(f).parts[0] not in ("..", "__pycache__")}:
            if not (farm / top).exists() and (root / top).exists():
                (farm / top).symlink_to(root / top)
    venv = tmp / "image"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "gpu-image.pth").write_text(f"import site; site.addsitedir({str(farm)!r})\n")
    return venv


def _offline(env: dict) -> dict:
    """No index, no configured links, and every proxy a closed loopback port: pip can reach nothing."""
    env = {k: v for k, v in env.items() if not k.startswith("PIP_")}
    dead = "http://127.0.0.1:9"
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "http_proxy": dead, "https_proxy": dead,
            "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "no_proxy": "", "NO_PROXY": ""}


@pytest.mark.slow
def test_offline_install_rehearsal_from_the_wheel_folder(tmp_path):
    wheels = tmp_path / "gpu-wheels"
    res = subprocess.run(["bash", str(WHEELS_SCRIPT), "--from-installed", "--out", str(wheels)],
                         capture_output=True, text=True, cwd=ROOT, env=_offline(_env()), timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    built = {canonicalize_name(p.name.split("-")[0]) for p in wheels.glob("*.whl")}
    carried = (wheels / "requirements.txt").read_text().split()
    assert {"kornia", "kornia-rs"} <= set(carried) and set(carried) <= built
    assert set(gpu_image.our_wheels(wheels)) == {"vgzoo"} | {canonicalize_name(n) for n in _plugin_names()}
    assert (wheels / "requirements.txt").read_text().split() == gpu_image.missing(wheels)

    venv = _standin_image(tmp_path)
    py = str(venv / "bin" / "python")
    env = _offline({**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "PYTHON": py})
    before = subprocess.run([py, "-c", "import timm, torchvision, sklearn; import kornia"], capture_output=True,
                            text=True, env=env)
    assert "No module named 'kornia'" in before.stderr  # the image has what it should, and lacks kornia

    out = tmp_path / "out"
    res = subprocess.run(["bash", str(SCRIPT), "--install-only", "--wheels", str(wheels), "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    steps = (out / "steps.log").read_text()
    assert res.returncode == 0 and "END install rc=0" in steps, steps + (out / "install.log").read_text()
    where = subprocess.run([py, "-c", "import importlib.metadata as md, json, sys; import kornia, vgzoo; "
                            "print(json.dumps({n: str(md.distribution(n).locate_file('')) for n in sys.argv[1:]}))",
                            "vgzoo", *carried, *_plugin_names()], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    outside = {n: p for n, p in json.loads(where.stdout).items() if not p.startswith(str(venv))}
    assert not outside  # each one installed from the folder into the stand-in, none found elsewhere
    listed = subprocess.run([py, "-m", "vgzoo", "list"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert listed.returncode == 0 and "gan_vanilla" in listed.stdout and "restoration_unet" in listed.stdout
    run = subprocess.run([py, "-m", "vgzoo", "train", "cgan_embed_digits", "--data", "builtin:digits", "--steps", "1",
                          "--batch-size", "8", "--device", "cpu", "-k", "nz=8", "-k", "ngf=8", "-k", "ndf=8",
                          "-o", "threads=1", "--out", str(tmp_path / "run"), "--no-progress"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0 and "trained cgan_embed_digits for 1 steps" in run.stdout, run.stdout + run.stderr


def test_report_marks_missing_steps(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_report.py"), str(tmp_path), "--results",
                          str(tmp_path / "R.md")], capture_output=True, text=True, env=_env())
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "R.md").read_text()
    assert "<!-- BEGIN gpu -->" in text and "not a GPU measurement" in text and "(missing" in text
    assert json.loads((tmp_path / "summary.json").read_text())["checks"] is None


@pytest.mark.slow
def test_cpu_dry_run_completes_every_step(tmp_path):
    results = ROOT / "benchmarks" / "RESULTS.md"
    before = hashlib.sha256(results.read_bytes()).hexdigest()
    out = tmp_path / "dry"
    res = subprocess.run(["bash", str(SCRIPT), "--device", "cpu", "--tiny", "--no-install", "--out", str(out),
                          "--deadline", "2400"], capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=2500)
    steps = (out / "steps.log").read_text()
    assert res.returncode == 0, res.stdout + res.stderr
    ends = [line for line in steps.splitlines() if " END " in line]
    assert len(ends) == 12 and all(line.endswith("rc=0") for line in ends), steps
    assert "SKIP" not in steps and "END report rc=0" in steps and "START install" not in steps
    assert json.loads((out / "train_cgan.json").read_text())["steps"] == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env"]["device"] == "cpu" and summary["checks"]["device"] == "cpu"
    assert summary["checks"]["amp_fp16_overflow"].startswith("ok")
    assert all(summary["bench"][k] is not None for k in ("attn_bf16", "attn_fp32", "vitb_infer", "vitb_train",
                                                         "scaling"))
    assert all(r["pct_of_peak"] is None or r["pct_of_peak"] <= 100
               for doc in summary["bench"].values() for r in doc["rows"])
    assert summary["bench"]["attn_bf16"]["dtype"] == "bfloat16" and summary["augment"]["ratio"] > 0
    assert "Dry run on cpu" in (out / "RESULTS.md").read_text()
    assert hashlib.sha256(results.read_bytes()).hexdigest() == before  # the committed results are left alone


# ------------------------------------------------------------- the GPU check's fixes, on CPU stand-ins
def test_the_attention_sweep_survives_out_of_memory(monkeypatch):
    import torch

    from vgzoo.bench import attention

    real = attention._measure_point

    def short_of_memory(op, mode, s, *args):
        if op == "naive" and s >= 64:
            raise torch.OutOfMemoryError("CUDA out of memory (faked)")
        return real(op, mode, s, *args)

    monkeypatch.setattr(attention, "_measure_point", short_of_memory)
    doc = attention.run_attention((32, 64, 128), operators=["naive", "sdpa_math"], modes=("forward",), heads=2,
                                  head_dim=16, repeats=1, warmup=0, budget_s=None, progress=False)
    measured = sorted((r["operator"], r["seq_len"]) for r in doc["rows"])
    assert measured == [("naive", 32), ("sdpa_math", 32), ("sdpa_math", 64), ("sdpa_math", 128)]
    assert any("naive forward S=64: out of memory" in n for n in doc["notes"])
    assert any("naive forward S=128 skipped" in n for n in doc["notes"]) and not doc["interrupted"]


class _Event:
    """The fields of a profiler FunctionEvent that the time split reads."""

    def __init__(self, name, device_time=0.0, cpu_time=0.0, parent=None, on_device=False):
        import torch

        self.name, self.device_time_total, self.cpu_time_total, self.cpu_parent = name, device_time, cpu_time, parent
        self.device_type = torch.autograd.DeviceType.CUDA if on_device else torch.autograd.DeviceType.CPU


def test_cuda_time_shares_count_each_kernel_once():
    from vgzoo.bench.memory import _op_times

    linear = _Event("aten::linear", device_time=300.0)  # its kernels' time, children included
    addmm = _Event("aten::addmm", device_time=300.0, parent=linear)
    sdpa = _Event("aten::scaled_dot_product_attention", device_time=100.0)
    kernels = [_Event("sm90_gemm_bf16", device_time=300.0, on_device=True),
               _Event("flash_fwd_kernel", device_time=100.0, on_device=True)]  # the same time, as kernel events
    times = _op_times([linear, addmm, sdpa, *kernels], device=True)
    assert times["total"] == pytest.approx(400e-6) and times["linear"] == pytest.approx(300e-6)
    assert times["attention"] / times["total"] == pytest.approx(0.25)


def test_the_torchvision_baseline_gives_every_worker_batches():
    import torch
    from bench_augment import _PerSample

    images = torch.rand(4, 3, 8, 8)
    ds = _PerSample(images, lambda x: x, length=3 * 2 * 4)  # 3 workers x 2 batches of 4
    assert len(ds) == 24 and torch.equal(ds[5], images[1])


def test_syncs_are_counted_in_steady_steps_only(tmp_path):
    import contextlib

    from gpu_checks import in_steady_steps

    from vgzoo.train import fit
    from vgzoo.train.recipes import Recipe

    entered = []
    before = (Recipe.prepare, Recipe.train_step)
    with in_steady_steps(lambda: contextlib.nullcontext(entered.append(1))):
        fit("cgan_embed_digits", "builtin:digits", tmp_path / "r", steps=4, batch_size=8, device="cpu",
            model_kwargs={"nz": 8, "ngf": 8, "ndf": 8}, options={"threads": 1}, progress=False, log=lambda m: None)
    assert len(entered) == 2 * 3  # steps 2..4: the batch's preparation and the step; not step 1, not set-up
    assert (Recipe.prepare, Recipe.train_step) == before
