"""Tests of the gan_vanilla plugin: conformance, shapes, latent, errors, registry metadata."""

from __future__ import annotations

import pytest
import torch

import vgzoo
import vgzoo.testing


def test_conformance():
    vgzoo.testing.check_model("gan_vanilla")


def test_conformance_wgangp_rgb():
    vgzoo.testing.check_model("gan_vanilla", gan_mode="wgangp", in_chans=3, img_size=8)


def test_listed_with_distribution():
    assert "gan_vanilla" in vgzoo.list_models("gan_*")
    info = vgzoo.model_info("gan_vanilla")
    assert info.distribution == "vgzoo-vanilla-gan"
    assert info.task == "generation"
    assert info.entry_point == "vgzoo_vanilla_gan.model:gan_vanilla"
    assert info.default_kwargs["nz"] == 20


@pytest.mark.parametrize("img_size", [8, 16, 32])
def test_sample_shape_and_range(img_size):
    model = vgzoo.create("gan_vanilla", img_size=img_size, base_chans=16, ndf=8).eval()
    images = model.sample(3)
    assert images.shape == (3, 1, img_size, img_size)
    assert images.min() >= -1 and images.max() <= 1
    assert model.pretrained_cfg["input_size"] == (1, img_size, img_size)


def test_default_layout_matches_the_classic_generator():
    model = vgzoo.create("gan_vanilla")
    linear = model.generator.project[0]
    assert (linear.in_features, linear.out_features) == (20, 64 * 8 * 8)
    assert isinstance(model.generator.project[1], torch.nn.ReLU)
    assert isinstance(model.generator.to_image[-1], torch.nn.Tanh)
    assert model.discriminator(torch.zeros(2, 1, 32, 32)).shape == (2, 1)


def test_latent_is_uniform_in_unit_box():
    model = vgzoo.create("gan_vanilla", img_size=8, base_chans=8, ndf=8)
    z = model.sample_z(4096)
    assert z.shape == (4096, 20)
    assert z.min() >= -1 and z.max() <= 1
    assert z.min() < -0.99 and z.max() > 0.99  # covers the box, not a normal's bulk
    assert abs(float(z.mean())) < 0.05


def test_bad_img_size_is_explained():
    with pytest.raises(ValueError, match=r"8 \* 2\*\*k"):
        vgzoo.create("gan_vanilla", img_size=24)


def test_bad_gan_mode_is_explained():
    with pytest.raises(ValueError, match="gan_mode"):
        vgzoo.create("gan_vanilla", gan_mode="nope")


def test_discriminator_learns_to_separate():
    """A few discriminator steps against a fixed generator lower the discriminator loss."""
    torch.manual_seed(0)
    model = vgzoo.create("gan_vanilla", img_size=8, base_chans=8, ndf=4)
    opt = torch.optim.Adam(model.discriminator_parameters(), lr=2e-2)
    batch = {"image": torch.ones(4, 1, 8, 8) * 0.8}  # a very easy "real" distribution
    first = None
    for _ in range(12):
        loss, logs = model.discriminator_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = logs["D_adv"] if first is None else first
    assert logs["D_adv"] < first * 0.5


def test_sampling_is_reproducible_with_a_generator():
    model = vgzoo.create("gan_vanilla", img_size=8, base_chans=8, ndf=8).eval()
    a = model.sample(4, generator=torch.Generator().manual_seed(3))
    b = model.sample(4, generator=torch.Generator().manual_seed(3))
    c = model.sample(4, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
