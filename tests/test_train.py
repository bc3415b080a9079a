"""Tests of vgzoo.train: recipes for every task, run-directory outputs, resume semantics, the CLI command.

The tiny models here (also imported by test_checkpoint, test_monitor and test_distributed) subclass the protocols of
vgzoo.protocols (docs/architecture.md) without being registered, so the engine is tested as a plugin would use it.
"""

from __future__ import annotations

import json
import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from vgzoo.losses import ImagePool, discriminator_adversarial_loss, generator_adversarial_loss
from vgzoo.protocols import ConditionalSampler, GANModel, Translator
from vgzoo.tasks import TASK_NAMES as TASKS
from vgzoo.train import RECIPES, TrainingError, fit, recipe_for

SIDE = 8


class TinyCondD(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.net = nn.Sequential(nn.Linear(SIDE * SIDE + num_classes, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))

    def forward(self, x, labels):
        return self.net(torch.cat([x.flatten(1), F.one_hot(labels, self.num_classes).float()], 1))


class TinyCGAN(GANModel, ConditionalSampler):
    """A class-conditional MLP GAN on 1x8x8 images with an image pool (so the pool is training state)."""

    def __init__(self, nz: int = 8, num_classes: int = 4, pool_size: int = 6, nan_at: int | None = None) -> None:
        super().__init__()
        self.nz, self.num_classes = nz, num_classes
        d = SIDE * SIDE
        self.generator = nn.Sequential(nn.Linear(nz + num_classes, 32), nn.ReLU(), nn.Linear(32, d), nn.Tanh())
        self.discriminator = TinyCondD(num_classes)
        self.pool = ImagePool(pool_size)
        self.nan_at, self.calls = nan_at, 0
        self.pretrained_cfg = {"task": "conditional_generation", "input_size": (1, SIDE, SIDE), "mean": (0.5,),
                               "std": (0.5,), "num_classes": num_classes, "architecture": "tiny_cgan"}

    def _g(self, z, labels):
        y = F.one_hot(labels, self.num_classes).float()
        return self.generator(torch.cat([z, y], 1)).view(-1, 1, SIDE, SIDE)

    def _d(self, x, labels):
        return self.discriminator(x, labels)

    def sample_z(self, batch_size, generator=None):
        return torch.rand(batch_size, self.nz, generator=generator) * 2 - 1

    def sample(self, labels, generator=None):
        labels = torch.as_tensor(labels)
        return self._g(self.sample_z(labels.shape[0], generator), labels)

    def generators(self):
        return {"generator": self.generator}

    def discriminators(self):
        return {"discriminator": self.discriminator}

    def forward(self, z, labels):
        return self._g(z, labels)

    def example_inputs(self, batch_size=2):
        return torch.zeros(batch_size, self.nz), torch.arange(batch_size) % self.num_classes

    def example_batch(self, batch_size=2):
        return {"image": torch.zeros(batch_size, 1, SIDE, SIDE), "label": torch.arange(batch_size) % self.num_classes}

    def generator_loss(self, batch):
        fake = self._g(torch.rand(batch["label"].shape[0], self.nz) * 2 - 1, batch["label"])
        loss = generator_adversarial_loss(self._d(fake, batch["label"]), "vanilla")
        return loss, {"g_adv": float(loss.detach())}

    def discriminator_loss(self, batch):
        self.calls += 1
        with torch.no_grad():
            fake = self._g(torch.rand(batch["label"].shape[0], self.nz) * 2 - 1, batch["label"])
        fake = self.pool.query(fake)
        loss = discriminator_adversarial_loss(self._d(batch["image"], batch["label"]), self._d(fake, batch["label"]),
                                              "vanilla")
        if self.nan_at is not None and self.calls >= self.nan_at:
            loss = loss * float("nan")
        return loss, {"d_adv": float(loss.detach())}


class TinyClassifier(nn.Module):
    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(SIDE * SIDE, 32), nn.GELU(), nn.Linear(32, num_classes))
        self.pretrained_cfg = {"task": "classification", "input_size": (1, SIDE, SIDE), "mean": (0.5,),
                               "std": (0.5,), "num_classes": num_classes, "architecture": "tiny_cls"}

    def forward(self, x):
        return self.net(x)


