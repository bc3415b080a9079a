"""The CLI: output contracts, exit codes and error reporting."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

import vgzoo
from vgzoo.cli import cli


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "vgzoo", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_version():
    proc = run("--version")
    assert proc.returncode == 0 and vgzoo.__version__ in proc.stdout


def test_list_prints_one_name_per_line_and_nothing_else():
    proc = run("list")
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == vgzoo.list_models()


def test_list_pattern_and_json():
    result = CliRunner().invoke(cli, ["list", "vit_*", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == ["vit_b16_scratch", "vit_s16_scratch", "vit_ti16_scratch"]


def test_info_json_reports_parameters_config_and_distribution():
    result = CliRunner().invoke(cli, ["info", "vit_ti16_scratch", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["num_params"] == 5_717_416
    assert info["distribution"] == "vgzoo" and info["family"] == "vit"
    assert info["pretrained_cfg"]["input_size"] == [3, 224, 224]


def test_unknown_model_is_one_line_on_stderr_exit_1():
    proc = run("info", "vit_b16_scrach")
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Unknown model") and "vit_b16_scratch" in lines[0]


@pytest.mark.parametrize("how", [["--debug"], "env"])
def test_debug_shows_the_traceback(how):
    args = ["info", "nope"] if how == "env" else [*how, "info", "nope"]
    proc = run(*args, env={"VGZOO_DEBUG": "1"} if how == "env" else None)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "UnknownModelError" in proc.stderr


def test_usage_error_exits_2():
    proc = run("list", "--no-such-option")
    assert proc.returncode == 2 and "No such option" in proc.stderr


def test_plugins_lists_every_entry_point_with_its_status():
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(vgzoo.list_models()) <= set(rows)
    assert rows["vit_b16_scratch"] == {
        "name": "vit_b16_scratch",
        "entry_point": "vgzoo.models.vit:vit_b16_scratch",
        "distribution": "vgzoo",
        "status": "ok",
        "error": "",
    }


def test_closed_pipe_exits_quietly():
    """`vgzoo info X | head`: the reader goes away; no 'error: [Errno 32] Broken pipe'."""
    proc = subprocess.Popen([sys.executable, "-m", "vgzoo", "info", "cyclegan_resnet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # before the child writes a byte
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141  # what a tool stopped by SIGPIPE reports
    assert err == "", err


def test_train_summary_comes_from_rank_0_only(monkeypatch, tmp_path):
    """Under torchrun every rank runs the command; only rank 0 prints the summary line."""
    from vgzoo.train import engine

    result = engine.TrainResult(run_dir=tmp_path, step=3, epoch=0, total_steps=3, checkpoint=None,
                                metrics={"top1": 50.0}, health="healthy", interrupted=None, model=None)
    monkeypatch.setattr(engine, "fit", lambda *a, **k: result)  # what vgzoo train calls
    for rank, shown in (("1", False), ("0", True)):
        monkeypatch.setenv("RANK", rank)
        out = CliRunner().invoke(cli, ["train", "vit_ti16_scratch", "--data", "builtin:digits", "--out",
                                       str(tmp_path)])
        assert out.exit_code == 0, out.output
        assert ("trained vit_ti16_scratch for 3 steps" in out.output) is shown, (rank, out.output)
