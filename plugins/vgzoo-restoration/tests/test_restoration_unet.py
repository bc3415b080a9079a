"""Tests of the restoration_unet plugin: conformance per degradation, degradations, losses, registry metadata."""

from __future__ import annotations

import pytest
import torch
from vgzoo_restoration.model import psnr_db, random_hole_mask, to_luma

import vgzoo
import vgzoo.testing


@pytest.mark.parametrize("degradation", ["inpaint", "denoise", "colorize"])
def test_conformance(degradation):
    vgzoo.testing.check_model("restoration_unet", degradation=degradation)


def test_conformance_grey_hinge():
    vgzoo.testing.check_model("restoration_unet", in_chans=1, degradation="denoise", gan_mode="hinge", depth=2)


def test_listed_with_distribution():
    assert "restoration_unet" in vgzoo.list_models("restoration_*")
    info = vgzoo.model_info("restoration_unet")
    assert info.distribution == "vgzoo-restoration"
    assert info.task == "restoration"
    assert info.entry_point == "vgzoo_restoration.model:restoration_unet"


def test_inpainting_keeps_known_pixels():
    torch.manual_seed(0)
    model = vgzoo.create("restoration_unet", img_size=16, ngf=8, depth=3, ndf=8).eval()
    clean = torch.rand(4, 3, 16, 16) * 2 - 1
    degraded = model.degrade(clean)
    assert degraded.shape == (4, 4, 16, 16)
    hole = degraded[:, 3:]
    assert set(hole.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(degraded[:, :3] * hole, torch.zeros_like(clean))  # holes are blanked
    restored = model(degraded)
    known = (1 - hole).bool().expand_as(clean)
    assert torch.allclose(restored[known], clean[known])


def test_hole_mask_sizes_within_bounds():
    images = torch.zeros(64, 1, 32, 32)
    mask = random_hole_mask(images, 0.25, 0.5, torch.Generator().manual_seed(1))
    rows = mask.amax(3).sum((1, 2))
    cols = mask.amax(2).sum((1, 2))
    assert rows.min() >= 8 and rows.max() <= 16
    assert cols.min() >= 8 and cols.max() <= 16
    assert torch.equal(mask.sum((1, 2, 3)), rows * cols)  # one rectangle per image


def test_denoise_and_colorize_inputs():
    clean = torch.rand(2, 3, 16, 16) * 2 - 1
    den = vgzoo.create("restoration_unet", degradation="denoise", noise_std=0.3, img_size=16, ngf=8, depth=3)
    noisy = den.degrade(clean)
    assert noisy.shape == clean.shape and noisy.abs().max() <= 1
    assert 0.1 < float((noisy - clean).std()) < 0.4
    col = vgzoo.create("restoration_unet", degradation="colorize", img_size=16, ngf=8, depth=3)
    luma = col.degrade(clean)
    assert luma.shape == (2, 1, 16, 16)
    assert torch.allclose(luma, to_luma(clean))
    grey = torch.full((1, 3, 2, 2), 0.4)
    assert torch.allclose(to_luma(grey), torch.full((1, 1, 2, 2), 0.4))
    assert col(luma).shape == (2, 3, 16, 16)


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="degradation"):
        vgzoo.create("restoration_unet", degradation="deblur")
    with pytest.raises(ValueError, match="in_chans=3"):
        vgzoo.create("restoration_unet", degradation="colorize", in_chans=1)
    with pytest.raises(ValueError, match="divisible"):
        vgzoo.create("restoration_unet", img_size=24, depth=4)


def test_psnr():
    x = torch.zeros(1, 1, 4, 4)
    assert float(psnr_db(x + 0.2, x)) == pytest.approx(10 * torch.log10(torch.tensor(4 / 0.04)).item(), rel=1e-5)


def test_generator_learns_to_denoise():
    """A few generator steps on one constant image lower the per-pixel loss (the recipe is trainable)."""
    torch.manual_seed(0)
    model = vgzoo.create("restoration_unet", degradation="denoise", img_size=8, in_chans=1, ngf=4, depth=2, ndf=4,
                         lambda_adv=0.0)
    opt = torch.optim.Adam(model.generator_parameters(), lr=2e-2)
    batch = {"image": torch.full((2, 1, 8, 8), 0.5)}
    first = None
    for _ in range(12):
        loss, logs = model.generator_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = logs["G_pixel"] if first is None else first
    assert logs["G_pixel"] < 0.5 * first
    assert set(logs) == {"G_pixel", "G_adv", "psnr_db"}


@pytest.mark.parametrize("degradation", ["inpaint", "denoise"])
def test_degrade_is_reproducible_with_a_generator(degradation):
    """The trainer draws preview grids with a seeded (CPU) generator; equal seeds give equal degradations."""
    model = vgzoo.create("restoration_unet", degradation=degradation, img_size=16, ngf=8, depth=3)
    clean = torch.rand(3, 3, 16, 16) * 2 - 1
    a = model.degrade(clean, generator=torch.Generator().manual_seed(5))
    b = model.degrade(clean, generator=torch.Generator().manual_seed(5))
    c = model.degrade(clean, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
