"""Distributed training: 2 gloo processes on CPU under torchrun, then the checkpoint loads single-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

HERE = Path(__file__).resolve().parent


def _worker(out: str) -> None:
    """Run by each torchrun process: a few DDP steps of the tiny cGAN, then a checksum of its weights."""
    sys.path.insert(0, str(HERE))
    from test_train import Blobs, TinyCGAN

    from vgzoo.train import fit

    torch.manual_seed(0)
    res = fit(TinyCGAN(), Blobs(48), out, steps=4, batch_size=4, seed=0, progress=False)
    rank = int(os.environ["RANK"])
    sums = {k: float(v.double().sum()) for k, v in res.model.state_dict().items()}
    Path(out, f"params_rank{rank}.json").write_text(json.dumps({"step": res.step, "sums": sums}))


@pytest.mark.slow
def test_two_gloo_processes_then_single_process_load(tmp_path):
    from test_train import Blobs, TinyCGAN, rows

    from vgzoo._hub import load_state_dict
    from vgzoo.train import fit, latest_checkpoint

    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__, str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0 = json.loads((out / "params_rank0.json").read_text())
    r1 = json.loads((out / "params_rank1.json").read_text())
    assert r0["step"] == r1["step"] == 4
    assert r0["sums"] == r1["sums"]  # DDP kept the replicas identical
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["world_size"] == 2 and cfg["steps_per_epoch"] == 6  # 48 items / 2 ranks / batch 4
    assert [r["step"] for r in rows(out)] == [1, 2, 3, 4]  # rank 0 alone logs
    assert "gloo" in proc.stdout + proc.stderr

    ckpt = latest_checkpoint(out)
    assert ckpt.name == "step_4"
    model = TinyCGAN()
    model.load_state_dict(load_state_dict(ckpt / "model.safetensors"))
    assert {k: float(v.double().sum()) for k, v in model.state_dict().items()} == r0["sums"]
    # and the run continues single-process from the DDP checkpoint
    res = fit(TinyCGAN(), Blobs(48), out, steps=6, resume=True, progress=False)
    assert res.step == 6


def test_sync_batchnorm_only_on_cuda():
    from vgzoo.train.distributed import LossCall, convert_sync_batchnorm

    logs = []
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    assert convert_sync_batchnorm(net, torch.device("cpu"), logs.append) is net
    assert isinstance(net[1], nn.BatchNorm2d) and "CUDA only" in logs[0]

    class M(nn.Module):
        def generator_loss(self, batch):
            return batch["x"] * 2, {}

    assert LossCall(M())("generator_loss", {"x": 3}) == (6, {})


def test_nproc_relaunches_under_torchrun(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from vgzoo.cli import cli
    from vgzoo.train import distributed

    seen = {}

    def fake_launch(nproc, argv):
        seen.update(nproc=nproc, argv=argv)
        return 0

    monkeypatch.setattr(distributed, "launch_torchrun", fake_launch)
    result = CliRunner().invoke(cli, ["train", "cgan_embed_digits", "--data", "builtin:digits", "--out",
                                      str(tmp_path), "--steps", "3", "--nproc", "2", "-k", "ngf=8", "--resume"])
    assert result.exit_code == 0, result.output
    assert seen["nproc"] == 2
    argv = seen["argv"]
    assert argv[:2] == ["train", "cgan_embed_digits"] and "--resume" in argv
    # no --nproc for the child: torchrun's own parser would take it for --nproc-per-node and refuse it
    assert "--nproc" not in argv and argv[argv.index("-k") + 1] == "ngf=8"


if __name__ == "__main__":
    _worker(sys.argv[1])
