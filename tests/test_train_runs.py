"""Issue 13, trainer side: the run folder is never clobbered, extending a run is the run it claims, metrics survive
SIGKILL, and interrupted runs exit 130/143 after saving.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_checkpoint import _wait_for
from test_train import Blobs, TinyCGAN, TinyClassifier, rows, state_equal
from torch.utils.data import Dataset

from vgzoo.errors import VgzooError
from vgzoo.train import checkpoint as ckpt
from vgzoo.train import fit
from vgzoo.train.engine import TrainingError

TESTS = Path(__file__).resolve().parent
QUIET = {"progress": False, "log": lambda msg: None}


def _vgzoo(*args, env_extra=None, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "vgzoo", *args], capture_output=True, text=True, env=env,
                          timeout=300, **kw)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


CGAN_ARGS = ["--data", "builtin:digits", "--batch-size", "8", "-k", "nz=8", "-k", "ngf=8", "-k", "ndf=8",
             "-o", "threads=1", "--no-progress"]


# ----------------------------------------------------------------------------------------- 1. --out
def test_cli_refuses_to_train_into_another_models_run(tmp_path):
    out = tmp_path / "run"
    fit(TinyCGAN(), Blobs(), out, steps=2, batch_size=8, **QUIET)
    before = _snapshot(out)
    proc = _vgzoo("train", "cgan_embed_digits", "--out", str(out), "--steps", "1", *CGAN_ARGS)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "tiny_cgan" in err and "--resume" in err and "--overwrite" in err and "--out" in err
    assert _snapshot(out) == before  # nothing touched

    # resuming it under another model name says which model the run holds
    proc = _vgzoo("train", "cgan_embed_digits", "--out", str(out), "--steps", "3", "--resume", *CGAN_ARGS)
    assert proc.returncode == 1 and "tiny_cgan" in proc.stderr, proc.stderr
    assert _snapshot(out) == before


def test_fit_refuses_a_saved_model_folder_and_other_files(tmp_path):
    import vgzoo

    saved = tmp_path / "saved"
    vgzoo.save_pretrained(vgzoo.create("cgan_embed_digits", nz=8, ngf=8, ndf=8), saved)
    before = _snapshot(saved)
    with pytest.raises(FileExistsError, match="saved model folder") as info:
        fit("cgan_embed_digits", "builtin:digits", saved, steps=1, batch_size=8, model_kwargs={"nz": 8}, **QUIET)
    assert isinstance(info.value, VgzooError) and "--overwrite" in str(info.value)
    assert _snapshot(saved) == before
    vgzoo.create(f"local-dir:{saved}")  # still loads

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        fit(TinyCGAN(), Blobs(), other, steps=1, batch_size=8, **QUIET)
    assert (other / "notes.txt").read_text() == "mine" and sorted(os.listdir(other)) == ["notes.txt"]

    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        fit(TinyCGAN(), Blobs(), a_file, steps=1, batch_size=8, **QUIET)

    empty = tmp_path / "empty"
    empty.mkdir()
    assert fit(TinyCGAN(), Blobs(), empty, steps=1, batch_size=8, **QUIET).step == 1  # an empty folder is fine


def test_overwrite_moves_the_old_run_aside(tmp_path):
    out = tmp_path / "run"
    fit(TinyCGAN(), Blobs(), out, steps=2, batch_size=8, **QUIET)
    before = _snapshot(out)
    res = fit(TinyClassifier(), Blobs(), out, steps=1, batch_size=8, overwrite=True, **QUIET)
    assert res.step == 1 and json.loads((out / "config.json").read_text())["model"] == "tiny_cls"
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert len(moved) == 1 and _snapshot(moved[0]) == before  # never deleted


def test_resume_under_another_model_names_the_runs_model(tmp_path):
    out = tmp_path / "run"
    fit(TinyCGAN(), Blobs(), out, steps=2, batch_size=8, **QUIET)
    with pytest.raises(TrainingError, match="tiny_cgan"):
        fit(TinyClassifier(), Blobs(), out, steps=3, resume=True, **QUIET)
    assert ckpt.latest_checkpoint(out).name == "step_2"


# --------------------------------------------------------------------------- 3. extension is exact
class Pairs(Dataset):
    """Random paired (or unpaired) colour images in [0, 1] for the translation families."""

    def __init__(self, n: int, side: int) -> None:
        g = torch.Generator().manual_seed(7)
        self.a, self.b = torch.rand(n, 3, side, side, generator=g), torch.rand(n, 3, side, side, generator=g)

    def __len__(self):
        return len(self.a)

    def __getitem__(self, i):
        return {"A": self.a[i], "B": self.b[i]}


FAMILIES = {  # name: (model kwargs, data, batch size, whether the default LR schedule depends on the run's length)
    "vit_ti16_scratch": ({"img_size": 16, "patch_size": 8, "in_chans": 1, "num_classes": 10, "depth": 1},
                         "builtin:digits", 16, True),
    "cgan_embed_digits": ({"nz": 8, "ngf": 8, "ndf": 8}, "builtin:digits", 16, False),
    "pix2pix_unet128": ({"ngf": 2, "ndf": 2, "n_layers_D": 1}, lambda: Pairs(6, 128), 2, True),
    "cyclegan_resnet6": ({"ngf": 4, "ndf": 4, "n_blocks": 1, "img_size": 32}, lambda: Pairs(6, 32), 2, True),
    "gan_vanilla": ({"img_size": 16, "base_chans": 16, "ndf": 8}, "builtin:digits", 16, False),
    "restoration_unet": ({"img_size": 16, "in_chans": 1, "ngf": 8, "depth": 3, "ndf": 8}, "builtin:digits", 16,
                         False),
}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_resume_to_twice_the_steps_equals_one_run(tmp_path, name):
    import vgzoo

    if name not in vgzoo.list_models():
        pytest.skip(f"{name} is not installed")
    kwargs, data, batch, uses_horizon = FAMILIES[name]
    n = 3

    def run(out, steps, **kw):
        d = data() if callable(data) else data
        return fit(name, d, tmp_path / out, steps=steps, batch_size=batch, model_kwargs=kwargs, seed=1,
                   device="cpu", options={"threads": 1, "num_workers": 0, **kw.pop("options", {})}, **QUIET, **kw)

    whole = run("whole", 2 * n)
    lrs = [r["lr"] for r in rows(tmp_path / "whole")]
    if uses_horizon:
        # the default schedule spans the run it was planned for: extending it would change the LR already used
        run("short", n)
        with pytest.raises(TrainingError, match="schedule_steps"):
            run("short", 2 * n, resume=True)
        assert ckpt.latest_checkpoint(tmp_path / "short").name == f"step_{n}"
        # planned for 2N from the start, N + resume + N is the 2N run, bit for bit
        run("planned", n, options={"schedule_steps": 2 * n})
        resumed = run("planned", 2 * n, resume=True)
        assert [r["lr"] for r in rows(tmp_path / "planned")] == lrs
    else:
        run("short", n)
        resumed = run("short", 2 * n, resume=True)
        assert [r["lr"] for r in rows(tmp_path / "short")] == lrs
    assert resumed.step == 2 * n
    assert state_equal(whole.model, resumed.model)


def test_replanning_the_schedule_is_explicit_and_keeps_the_lr_continuous(tmp_path):
    opts = {"threads": 1, "lr_policy": "linear"}
    fit(TinyCGAN(), Blobs(40), tmp_path / "r", steps=4, batch_size=8, options=opts, **QUIET)
    with pytest.raises(TrainingError, match="schedule_steps"):
        fit(TinyCGAN(), Blobs(40), tmp_path / "r", steps=8, resume=True, **QUIET)
    fit(TinyCGAN(), Blobs(40), tmp_path / "r", steps=8, resume=True, options={"schedule_steps": 8}, **QUIET)
    lrs = [r["lr"] for r in rows(tmp_path / "r")]
    assert len(lrs) == 8 and all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))  # never jumps back up
    # with fixed n_epochs/n_epochs_decay (the reference's schedule by epoch) the run extends freely
    fixed = {"threads": 1, "lr_policy": "linear", "n_epochs": 1, "n_epochs_decay": 1}
    fit(TinyCGAN(), Blobs(40), tmp_path / "e", steps=4, batch_size=8, options=fixed, **QUIET)
    assert fit(TinyCGAN(), Blobs(40), tmp_path / "e", steps=12, resume=True, **QUIET).step == 12
    assert min(r["lr"] for r in rows(tmp_path / "e")) == 0.0  # decayed to 0 and stays there


# ------------------------------------------------------------------------ 6. metrics and signals
_CHILD = """
import sys, torch
sys.path.insert(0, {tests!r})
from test_train import Blobs, TinyCGAN
from vgzoo.train import fit
torch.manual_seed(0)
fit(TinyCGAN(pool_size=6), Blobs(80), {out!r}, steps=40, batch_size=8, seed=3, progress=False,
    options={{"save_every": 2, "threads": 1}})
