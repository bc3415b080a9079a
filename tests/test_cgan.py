"""Tests of the class-conditional GAN (Mirza & Osindero 2014) with learned label maps."""

from __future__ import annotations

import pytest
import torch

import vgzoo
import vgzoo.testing
from vgzoo.layers.label_map import LabelMap, validate_labels
from vgzoo.models.cgan import ConditionalGAN

TINY = {"nz": 8, "ngf": 8, "ndf": 8}


@pytest.fixture
def model() -> ConditionalGAN:
    torch.manual_seed(0)
    return vgzoo.create("cgan_embed_digits", **TINY)


def test_conformance_options():
    """The plain configurations are covered by tests/test_models.py; here the options."""
    vgzoo.testing.check_model("cgan_embed_digits", spectral_norm=True, gan_mode="hinge", latent="normal")


def test_registered_info():
    info = vgzoo.model_info("cgan_embed_digits")
    assert info.family == "cgan" and info.task == "conditional_generation"
    assert info.default_cfg["input_size"] == (1, 16, 16)
    assert info.default_cfg["file"] == "vgzoo:weights/cgan_embed_digits.safetensors"
    assert "Mirza" in info.paper
    assert vgzoo.model_info("cgan_embed").default_cfg["input_size"] == (3, 32, 32)
    for kw in ("img_size", "in_chans", "num_classes", "nz", "ngf", "ndf", "latent"):
        assert kw in info.default_kwargs


def test_architecture_shapes(model):
    g = model.generator
    assert g.project[0].in_features == 8 and g.project[0].out_features == 8 * 4 * 4
    assert g.label_map.embed.weight.shape == (10, 4 * 4)
    assert g.upsample[0].in_channels == 8 + 1  # label map as one extra channel
    assert model.discriminator.label_map.embed.weight.shape == (10, 16 * 16)
    assert model.discriminator.net[0].in_channels == 1 + 1
    assert isinstance(g.to_image[-1], torch.nn.Tanh)
    assert model.pretrained_cfg["mean"] == (0.5,) and model.pretrained_cfg["num_classes"] == 10


def test_label_map():
    lm = LabelMap(3, 4, 5)
    out = lm(torch.tensor([0, 2]))
    assert out.shape == (2, 1, 4, 5)
    assert torch.equal(out[1].flatten(), lm.embed.weight[2])
    x = torch.zeros(2, 7, 4, 5)
    assert lm.concat(x, torch.tensor([1, 1])).shape == (2, 8, 4, 5)


def test_forward_and_sample_range(model):
    model.eval()
    with torch.no_grad():
        x = model(*model.example_inputs(4))
        s = model.sample([0, 3, 9])
    assert x.shape == (4, 1, 16, 16) and s.shape == (3, 1, 16, 16)
    assert x.min() >= -1 and x.max() <= 1


