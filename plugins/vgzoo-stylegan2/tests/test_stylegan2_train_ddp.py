"""StyleGAN2 + ADA under DDP: 2 gloo processes on CPU under torchrun keep G, D, G_ema and ADA's p identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("vgzoo_stylegan2.training")


def _worker(out: str) -> None:
    """Run by each torchrun process: a few DDP steps of stylegan2_tiny on the digits, then what each rank holds."""
    from vgzoo.train import fit
    from vgzoo.train.callbacks import Callback

    held = {}

    class Hold(Callback):
        def on_train_end(self, run, st):
            held["params"] = {k: float(v.double().sum()) for k, v in st.model.named_parameters()}
            held["p"], held["rt"] = float(st.recipe.augment_pipe.p), float(st.recipe.ada.rt)

    fit("stylegan2_tiny", "builtin:digits", out, steps=8, batch_size=4, seed=0, progress=False,
        model_kwargs={"img_channels": 1}, options={"ada_kimg": 0.1}, callbacks=[Hold()], log=lambda m: None)
    Path(out, f"rank{os.environ['RANK']}.json").write_text(json.dumps(held))


def test_two_processes_keep_the_replicas_and_p_identical(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__, str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0 == r1  # the gradients were averaged (each rank saw other reals) and r_t summed over both ranks
    config = json.loads((out / "config.json").read_text())
    assert config["world_size"] == 2 and config["recipe"] == "StyleGAN2Recipe"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "train"] == list(range(1, 9))
    assert torch.isfinite(torch.tensor(list(r0["params"].values()))).all()


if __name__ == "__main__":
    _worker(sys.argv[1])
