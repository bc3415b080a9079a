"""Issue 18, trainer side, checked on the CPU: what keeps a GPU busy must not change what a run computes.

One DataLoader per run (workers started once, epochs followed inside them), the step's logs left on the device and
read back every ``log_every`` steps, labels checked on the host. The CUDA halves (no host sync inside a step) are
in tests/test_cuda.py.
"""

from __future__ import annotations

import sys

import pytest
import torch
from test_train import Blobs, TinyCGAN, rows, state_equal
from test_train_runs import FAMILIES
from torch.utils.data import Dataset

from vgzoo.layers import label_values_checked, validate_labels
from vgzoo.train import TrainingError, engine, fit, policy
from vgzoo.train import checkpoint as ckpt
from vgzoo.train.callbacks import Callback

QUIET = {"progress": False, "log": lambda msg: None}
SMALL_CGAN = {"nz": 8, "ngf": 8, "ndf": 8}


def _cgan(out, steps, **options):
    return fit("cgan_embed_digits", "builtin:digits", out, steps=steps, batch_size=64, seed=2, device="cpu",
               model_kwargs=SMALL_CGAN, options={"threads": 1, **options}, **QUIET)


class _Flushes(Callback):
    """The steps of the rows handed over at each read-back (rows read together arrive at one ``st.step``)."""

    def __init__(self) -> None:
        self.at: dict[int, list[int]] = {}

    def on_log(self, run, st, row):
        self.at.setdefault(st.step, []).append(row["step"])

    @property
    def batches(self) -> list[list[int]]:
        return list(self.at.values())


# ----------------------------------------------------------------------------------------- log_every
def test_reading_logs_back_every_n_steps_changes_no_number(tmp_path):
    # builtin:digits at batch 64: 22 steps an epoch, so the run crosses an epoch end and a save_every checkpoint
    each = _cgan(tmp_path / "each", 30, save_every=10)
    flushes = _Flushes()
    batched = fit("cgan_embed_digits", "builtin:digits", tmp_path / "batched", steps=30, batch_size=64, seed=2,
                  device="cpu", model_kwargs=SMALL_CGAN, options={"threads": 1, "save_every": 10, "log_every": 8},
                  callbacks=[flushes], **QUIET)
    assert rows(tmp_path / "each") == rows(tmp_path / "batched")
    assert rows(tmp_path / "each", "val") == rows(tmp_path / "batched", "val")
    assert state_equal(each.model, batched.model)
    # every 8 steps, and before the checkpoints at 10 and 20, the epoch end at 22 and the run's end
    assert flushes.batches == [list(range(1, 9)), [9, 10], list(range(11, 17)), [17, 18, 19, 20], [21, 22],
                               [23, 24], list(range(25, 31))]
    assert all(isinstance(v, float) for r in rows(tmp_path / "batched") for k, v in r.items()
               if k not in ("step", "epoch", "split"))


def test_a_nan_is_caught_before_the_next_checkpoint_when_logs_wait(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match="diverged at step 5"):
        fit(TinyCGAN(nan_at=5), Blobs(), out, steps=12, batch_size=8, device="cpu",
            options={"save_every": 3, "log_every": 10, "threads": 1}, **QUIET)
    assert ckpt.latest_checkpoint(out).name == "step_3"  # step 6's checkpoint read the NaN of step 5 first
    assert [r["step"] for r in rows(out)][:4] == [1, 2, 3, 4]


def test_options_num_workers_and_log_every_refuse_bad_values(tmp_path):
    for bad in ({"num_workers": -1}, {"log_every": 0}, {"num_workers": "many"}):
        with pytest.raises(ValueError, match=f"option {next(iter(bad))}="):
            fit(TinyCGAN(), Blobs(), tmp_path / "x", steps=1, batch_size=8, device="cpu", options=bad, **QUIET)


def test_auto_settings_follow_the_device_and_the_data():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU
    folder = Blobs()
    assert policy.resolve_log_every("auto", cpu) == 1 and policy.resolve_log_every("auto", gpu) > 1
    assert policy.resolve_workers("auto", cpu, folder) == 0
    assert policy.resolve_workers("auto", gpu, folder) >= 1
    from vgzoo.data.digits import DigitsDataset

    assert policy.resolve_workers("auto", gpu, DigitsDataset.__new__(DigitsDataset)) == 0  # in memory
    assert policy.resolve_workers(3, cpu, folder) == 3


