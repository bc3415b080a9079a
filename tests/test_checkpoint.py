"""Checkpoints: safetensors + JSON round trips, exact resume, pruning, and faults (SIGKILL mid-save, SIGINT)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train import Blobs, TinyCGAN, TinyClassifier, rows, state_equal

from vgzoo.train import checkpoint as ckpt
from vgzoo.train import fit

TESTS = Path(__file__).resolve().parent


def test_optimizer_state_round_trips_through_safetensors_and_json(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
    tensors, meta = ckpt.flatten_optimizer("G", opt)
    json.dumps(meta)  # the non-tensor half is plain JSON
    from safetensors.torch import load_file, save_file

    save_file(tensors, str(tmp_path / "o.safetensors"))
    twin = torch.optim.Adam(model.parameters(), lr=5.0)
    twin.load_state_dict(ckpt.unflatten_optimizer("G", load_file(str(tmp_path / "o.safetensors")), json.loads(
        json.dumps(meta))))
    a, b = opt.state_dict(), twin.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for idx in a["state"]:
        for k in a["state"][idx]:
            assert torch.equal(a["state"][idx][k], b["state"][idx][k])


def test_rng_states_round_trip():
    tensors, meta = ckpt.capture_rng()
    meta = json.loads(json.dumps(meta))
    expected = (torch.rand(3), np.random.rand(3), random.random())
    ckpt.restore_rng(tensors, meta)
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and expected[2] == got[2]


def _tiny_run(out, steps, options=None, **kw):
    torch.manual_seed(0)
    # the same thread count in every run: float sums may group differently with another count
    return fit(TinyCGAN(pool_size=6), Blobs(40), out, steps=steps, batch_size=8, seed=3, progress=False,
               options={"threads": 1, **(options or {})}, **kw)


def test_gan_resume_is_bitwise_exact_with_image_pool(tmp_path):
    # 5 steps per epoch: resume mid-epoch (7) and across epoch ends; the pool fills after 6 images.
    whole = _tiny_run(tmp_path / "whole", 14).model
    first = _tiny_run(tmp_path / "split", 7)
    assert first.step == 7 and first.model.pool.images  # the pool is part of the saved state
    saved = ckpt.load_checkpoint(first.checkpoint)
    assert any(k.startswith("pool/pool.") for k in saved["tensors"])
    torch.manual_seed(123)  # a different global RNG before resuming must not matter
    resumed = fit(TinyCGAN(pool_size=6), Blobs(40), tmp_path / "split", steps=14, resume=True, progress=False)
    assert resumed.step == 14
    assert state_equal(whole, resumed.model)
    a = [r for r in rows(tmp_path / "whole")]
    b = [r for r in rows(tmp_path / "split")]
    assert a == b  # the logged losses agree too


def test_classifier_resume_is_bitwise_exact_with_schedule_and_mixup(tmp_path):
    opts = {"warmup_epochs": 1, "augment": {"hflip": 0.5}, "schedule_steps": 12, "threads": 1}

    def run(out, steps, **kw):
        torch.manual_seed(0)
        return fit(TinyClassifier(), Blobs(32), out, steps=steps, batch_size=8, lr=1e-3, options=opts,
                   progress=False, **kw)

    whole = run(tmp_path / "whole", 12).model
    run(tmp_path / "split", 6)
    resumed = run(tmp_path / "split", 12, resume=True)
    assert state_equal(whole, resumed.model)


def test_layout_latest_pointer_and_pruning(tmp_path):
    res = _tiny_run(tmp_path / "run", 12, options={"save_every": 2, "keep_last": 2})
    root = tmp_path / "run" / "checkpoints"
    kept = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert kept == ["step_10", "step_12"]
    assert (root / "latest").read_text().strip() == "step_12"
    assert sorted(p.name for p in res.checkpoint.iterdir()) == [
        "model.safetensors", "optim.safetensors", "state.safetensors", "trainer_state.json"]
    state = json.loads((res.checkpoint / "trainer_state.json").read_text())
    assert state["step"] == 12 and state["epoch"] == 2 and state["pos"] == 2
    # a half-written folder and a stale pointer never win
    (root / ".step_14.tmp").mkdir()
    (root / "step_16").mkdir()
    (root / "latest").write_text("step_99\n")
    assert ckpt.latest_checkpoint(tmp_path / "run") == root / "step_12"
    with pytest.raises(ckpt.CheckpointError, match="not a complete"):
        ckpt.load_checkpoint(root / "step_16")


_CHILD = """
import sys, torch
sys.path.insert(0, {tests!r})
from test_train import Blobs, TinyCGAN
from vgzoo.train import fit
torch.manual_seed(0)
res = fit(TinyCGAN(pool_size=6), Blobs(40), {out!r}, steps={steps}, batch_size=8, seed=3, progress=False,
          options={{"save_every": 2, "threads": 1}})
print("RESULT", res.step, res.interrupted, flush=True)
"""


def _child(out, steps, env_extra=None):
    env = {**os.environ, **(env_extra or {}), "PYTHONUNBUFFERED": "1"}
    code = _CHILD.format(tests=str(TESTS), out=str(out), steps=steps)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)


def _wait_for(proc, marker, timeout=240):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if marker in line:
            return
    proc.kill()
    raise AssertionError(f"never saw {marker!r}; output:\n{''.join(seen)}")


def test_sigkill_during_save_resumes_from_previous_checkpoint(tmp_path):
    out = tmp_path / "killed"
    proc = _child(out, 8, {ckpt._SLOW_SAVE_ENV: "6"})
    _wait_for(proc, "vgzoo-test: saving step 6")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert ckpt.latest_checkpoint(out).name == "step_5"  # (epoch end); the half-written step 6 is not used
    assert (out / "checkpoints" / ".step_6.tmp").exists()
    resumed = _tiny_run(out, 8, resume=True)
    assert resumed.step == 8
    assert not (out / "checkpoints" / ".step_6.tmp").exists()  # leftovers are cleaned up
    whole = _tiny_run(tmp_path / "whole", 8).model
    assert state_equal(whole, resumed.model)


def test_sigint_saves_and_exits_cleanly(tmp_path):
    out = tmp_path / "interrupted"
    # a slow save at step 2 gives the signal a known moment to arrive
    proc = _child(out, 400, {ckpt._SLOW_SAVE_ENV: "2:2"})
    _wait_for(proc, "vgzoo-test: saving step 2")
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, output
    line = next(s for s in output.splitlines() if s.startswith("RESULT"))
    _, step, why = line.split()
    assert why == "SIGINT" and int(step) >= 2
    assert ckpt.latest_checkpoint(out).name == f"step_{step}"
    resumed = _tiny_run(out, int(step) + 2, resume=True)
    assert resumed.step == int(step) + 2