class TinyPix2Pix(GANModel, Translator):
    """A paired translator: A -> B with a conv generator and a conv critic on concat(A, B)."""

    def __init__(self) -> None:
        super().__init__()
        self.generator = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1),
                                       nn.Tanh())
        self.discriminator = nn.Sequential(nn.Conv2d(2, 8, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                                           nn.Conv2d(8, 1, 3, padding=1))
        self.pretrained_cfg = {"task": "paired_translation", "input_size": (1, SIDE, SIDE), "mean": (0.5,),
                               "std": (0.5,), "load_size": SIDE, "crop_size": SIDE, "architecture": "tiny_p2p"}

    def forward(self, a):
        return self.generator(a)

    def example_inputs(self, batch_size=2):
        return (torch.zeros(batch_size, 1, SIDE, SIDE),)

    def example_batch(self, batch_size=2):
        return {"A": torch.zeros(batch_size, 1, SIDE, SIDE), "B": torch.zeros(batch_size, 1, SIDE, SIDE)}

    def inference_generator(self, direction="AtoB"):
        return self.generator

    def generators(self):
        return {"generator": self.generator}

    def discriminators(self):
        return {"discriminator": self.discriminator}

    def generator_loss(self, batch):
        fake = self.generator(batch["A"])
        adv = generator_adversarial_loss(self.discriminator(torch.cat([batch["A"], fake], 1)), "vanilla")
        l1 = F.l1_loss(fake, batch["B"])
        return adv + 10 * l1, {"G_GAN": float(adv.detach()), "G_L1": float(l1.detach())}

    def discriminator_loss(self, batch):
        fake = self.generator(batch["A"]).detach()
        real_logits = self.discriminator(torch.cat([batch["A"], batch["B"]], 1))
        fake_logits = self.discriminator(torch.cat([batch["A"], fake], 1))
        loss = discriminator_adversarial_loss(real_logits, fake_logits, "vanilla")
        return loss, {"D_adv": float(loss.detach())}


class Blobs(Dataset):
    """Labelled 1x8x8 images in [0, 1]: class c lights row band c, with noise."""

    def __init__(self, n: int = 48, num_classes: int = 4, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % num_classes
        x = torch.rand(n, 1, SIDE, SIDE, generator=g) * 0.3
        for i, c in enumerate(self.labels.tolist()):
            x[i, 0, 2 * c : 2 * c + 2] += 0.6
        self.images = x.clamp(0, 1)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"image": self.images[i], "label": self.labels[i]}


class Pairs(Dataset):
    def __init__(self, n: int = 16) -> None:
        self.blobs = Blobs(n)

    def __len__(self):
        return len(self.blobs)

    def __getitem__(self, i):
        a = self.blobs[i]["image"]
        return {"A": a, "B": 1.0 - a}


def state_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def rows(run_dir, split="train"):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["split"] == split]


# ------------------------------------------------------------------------------------------- tests
def test_every_task_has_a_recipe():
    assert set(RECIPES) == set(TASKS)
    assert recipe_for("unpaired_translation").option_defaults["order"] == "GD"  # CycleGAN: G then D
    assert recipe_for("paired_translation").option_defaults["order"] == "DG"  # pix2pix: D then G
    with pytest.raises(ValueError, match="known tasks"):
        recipe_for("segmentation")


