"""BigGAN's losses by hand, and its recipe through vgzoo's trainer on the built-in digits (a few CPU steps)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from vgzoo_biggan.model import TINY, BigGAN

import vgzoo
import vgzoo.testing

DIGITS = dict(img_size=16, in_chans=1, num_classes=10, z_dim=8, class_embed_dim=8, channel_width=4,
              layers=[[False, 4, 4], [True, 4, 2], [True, 2, 1]], attention_position=1, d_channel_width=4,
              d_layers=[[True, 1], [True, 2], [False, 2]])


def test_conformance():
    vgzoo.testing.check_model("biggan")


def test_orthogonal_penalty_by_hand():
    model = BigGAN(**TINY)
    # ||W W^T * (1 - I)||_F^2 = ||W W^T||_F^2 - sum_i ||w_i||^4, over every generator weight but the embedding
    expected = 0.0
    for name, p in model.generator.named_parameters():
        if p.ndim >= 2 and not name.startswith("class_embed"):
            w = p.detach().double().flatten(1)
            expected += float((w @ w.t()).pow(2).sum() - w.pow(2).sum(1).pow(2).sum())
    assert float(model.orthogonal_penalty().detach()) == pytest.approx(expected, rel=1e-4)
    # one 2 x 3 weight: rows (1, 0, 0) and (1, 1, 0) have dot product 1, counted twice
    for p in model.generator.parameters():
        p.data.zero_()
    model.generator.project.parametrizations.weight.original.data[:2, :3] = torch.tensor([[1.0, 0, 0], [1, 1, 0]])
    assert float(model.orthogonal_penalty().detach()) == pytest.approx(2.0)


def test_hinge_and_orthogonal_terms_of_the_losses_by_hand():
    model = BigGAN(**TINY).eval()  # the spectral norms keep their vectors: every forward sees the same weights
    for m in model.generator.modules():
        if hasattr(m, "running_means"):
            m.training = True  # the generator's batch norms on batch statistics, as in training
    batch = model.example_batch(4)
    labels = batch["label"]

    torch.manual_seed(3)
    loss, logs = model.discriminator_loss(batch)
    torch.manual_seed(3)
    z = torch.randn(4, TINY["z_dim"])
    with torch.no_grad():
        fake = model.generator(z, labels, 1.0)
    real_logits, fake_logits = model.discriminator(batch["image"], labels), model.discriminator(fake, labels)
    hinge = sum(max(0.0, 1 - float(r)) for r in real_logits.detach()) / 4 + sum(
        max(0.0, 1 + float(f)) for f in fake_logits.detach()) / 4
    assert float(loss) == pytest.approx(hinge, rel=1e-5)
    assert float(logs["D_real"]) + float(logs["D_fake"]) == pytest.approx(hinge, rel=1e-5)

    torch.manual_seed(4)
    loss, logs = model.generator_loss(batch)
    torch.manual_seed(4)
    z = torch.randn(4, TINY["z_dim"])
    adv = -float(model.discriminator(model.generator(z, labels, 1.0), labels).mean())
    assert float(logs["G_adv"]) == pytest.approx(adv, rel=1e-5)
    assert float(loss) == pytest.approx(adv + 1e-4 * float(model.orthogonal_penalty().detach()), rel=1e-5)
    assert float(logs["G_ortho"]) == pytest.approx(float(model.orthogonal_penalty().detach()), rel=1e-5)


def test_standing_statistics_fill_all_51_rows():
    model = BigGAN(**TINY)
    norms = [m for m in model.generator.modules() if hasattr(m, "running_means")]
    model.standing_statistics(batches=2, batch_size=8)
    for m in norms:
        assert m.running_means.shape[0] == 51
        assert not torch.equal(m.running_means[10], m.running_means[50])  # each row its own truncation
        assert (m.running_vars > 0).all()
    # row 50 (truncation 1) is the mean of the batch statistics of samples at truncation 1, by hand
    g = torch.Generator().manual_seed(0)
    for row in range(51):  # the same draws in the same order as standing_statistics
        draws = []
        for _ in range(2):
            z = torch.nn.init.trunc_normal_(torch.empty(8, TINY["z_dim"]), 0.0, 1.0, -2.0, 2.0, generator=g)
            draws.append((z * row / 50, torch.randint(TINY["num_classes"], (8,), generator=g)))
    stats = []
    handle = model.generator.final_norm.register_forward_pre_hook(lambda m, a: stats.append(a[0].detach()))
    model.generator.eval()
    for m in norms:  # batch statistics in the norms, the spectral norms' vectors untouched
        m.training = True
    with torch.no_grad():
        for z, y in draws:
            model.generator(z, y, 1.0)
    handle.remove()
    mean = torch.stack([x.mean((0, 2, 3)) for x in stats]).mean(0)
    var = torch.stack([x.var((0, 2, 3), unbiased=False) for x in stats]).mean(0)
    assert torch.allclose(model.generator.final_norm.running_means[50], mean, atol=1e-5)
    assert torch.allclose(model.generator.final_norm.running_vars[50], var, atol=1e-5)


def _fit(out, steps, options=None, **kwargs):
    from vgzoo.train import fit

    return fit("biggan", "builtin:digits", out, steps=steps, batch_size=8, device="cpu", progress=False,
               log=lambda message: None, model_kwargs=DIGITS, options={"standing_batches": 1, **(options or {})},
               **kwargs)


@pytest.mark.slow
def test_recipe_trains_resumes_bitwise_and_saves_standing_statistics(tmp_path):
    once = _fit(tmp_path / "once", 4, options={"ema": True, "ema_start": 2})  # copied to step 2, averaged after
    assert once.step == 4 and once.health != "failed"
    rows = [json.loads(line) for line in (tmp_path / "once" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r.get("split") == "train"]
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    for r in train:
        assert {"G_adv", "G_ortho", "D_real", "D_fake", "G_loss", "D_loss"} <= set(r)
        assert all(math.isfinite(r[k]) for k in ("G_loss", "D_loss", "G_ortho"))
    config = json.loads((tmp_path / "once" / "config.json").read_text())
    assert config["recipe"] == "BigGANRecipe"
    assert config["recipe_options"]["beta1"] == 0.0 and config["recipe_options"]["d_lr_mult"] == 4.0
    assert config["recipe_options"]["d_steps"] == 2

    # the class-by-seed grid: a row per class, a column per seed
    grid = Image.open(tmp_path / "once" / "samples" / "final.png")
    assert json.loads(grid.text["row_labels"]) == [f"class {c}" for c in range(10)]
    assert json.loads(grid.text["headers"]) == [f"seed {s}" for s in range(8)]

    # final/ and final_ema/ hold standing statistics for all 51 truncation values, from their own weights
    for folder in ("final", "final_ema"):
        model = vgzoo.create(f"local-dir:{tmp_path / 'once' / folder}")
        saved = {k: v.clone() for k, v in model.state_dict().items() if "running_" in k}
        assert saved and all(v.shape[0] == 51 for v in saved.values())
        assert all(not torch.equal(v[0], v[50]) for v in saved.values())
        model.standing_statistics(batches=1, batch_size=8)
        for k, v in model.state_dict().items():
            if "running_" in k:
                assert torch.allclose(v, saved[k], atol=1e-5), k

    # 2 steps, then resumed to 4: the same weights and statistics, bitwise (the EMA on by the recipe's default)
    _fit(tmp_path / "twice", 2, options={"ema_start": 2})
    _fit(tmp_path / "twice", 4, resume=True)
    for folder in ("final", "final_ema"):
        a = load_file(tmp_path / "once" / folder / "model.safetensors")
        b = load_file(tmp_path / "twice" / folder / "model.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), folder


def test_d_steps_take_their_own_slices_of_the_batch():
    from vgzoo_biggan.recipe import _slice

    batch = {"image": torch.arange(8.0), "label": torch.arange(8)}
    assert [s["label"].tolist() for s in (_slice(batch, 0, 2), _slice(batch, 1, 2))] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert [len(_slice(batch, i, 3)["label"]) for i in range(3)] == [2, 2, 4]


def test_a_bad_d_steps_is_refused(tmp_path):
    with pytest.raises(ValueError, match="d_steps"):
        _fit(tmp_path / "bad", 1, options={"d_steps": 0})



def test_the_recipe_keeps_a_g_ema_by_default_and_an_explicit_option_wins(tmp_path):
    from vgzoo_biggan.recipe import BigGANRecipe

    assert BigGANRecipe.engine_defaults == {"ema": True, "ema_start": 1000, "save_every": 2000, "save_epochs": 0}
    _fit(tmp_path / "default", 1)
    config = json.loads((tmp_path / "default" / "config.json").read_text())
    assert config["options"]["ema"] is True  # recorded with the run, so a resume keeps it
    assert config["options"]["ema_start"] == 1000
    # checkpoints (each with standing statistics) every 2000 steps and at the end, not at each short epoch's end
    assert config["options"]["save_every"] == 2000 and config["options"]["save_epochs"] == 0
    default_ema = load_file(tmp_path / "default" / "final_ema" / "model.safetensors")
    assert default_ema.keys() == load_file(tmp_path / "default" / "final" / "model.safetensors").keys()
    _fit(tmp_path / "off", 1, options={"ema": False})
    assert json.loads((tmp_path / "off" / "config.json").read_text())["options"]["ema"] is False
    assert (tmp_path / "off" / "final").is_dir() and not (tmp_path / "off" / "final_ema").exists()