# --------------------------------------------------------------------------------- reads in a step
_READS = ("item", "tolist", "__float__", "__int__", "__bool__")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_training_step_reads_no_value_back(tmp_path, monkeypatch, name):
    # every read of a tensor's value (float(loss), .item(), `if tensor:`) makes the host wait for a GPU
    import vgzoo
    from vgzoo.train.recipes import Recipe

    if name not in vgzoo.list_models():
        pytest.skip(f"{name} is not installed")
    kwargs, data, batch, _ = FAMILIES[name]
    inside, reads = [False], []
    for method in _READS:
        original = getattr(torch.Tensor, method)

        def counted(self, *a, _m=method, _original=original, **kw):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if inside[0] and not caller.startswith("torch."):  # torch keeps e.g. Adam's step counts on the CPU
                reads.append(f"{_m} in {caller}")
            return _original(self, *a, **kw)

        monkeypatch.setattr(torch.Tensor, method, counted)
    step = Recipe.train_step

    def watched(self, *a, **kw):
        inside[0] = True
        try:
            return step(self, *a, **kw)
        finally:
            inside[0] = False

    monkeypatch.setattr(Recipe, "train_step", watched)
    fit(name, data() if callable(data) else data, tmp_path / "run", steps=2, batch_size=batch, device="cpu",
        model_kwargs=kwargs, options={"threads": 1}, **QUIET)
    assert len(rows(tmp_path / "run")) == 2
    assert reads == []


def test_labels_are_checked_on_the_host_before_the_step(tmp_path):
    class BadLabels(Blobs):
        def __getitem__(self, i):
            item = super().__getitem__(i)
            return {**item, "label": torch.tensor(7 if i == 5 else int(item["label"]))}

    with pytest.raises(ValueError, match=r"the dataset's labels must lie in \[0, 4\).*\[7\]"):
        fit(TinyCGAN(), BadLabels(), tmp_path / "run", steps=8, batch_size=8, device="cpu", **QUIET)


def test_label_values_are_trusted_on_a_device_only_inside_the_block():
    on_device = torch.empty(4, dtype=torch.long, device="meta")  # a non-CPU tensor whose values cannot be read
    with label_values_checked():
        assert validate_labels(on_device, 10).device.type == "meta"
        with pytest.raises(ValueError, match="1-D"):  # what costs no read is still checked
            validate_labels(on_device.view(2, 2), 10)
        with pytest.raises(ValueError, match=r"\[12\]"):  # CPU labels are always checked
            validate_labels(torch.tensor([1, 12]), 10)
    with pytest.raises((RuntimeError, NotImplementedError)):  # outside it the values are read
        validate_labels(on_device, 10)


# ------------------------------------------------------------------------------------------- loader
class _Epochs(Dataset):
    """Items that say which epoch the loading process was told (a set_epoch dataset, like the unaligned one)."""

    def __init__(self, n: int = 10) -> None:
        self.n, self.epoch = n, 0

    def __len__(self):
        return self.n

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __getitem__(self, i):
        return {"epoch": torch.tensor(self.epoch), "index": torch.tensor(i)}


@pytest.mark.parametrize("workers", [0, 2])
def test_one_loader_runs_across_epochs_and_tells_each_item_its_epoch(workers):
    batches = engine._RunBatches(_Epochs(), 3, engine.ddp.DistInfo(), seed=4, num_workers=workers)
    assert batches.steps_per_epoch == 3
    got = [(b["epoch"].tolist(), b["index"].tolist()) for b in batches.loader(epoch=1, start=2, count=5)]
    want = [(e, i) for e in (1, 2, 3) for (e, i) in [([k[0] for k in b], [k[1] for k in b])
                                                   for b in batches.epoch_batches(e)]][2:7]
    assert got == want
    assert got[0][1] != got[1][1]  # epochs are shuffled differently


def test_workers_and_a_resume_inside_an_epoch_give_the_same_run(tmp_path):
    def run(out, steps, workers, **kw):
        torch.manual_seed(0)  # the same initial weights
        return fit(TinyCGAN(), Blobs(), tmp_path / out, steps=steps, batch_size=8, seed=1, device="cpu",
                   options={"threads": 1, "num_workers": workers}, **QUIET, **kw)

    plain = run("plain", 9, 0)
    run("workers", 4, 2)  # stops inside the first epoch (6 steps an epoch)
    resumed = run("workers", 9, 2, resume=True)
    assert state_equal(plain.model, resumed.model)
    assert rows(tmp_path / "plain") == rows(tmp_path / "workers")


def test_ctrl_c_reaches_the_workers_too_and_the_run_still_saves(tmp_path):
    # a terminal's Ctrl-C goes to the whole process group: workers must leave the stop to the main process
    import os
    import signal
    import subprocess

    from test_checkpoint import _wait_for
    from test_train_runs import CGAN_ARGS

    out = tmp_path / "run"
    env = {**os.environ, ckpt._SLOW_SAVE_ENV: "2:2", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vgzoo", "train", "cgan_embed_digits", "--out", str(out),
                             "--steps", "400", "-o", "save_every=2", "-o", "num_workers=2", *CGAN_ARGS],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    _wait_for(proc, "vgzoo-test: saving step 2")
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 130, output
    assert "interrupted by SIGINT" in output and "exited unexpectedly" not in output
    assert int(ckpt.latest_checkpoint(out).name.split("_")[1]) >= 2