def test_cgan_run_writes_what_the_user_sees(tmp_path):
    torch.manual_seed(0)
    out = tmp_path / "run"
    res = fit(TinyCGAN(), Blobs(), out, epochs=2, batch_size=8, progress=False)
    assert res.finished and res.step == 12 and res.total_steps == 12
    train = rows(out)
    assert [r["step"] for r in train] == list(range(1, 13))
    assert {"D_loss", "G_loss", "G_grad_norm", "d_adv", "g_adv", "lr"} <= set(train[0])
    val = rows(out, "val")
    assert [r["step"] for r in val] == [6, 12] and all("diversity_ratio" in r for r in val)
    for name in ("loss_curves.png", "health.json", "config.json", "samples/epoch_0001.png", "samples/final.png"):
        assert (out / name).is_file(), name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["task"] == "conditional_generation" and cfg["recipe"] == "ConditionalGANRecipe"
    assert cfg["batch_size"] == 8 and cfg["lr"] == 2e-4 and cfg["total_steps"] == 12
    assert json.loads((out / "health.json").read_text())["status"] in ("healthy", "warning")
    assert (out / "checkpoints" / "latest").read_text().strip() == "step_12"


def test_save_epochs_sets_the_epoch_end_checkpoints(tmp_path):
    """Six steps an epoch: every epoch by default, every second with save_epochs=2, none at epoch ends with 0 (the
    end of the run and save_every still checkpoint)."""
    def saved(name, **options):
        torch.manual_seed(0)
        fit(TinyCGAN(), Blobs(), tmp_path / name, epochs=4, batch_size=8, progress=False,
            options={"keep_last": 10, **options})
        return sorted(int(p.name[5:]) for p in (tmp_path / name / "checkpoints").glob("step_*"))

    assert saved("every") == [6, 12, 18, 24]
    assert saved("second", save_epochs=2) == [12, 24]
    assert saved("none", save_epochs=0) == [24]
    assert saved("steps", save_epochs=0, save_every=4) == [4, 8, 12, 16, 20, 24]  # 12 ends an epoch, saved there


def test_classification_recipe_learns_and_keeps_best(tmp_path):
    torch.manual_seed(0)
    out = tmp_path / "cls"
    opts = {"mixup": False, "cutmix": False, "warmup_epochs": 1,
            "augment": {"hflip": 0.0, "scale": (0.9, 1.0), "color_jitter": 0.0, "re_prob": 0.0}}
    res = fit(TinyClassifier(), Blobs(64), out, epochs=6, batch_size=16, lr=3e-3, options=opts,
              val_data=Blobs(32, seed=1), progress=False)
    val = rows(out, "val")
    assert len(val) == 6 and val[-1]["top1"] >= 90.0
    lrs = [r["lr"] for r in rows(out)]
    assert lrs[0] < lrs[3] and lrs[-1] < max(lrs)  # warm-up, then cosine decay
    best = (out / "checkpoints" / "best").read_text().strip()
    assert (out / "checkpoints" / best / "model.safetensors").is_file()
    assert res.metrics["top1"] == val[-1]["top1"]


def test_pix2pix_recipe_pretrains_l1_then_adversarial(tmp_path):
    torch.manual_seed(0)
    out = tmp_path / "p2p"
    fit(TinyPix2Pix(), Pairs(16), out, steps=8, batch_size=4, options={"pretrain_l1_steps": 3},
        val_data=Pairs(8), progress=False)
    train = rows(out)
    assert all("G_L1_pretrain" in r and "D_loss" not in r for r in train[:3])
    assert all("D_loss" in r and "G_L1" in r for r in train[3:])
    lrs = [r["lr"] for r in train]
    assert lrs[0] == lrs[3] == 2e-4 and lrs[-1] < lrs[4]  # constant, then linear decay
    val = rows(out, "val")
    assert {"val_l1", "val_psnr", "val_ssim"} <= set(val[-1])
    assert (out / "samples" / "final.png").is_file()


def test_resume_with_larger_steps_trains_the_difference(tmp_path):
    out = tmp_path / "r"
    torch.manual_seed(0)
    first = fit(TinyCGAN(), Blobs(), out, steps=4, batch_size=8, progress=False)
    assert first.step == 4
    second = fit(TinyCGAN(), Blobs(), out, steps=9, resume=True, progress=False)
    assert second.step == 9 and [r["step"] for r in rows(out)] == list(range(1, 10))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["batch_size"] == 8  # taken from the resumed run


