"""benchmarks/gpu_check.sh: it parses, refuses bad arguments, and its CPU dry run (tiny sizes) completes every
step and writes its JSON and RESULTS section into OUT only. (No GPU here: the GPU run itself is not tested.)"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
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
    res = subprocess.run(["bash", str(SCRIPT), "--device", "cpu", "--tiny", "--out", str(out), "--deadline", "2400"],
                         capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=2500)
    steps = (out / "steps.log").read_text()
    assert res.returncode == 0, res.stdout + res.stderr
    ends = [line for line in steps.splitlines() if " END " in line]
    assert len(ends) == 10 and all(line.endswith("rc=0") for line in ends), steps
    assert "SKIP" not in steps and "report rc=0" in steps
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