"""


def test_metrics_rows_up_to_the_last_checkpoint_survive_sigkill(tmp_path):
    out = tmp_path / "killed"
    env = {**os.environ, ckpt._SLOW_SAVE_ENV: "6", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _CHILD.format(tests=str(TESTS), out=str(out))],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    _wait_for(proc, "vgzoo-test: saving step 6")  # 10 steps per epoch: no epoch end has flushed anything
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert ckpt.latest_checkpoint(out).name == "step_4"
    assert [r["step"] for r in rows(out)][:6] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_cli_run_saves_then_exits_128_plus_signal(tmp_path, sig, code):
    out = tmp_path / "run"
    env = {**os.environ, ckpt._SLOW_SAVE_ENV: "2:2", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vgzoo", "train", "cgan_embed_digits", "--out", str(out),
                             "--steps", "400", "-o", "save_every=2", *CGAN_ARGS],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    _wait_for(proc, "vgzoo-test: saving step 2")
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == code, output
    assert f"interrupted by {signal.Signals(sig).name}" in output and "--resume" in output
    step = ckpt.latest_checkpoint(out).name
    assert int(step.split("_")[1]) >= 2
    assert [r["step"] for r in rows(out)][-1] == int(step.split("_")[1])


def test_a_second_train_into_the_same_out_is_refused_while_the_first_runs(tmp_path):
    """Two real `vgzoo train` processes into one --out: the second is refused, the first's run is untouched, and the
    folder lock goes with the first process however it ends (here SIGKILL)."""
    out = tmp_path / "run"
    args = ["train", "cgan_embed_digits", "--out", str(out), "--steps", "4", "-o", "save_every=2", *CGAN_ARGS]
    env = {**os.environ, ckpt._SLOW_SAVE_ENV: "4:600", "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen([sys.executable, "-m", "vgzoo", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=env)
    try:
        _wait_for(first, "vgzoo-test: saving step 4")  # step_2 is saved; the first run holds --out
        before = _snapshot(out)
        for extra in (["--resume"], ["--overwrite"], []):
            second = _vgzoo(*args, *extra)
            assert second.returncode == 1, second.stdout + second.stderr
            assert f"--out {str(out)!r} is in use: another vgzoo train (pid {first.pid})" in second.stderr
            assert "nothing was written" in second.stderr
            assert _snapshot(out) == before
            assert sorted(os.listdir(tmp_path)) == ["run"]  # --overwrite moved nothing aside
    finally:
        first.kill()
        first.wait(timeout=30)
    resumed = _vgzoo(*args, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert ckpt.latest_checkpoint(out).name == "step_4"


# ------------------------------------------------------------------------------- the option schema
def test_one_schema_for_fit_the_cli_and_the_torchrun_relaunch(monkeypatch, tmp_path):
    import inspect

    from click.testing import CliRunner

    from vgzoo.cli import cli
    from vgzoo.train import distributed
    from vgzoo.train.options import RUN_OPTIONS, cli_argv

    fit_keywords = set(inspect.signature(fit).parameters)
    assert {o.name for o in RUN_OPTIONS} - {"nproc"} <= fit_keywords
    train = cli.get_command(None, "train")
    assert {p.name for p in train.params} - {"model"} == {o.name for o in RUN_OPTIONS if o.flag}

    seen = {}
    monkeypatch.setattr(distributed, "launch_torchrun", lambda nproc, argv: seen.update(argv=argv) or 0)
    args = ["train", "cgan_embed_digits", "--data", "builtin:digits", "--out", str(tmp_path / "r"), "--steps", "3",
            "--batch-size", "8", "--lr", "0.001", "--seed", "4", "--amp", "--overwrite", "--no-progress",
            "-k", "ngf=8", "-o", "save_every=2", "-o", "threads=1", "--nproc", "2"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    relaunched = {}
    monkeypatch.setattr("vgzoo.train.command.train_command", lambda model, values: relaunched.update(values) or 0)
    assert CliRunner().invoke(cli, seen["argv"]).exit_code == 0  # what each torchrun process parses
    original = {}
    monkeypatch.setattr("vgzoo.train.command.train_command", lambda model, values: original.update(values) or 0)
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert relaunched == {**original, "nproc": 1} and cli_argv(relaunched) == seen["argv"][2:]


def test_options_are_type_checked_before_training(tmp_path):
    with pytest.raises(ValueError, match="save_every='often': expected int"):
        fit(TinyCGAN(), Blobs(), tmp_path / "a", steps=1, batch_size=8, options={"save_every": "often"}, **QUIET)
    with pytest.raises(ValueError, match="beta1"):
        fit(TinyCGAN(), Blobs(), tmp_path / "b", steps=1, batch_size=8, options={"beta1": [0.5]}, **QUIET)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