def test_errors_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="unknown option"):
        fit(TinyCGAN(), Blobs(), tmp_path / "a", steps=1, batch_size=8, options={"lr_polcy": "x"}, progress=False)
    with pytest.raises(TrainingError, match="fewer than one batch"):
        fit(TinyCGAN(), Blobs(4), tmp_path / "b", steps=1, batch_size=8, progress=False)
    with pytest.raises(TrainingError, match="no complete checkpoint"):
        fit(TinyCGAN(), Blobs(), tmp_path / "c", steps=1, batch_size=8, resume=True, progress=False)
    with pytest.raises(TypeError, match="generator_loss"):
        model = TinyClassifier()
        model.pretrained_cfg["task"] = "generation"
        fit(model, Blobs(), tmp_path / "d", steps=1, batch_size=8, progress=False)


def test_diffaugment_and_ema_options(tmp_path):
    torch.manual_seed(0)
    out = tmp_path / "da"
    res = fit(TinyCGAN(), Blobs(), out, steps=4, batch_size=8, progress=False,
              options={"diffaugment": "translation,cutout", "ema": True, "ema_decay": 0.5})
    assert (res.checkpoint / "ema.safetensors").is_file()
    from vgzoo._hub import load_state_dict

    ema = load_state_dict(res.checkpoint / "ema.safetensors")
    assert set(ema) == set(res.model.state_dict())
    assert not torch.equal(ema["generator.0.weight"], res.model.state_dict()["generator.0.weight"])


def test_ema_start_copies_the_weights_until_then_and_averages_after(tmp_path):
    """-o ema_start=N: the average is the weights themselves through step N, then decay * avg + (1 - decay) * w."""
    from vgzoo._hub import load_state_dict
    from vgzoo.train.callbacks import Callback

    class Weights(Callback):
        def __init__(self):
            self.seen = []

        def on_step(self, run, st):
            self.seen.append({k: v.detach().clone() for k, v in st.model.state_dict().items()})

    key, results = "generator.0.weight", {}
    for start in (2, 4):
        torch.manual_seed(0)
        weights = Weights()
        res = fit(TinyCGAN(), Blobs(), tmp_path / f"s{start}", steps=4, batch_size=8, progress=False,
                  options={"ema": True, "ema_decay": 0.5, "ema_start": start}, callbacks=[weights])
        results[start] = load_state_dict(res.checkpoint / "ema.safetensors")[key], [w[key] for w in weights.seen]
    ema, seen = results[4]
    assert torch.equal(ema, seen[-1])  # averaging never started: the last weights
    ema, seen = results[2]
    expected = seen[1]  # a copy at step 2, then two averaging steps
    for w in seen[2:]:
        expected = 0.5 * expected + 0.5 * w
    torch.testing.assert_close(ema, expected)
    assert not torch.equal(ema, seen[-1])


def _registered(name):
    import vgzoo

    return name in vgzoo.list_models()


@pytest.mark.parametrize("name,kwargs", [
    ("cgan_embed_digits", {"nz": 8, "ngf": 8, "ndf": 8}),
    ("gan_vanilla", None),
    ("restoration_unet", None),
])
def test_registered_models_train_through_the_cli(tmp_path, name, kwargs):
    """Built-in and plugin models of every GAN task train unchanged with `vgzoo train` on builtin:digits."""
    if not _registered(name):
        pytest.skip(f"{name} is not installed")
    from click.testing import CliRunner

    import vgzoo
    from vgzoo.cli import cli

    kwargs = kwargs if kwargs is not None else vgzoo.model_info(name).test_kwargs
    args = ["train", name, "--data", "builtin:digits", "--out", str(tmp_path / name), "--steps", "2",
            "--batch-size", "8", "--seed", "3"]
    for k, v in kwargs.items():
        args += ["-k", f"{k}={json.dumps(v)}"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / name / "checkpoints" / "step_2" / "model.safetensors").is_file()
    assert len(rows(tmp_path / name)) == 2
    model = vgzoo.create(f"local-dir:{tmp_path / name / 'final'}")
    assert model.pretrained_cfg["architecture"] == name