def test_sample_reproducible_with_generator(model):
    model.eval()
    with torch.no_grad():
        a = model.sample(torch.tensor([1, 2]), generator=torch.Generator().manual_seed(5))
        b = model.sample(torch.tensor([1, 2]), generator=torch.Generator().manual_seed(5))
        c = model.sample(torch.tensor([1, 2]), generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("latent", ["uniform", "normal"])
def test_latent_distribution(latent):
    m = vgzoo.create("cgan_embed_digits", latent=latent, **TINY)
    z = m.sample_z(4000, torch.Generator().manual_seed(0))
    if latent == "uniform":
        assert z.min() >= -1 and z.max() <= 1
        torch.testing.assert_close(z.std(), torch.tensor(1 / 3**0.5), rtol=0.05, atol=0.0)
    else:
        assert z.min() < -2.5
        torch.testing.assert_close(z.std(), torch.tensor(1.0), rtol=0.05, atol=0.0)


def test_label_changes_output(model):
    model.eval()
    z = torch.zeros(2, 8).uniform_(-1, 1)
    z[1] = z[0]
    with torch.no_grad():
        out = model(z, torch.tensor([0, 1]))
    assert not torch.allclose(out[0], out[1])


@pytest.mark.parametrize(
    "labels, match",
    [
        (torch.tensor([0, 10]), r"\[0, 10\).*\[10\]"),
        (torch.tensor([-1, 3]), r"\[0, 10\).*\[-1\]"),
        (torch.tensor([0, 1, 2]), r"3 entries but the batch has 2"),
        (torch.tensor([0.0, 1.0]), r"torch.float32"),
        (torch.tensor([True, False]), r"torch.bool"),
        (torch.tensor([[0], [1]]), r"shape \(2, 1\)"),
    ],
)
def test_bad_labels_forward(model, labels, match, monkeypatch):
    calls = []
    monkeypatch.setattr(model.generator.project, "forward", lambda *a: calls.append(a))
    with pytest.raises(ValueError, match=match):
        model(torch.zeros(2, 8), labels)
    assert not calls, "the error must come before any layer runs"


def test_bad_labels_sample_and_discriminator(model):
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        model.sample([3, 12])
    with pytest.raises(ValueError, match="float"):
        model.sample(torch.tensor([1.5]))
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        model.discriminator(torch.zeros(2, 1, 16, 16), torch.tensor([0, 11]))
    with pytest.raises(ValueError, match="batch has 2"):
        model.discriminator(torch.zeros(2, 1, 16, 16), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"batch\['label'\]"):
        model.generator_loss({"image": torch.zeros(2, 1, 16, 16), "label": torch.tensor([0, 10])})


def test_bad_z_and_images(model):
    with pytest.raises(ValueError, match="nz=8"):
        model(torch.zeros(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"\(batch, 1, 16, 16\)"):
        model.discriminator(torch.zeros(2, 3, 16, 16), torch.tensor([0, 1]))


def test_bad_kwargs():
    with pytest.raises(ValueError, match="latent"):
        vgzoo.create("cgan_embed_digits", latent="gaussian")
    with pytest.raises(ValueError, match="gan_mode"):
        vgzoo.create("cgan_embed_digits", gan_mode="wgan")
    with pytest.raises(ValueError, match="img_size"):
        vgzoo.create("cgan_embed_digits", img_size=18)


def test_validate_labels_accepts_lists():
    assert validate_labels([1, 2], 3).dtype == torch.int64
    assert validate_labels(torch.tensor([0, 2], dtype=torch.uint8), 3).tolist() == [0, 2]


@pytest.mark.parametrize("gan_mode", ["vanilla", "hinge", "lsgan"])
def test_losses_and_logs(model, gan_mode):
    model.gan_mode = gan_mode
    batch = model.example_batch(4)
    g_loss, g_logs = model.generator_loss(batch)
    d_loss, d_logs = model.discriminator_loss(batch)
    assert g_loss.ndim == 0 and d_loss.ndim == 0
    assert set(g_logs) == {"G_adv", "G_fake_logit"}
    assert set(d_logs) == {"D_adv", "D_real_logit", "D_fake_logit"}
    # the discriminator loss must not push gradients into the generator
    model.zero_grad(set_to_none=True)
    d_loss.backward()
    assert all(p.grad is None for p in model.generator_parameters())


def test_few_steps_reduce_discriminator_loss():
    """A handful of D steps on a fixed batch must lower the D loss (the loss is wired the right way round)."""
    torch.manual_seed(0)
    m = vgzoo.create("cgan_embed_digits", **TINY)
    opt = torch.optim.Adam(m.discriminator_parameters(), lr=1e-2)
    batch = m.example_batch(8)
    first = None
    for _ in range(10):
        torch.manual_seed(1)  # same fakes every step
        loss, _ = m.discriminator_loss(batch)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.manual_seed(1)
    assert float(m.discriminator_loss(batch)[0].detach()) < first * 0.5


def test_pretrained_missing_is_clear():
    from pathlib import Path

    from vgzoo._hub import resolve_file_source

    if Path(resolve_file_source("vgzoo:weights/cgan_embed_digits.safetensors")).is_file():
        m = vgzoo.create("cgan_embed_digits", pretrained=True)
        assert m.pretrained_cfg["weight_source"].startswith("file:")
    else:
        with pytest.raises(vgzoo.WeightsNotFoundError, match="cgan_embed_digits"):
            vgzoo.create("cgan_embed_digits", pretrained=True)


# ----------------------------------------------------------------------------------- vgzoo generate
@pytest.fixture
def saved_dir(tmp_path):
    torch.manual_seed(0)
    m = vgzoo.create("cgan_embed_digits", **TINY)
    return vgzoo.save_pretrained(m, tmp_path / "model")


def _png(path):
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        return im.mode, np.asarray(im).copy()


def test_generate_cli_grid_and_singles(saved_dir, tmp_path):
    from click.testing import CliRunner

    from vgzoo.cli import cli
    from vgzoo.data.images import to_uint8

    grid, singles = tmp_path / "grid.png", tmp_path / "singles"
    args = ["generate", str(saved_dir), "--precision", "fp32", "--labels", "0,3", "--per-class", "3", "--seed", "1",
            "--out", str(grid), "--out-dir", str(singles)]  # fp32: compared with model.sample's fp32 output
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "2 rows x 3" in result.output
    mode, pixels = _png(grid)
    assert mode == "L" and pixels.shape == (2 * (64 + 2) + 2, 3 * (64 + 2) + 2)  # 16 px cells upscaled 4x
    files = sorted(p.name for p in singles.iterdir())
    assert files == [f"class{c}_{i:03d}.png" for c in (0, 3) for i in range(3)]
    # row r of the grid is class labels[r], drawn in order from one seeded generator
    model = vgzoo.create(f"local-dir:{saved_dir}").eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        model.sample(torch.zeros(3, dtype=torch.long), generator=g)
        expected = to_uint8(model.sample(torch.full((3,), 3), generator=g))[1, 0].numpy()
    assert (_png(singles / "class3_001.png")[1] == expected).all()
    cell = pixels[2 + 66 : 2 + 66 + 64, 2 + 66 : 2 + 66 + 64]  # row 1, column 1
    assert (cell[::4, ::4] == expected).all()
    # same seed, same grid; another seed, another grid
    again = tmp_path / "again.png"
    assert CliRunner().invoke(cli, [*args[:10], "--out", str(again)]).exit_code == 0
    assert (_png(again)[1] == pixels).all()
    other = tmp_path / "other.png"
    assert CliRunner().invoke(cli, [*args[:9], "2", "--out", str(other)]).exit_code == 0
    assert not (_png(other)[1] == pixels).all()


def test_generate_all_classes_by_name(tmp_path):
    from click.testing import CliRunner

    from vgzoo.cli import cli

    grid = tmp_path / "g.png"
    result = CliRunner().invoke(cli, ["generate", "cgan_embed_digits", "--all-classes", "--per-class", "2",
                                      "--scale", "1", "--out", str(grid)])
    assert result.exit_code == 0, result.output
    assert _png(grid)[1].shape == (10 * 18 + 2, 2 * 18 + 2)
    assert "random weights" in result.output


@pytest.mark.parametrize(
    "extra, code, message",
    [
        (["--labels", "0,12"], 1, "[0, 10)"),
        (["--labels", "a,1"], 2, "not integers"),
        (["--labels", "1", "--all-classes"], 2, "exclude each other"),
        (["--per-class", "0"], 2, "per-class"),
    ],
)
def test_generate_cli_errors(saved_dir, tmp_path, extra, code, message):
    from click.testing import CliRunner

    from vgzoo.cli import cli

    out = tmp_path / "x.png"
    result = CliRunner().invoke(cli, ["generate", str(saved_dir), "--out", str(out), *extra])
    assert result.exit_code == code
    assert message in result.output
    assert not out.exists()


def test_generate_refuses_non_conditional_models(tmp_path):
    from vgzoo.generate import generate, parse_labels

    with pytest.raises(ValueError, match="not a class-conditional generator"):
        generate(torch.nn.Linear(2, 2), out=tmp_path / "x.png")
    assert parse_labels(" 1, 2,3 ") == [1, 2, 3]