def test_seeded_runs_are_reproducible(tmp_path):
    torch.manual_seed(1)
    random.seed(1)
    one = {"threads": 1}  # the same thread count in both runs (bitwise equality across runs needs it)
    a = fit(TinyCGAN(), Blobs(), tmp_path / "a", steps=3, batch_size=8, seed=5, options=one, progress=False).model
    torch.manual_seed(1)
    b = fit(TinyCGAN(), Blobs(), tmp_path / "b", steps=3, batch_size=8, seed=5, options=one, progress=False).model
    assert state_equal(a, b)


def test_thread_count_is_fixed_for_the_machine_unless_load_based_is_asked_for(tmp_path, monkeypatch):
    from vgzoo.train import policy
    from vgzoo.train.distributed import DistInfo

    cpu, single = torch.device("cpu"), DistInfo()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setattr(policy, "usable_cores", lambda: 2)
        monkeypatch.setattr(policy, "load_average", lambda: 3.5)  # the cores are busy with other jobs
        assert policy.resolve_threads("cores", cpu, single)[0] == 2  # the default ignores the load
        assert policy.resolve_threads("auto", cpu, single)[0] == 1  # load-based, on request
        monkeypatch.setattr(policy, "load_average", lambda: 0.0)
        assert policy.resolve_threads("auto", cpu, single)[0] == 2
        assert policy.resolve_threads("cores", cpu, DistInfo(rank=0, world_size=2))[0] is None  # torchrun's setting
        assert policy.resolve_threads(3, cpu, single) == (3, "") and policy.resolve_threads("2", cpu, single)[0] == 2
        assert policy.resolve_threads(1, torch.device("cuda"), single)[0] is None
        for bad in (0, -1, 1.5, "many"):
            with pytest.raises(ValueError, match="positive integer"):
                policy.resolve_threads(bad, cpu, single)

        monkeypatch.setattr(policy, "load_average", lambda: 3.5)
        runs = {}
        for name, options in (("default", {}), ("busy", {}), ("set", {"threads": 1}), ("auto", {"threads": "auto"})):
            seen = []
            out = tmp_path / name
            torch.manual_seed(0)
            fit(TinyCGAN(), Blobs(), out, steps=2, batch_size=8, progress=False, seed=0, options=options,
                log=lambda msg, seen=seen: seen.append((msg, torch.get_num_threads())))
            assert torch.get_num_threads() == 2  # the process's setting comes back after the run
            runs[name] = (seen, json.loads((out / "config.json").read_text())["options"]["threads"], out)
            monkeypatch.setattr(policy, "load_average", lambda: 0.2)  # the next runs see another load
        assert runs["default"][1] == runs["busy"][1] == 2  # the same count whatever the load
        assert not any("load average" in msg for msg, _ in runs["default"][0] + runs["set"][0])
        assert runs["set"][1] == 1
        assert any("load average" in msg for msg, _ in runs["auto"][0])
        from safetensors.torch import load_file

        a = load_file(str(runs["default"][2] / "final" / "model.safetensors"))
        b = load_file(str(runs["busy"][2] / "final" / "model.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bitwise, under another load
        fit(TinyCGAN(), Blobs(), runs["set"][2], steps=3, resume=True, progress=False)
        assert json.loads((runs["set"][2] / "config.json").read_text())["options"]["threads"] == 1  # reused
    finally:
        torch.set_num_threads(before)


def test_shipped_cgan_digits_weights_generate_the_asked_classes():
    """The weights trained by benchmarks/train_e2e.py cgan ship with the package and meet the issue's target."""
    import vgzoo
    from vgzoo.quality import score_generator

    model = vgzoo.create("cgan_embed_digits", pretrained=True)  # offline: a file inside the package
    assert model.pretrained_cfg["weight_source"].startswith("file:")
    score = score_generator(model, per_class=8, seed=1)
    assert score.accuracy >= 0.9, score
    assert score.diversity_ratio >= 0.5, score
