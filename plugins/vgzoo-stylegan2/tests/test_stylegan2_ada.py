"""ADA's augmentation pipe and its adjustment of p, checked op by op on constructed images.

Where an op is random, the test seeds torch, draws the op's parameters in the pipe's order by hand (with p = 1 every
draw of the probability test passes), and compares the pipe's output with the op computed by hand from them.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

augment = pytest.importorskip("vgzoo_stylegan2.augment")
AugmentPipe, AdaptiveAugment, create_augment = augment.AugmentPipe, augment.AdaptiveAugment, augment.create_augment


def _images(b=16, c=3, h=16, w=16, seed=0):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _run(pipe, x, seed=5):
    torch.manual_seed(seed)
    return pipe(x)


def test_p_zero_is_the_identity_for_the_whole_bgc_pipe():
    x = _images()
    out = _run(AugmentPipe.from_name("bgc", p=0.0), x)
    assert torch.allclose(out, x, atol=1e-5)  # the 2x up/down with the orthogonal filter gives the image back


def _smooth_images(b, h=32, w=32):
    """Low-frequency images: the resampling (2x up, bilinear, 2x down with the asymmetric sym6 filter) mirrors and
    rotates them up to a small phase error, as the reference's pipe does (vgzoo's matches it to float rounding)."""
    ys, xs = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")
    phase = torch.arange(b).view(-1, 1, 1, 1) * 0.7
    ramp = 0.3 * (xs + ys / 2) / w  # odd: no image is its own mirror
    return torch.cos(2 * math.pi * xs / 32 + phase) * torch.sin(2 * math.pi * (ys + 1) / 41 + 2 * phase) + ramp


def test_xflip_mirrors_the_images_the_draw_picks():
    x = _smooth_images(64)
    pipe = AugmentPipe(xflip=1, p=1.0)
    torch.manual_seed(5)
    g_inv = pipe.geometry(64, 32, 32, torch.device("cpu"))
    torch.manual_seed(5)
    flip = torch.floor(torch.rand(64) * 2)  # the pipe's draw: flip where this is 1
    assert torch.equal(g_inv, torch.diag_embed(torch.stack([1 - 2 * flip, torch.ones(64), torch.ones(64)], 1)))
    out = _run(pipe, x)
    expected = torch.where(flip.bool().view(-1, 1, 1, 1), x.flip(-1), x)
    assert torch.allclose(out[flip == 0], x[flip == 0], atol=1e-5)  # the identity is exact
    assert (out - expected).abs().max() < 0.03
    assert (out - x)[flip == 1].abs().amax(dim=(1, 2, 3)).min() > 0.2  # and the mirrored ones did change
    assert 10 < int(flip.sum()) < 54


def test_rotate90_turns_each_image_by_the_drawn_quarter():
    x = _smooth_images(64)
    pipe = AugmentPipe(rotate90=1, p=1.0)
    torch.manual_seed(5)
    g_inv = pipe.geometry(64, 32, 32, torch.device("cpu"))
    torch.manual_seed(5)
    quarter = torch.floor(torch.rand(64) * 4).long()
    cos = torch.tensor([1.0, 0.0, -1.0, 0.0])[quarter]
    sin = torch.tensor([0.0, 1.0, 0.0, -1.0])[quarter]
    assert torch.allclose(g_inv[:, :2, :2], torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1),
                          atol=1e-7)
    out = _run(pipe, x)
    for o, xi, k in zip(out, x, quarter.tolist(), strict=True):
        # output (x, y) reads input R(k * 90 deg) (x, y) = (-y, x) for k = 1: torch.rot90 by k in the (H, W) plane
        assert (o - torch.rot90(xi, k, dims=(1, 2))).abs().max() < 0.03
    assert set(quarter.tolist()) == {0, 1, 2, 3}


def test_integer_translation_shifts_with_reflected_borders():
    b, h, w = 32, 16, 16
    x = _images(b=b, h=h, w=w)
    out = _run(AugmentPipe(xint=1, p=1.0), x)
    torch.manual_seed(5)
    t = (torch.rand(b, 2) * 2 - 1) * 0.125
    tx, ty = torch.round(t[:, 0] * w).long(), torch.round(t[:, 1] * h).long()
    m = 4
    padded = F.pad(x, [m] * 4, mode="reflect")
    for i in range(b):
        dx, dy = int(tx[i]), int(ty[i])
        expected = padded[i, :, m - dy:m - dy + h, m - dx:m - dx + w]  # out(x, y) = in(x - dx, y - dy)
        assert torch.allclose(out[i], expected, atol=1e-5), (i, dx, dy)
    assert (tx != 0).any() and (ty != 0).any() and tx.abs().max() <= 2


def test_general_geometry_samples_the_image_at_the_hand_composed_inverse_map():
    b, h, w = 8, 32, 32
    ys, xs = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")

    def smooth(px, py):  # a low-frequency image, so resampling errors stay small
        return torch.cos(2 * math.pi * px / 40) * torch.sin(2 * math.pi * (py + 3) / 50)

    x = smooth(xs, ys).expand(b, 1, h, w).contiguous()
    out = _run(AugmentPipe(scale=1, rotate=1, aniso=1, xfrac=1, p=1.0), x)
    torch.manual_seed(5)  # the draws in the pipe's order: scale, pre-rotation, anisotropy, post-rotation, shift
    s = torch.exp2(torch.randn(b) * 0.2); torch.rand(b)  # noqa: E702
    theta1 = (torch.rand(b) * 2 - 1) * math.pi; torch.rand(b)  # noqa: E702
    a = torch.exp2(torch.randn(b) * 0.2); torch.rand(b)  # noqa: E702
    theta2 = (torch.rand(b) * 2 - 1) * math.pi; torch.rand(b)  # noqa: E702
    t = torch.randn(b, 2) * 0.125
    for i in range(b):
        # the input point output pixel q reads: scale(1/s) rot(theta1) aniso(1/a, a) rot(theta2) (q - shift)
        px, py = xs - t[i, 0] * w, ys - t[i, 1] * h
        c, sn = math.cos(theta2[i]), math.sin(theta2[i])
        px, py = c * px - sn * py, sn * px + c * py
        px, py = px / a[i], py * a[i]
        c, sn = math.cos(theta1[i]), math.sin(theta1[i])
        px, py = c * px - sn * py, sn * px + c * py
        px, py = px / s[i], py / s[i]
        inside = (px.abs() < (w - 1) / 2 - 2) & (py.abs() < (h - 1) / 2 - 2)
        assert inside.sum() > 50
        err = (out[i, 0] - smooth(px, py))[inside].abs().max()
        assert err < 0.03, (i, float(err))


def _luma(x):
    return x.mean(dim=1, keepdim=True)


def test_brightness_and_contrast_against_hand_computation():
    x = _images(b=8)
    out = _run(AugmentPipe(brightness=1, p=1.0), x)
    torch.manual_seed(5)
    shift = torch.randn(8) * 0.2
    assert torch.allclose(out, x + shift.view(-1, 1, 1, 1), atol=1e-6)
    out = _run(AugmentPipe(contrast=1, p=1.0), x)
    torch.manual_seed(5)
    gain = torch.exp2(torch.randn(8) * 0.5)
    assert torch.allclose(out, x * gain.view(-1, 1, 1, 1), atol=1e-6)


def test_luma_flip_reflects_through_the_grey_axis():
    x = _images(b=32)
    out = _run(AugmentPipe(lumaflip=1, p=1.0), x)
    torch.manual_seed(5)
    flip = torch.floor(torch.rand(32) * 2).view(-1, 1, 1, 1)
    assert torch.allclose(out, x - 2 * flip * _luma(x), atol=1e-6)  # (I - 2 v v^T) x, v = (1, 1, 1) / sqrt(3)
    grey = _images(b=32, c=1)
    out = _run(AugmentPipe(lumaflip=1, p=1.0), grey)
    assert torch.allclose(out, grey * (1 - 2 * flip), atol=1e-6)  # a grey image's luma flip is a negation


def test_hue_rotates_the_chroma_about_the_grey_axis():
    x = _images(b=8)
    out = _run(AugmentPipe(hue=1, p=1.0), x)
    torch.manual_seed(5)
    theta = ((torch.rand(8) * 2 - 1) * math.pi).view(-1, 1, 1, 1)
    k = torch.ones(3) / math.sqrt(3)
    cross = torch.stack([k[1] * x[:, 2] - k[2] * x[:, 1], k[2] * x[:, 0] - k[0] * x[:, 2],
                         k[0] * x[:, 1] - k[1] * x[:, 0]], dim=1)
    along = (x * k.view(1, 3, 1, 1)).sum(1, keepdim=True) * k.view(1, 3, 1, 1)
    rodrigues = x * torch.cos(theta) + cross * torch.sin(theta) + along * (1 - torch.cos(theta))
    assert torch.allclose(out, rodrigues, atol=1e-5)
    grey = _images(c=1)
    assert torch.equal(_run(AugmentPipe(hue=1, p=1.0), grey), grey)  # no hue on grey images


def test_saturation_scales_the_chroma():
    x = _images(b=8)
    out = _run(AugmentPipe(saturation=1, p=1.0), x)
    torch.manual_seed(5)
    s = torch.exp2(torch.randn(8, 1, 1)).view(-1, 1, 1, 1)
    assert torch.allclose(out, _luma(x) + (x - _luma(x)) * s, atol=1e-5)


def test_probability_p_selects_that_share_of_images():
    x = _images(b=400, h=8, w=8)
    out = _run(AugmentPipe(brightness=1, p=0.25), x)
    changed = (out - x).abs().flatten(1).amax(1) > 0
    torch.manual_seed(5)
    torch.randn(400)
    chosen = torch.rand(400) < 0.25  # the pipe's draw for each image
    assert torch.equal(changed, chosen) and 60 < int(chosen.sum()) < 140


def test_gradients_flow_through_the_pipe_twice():
    x = _images(b=4, h=16, w=16).requires_grad_(True)
    pipe = AugmentPipe.from_name("bgc", p=1.0)
    weights = torch.randn(1, 3, 16, 16)
    torch.manual_seed(5)
    score = (pipe(x) * weights).sum()
    (grad,) = torch.autograd.grad(score, x, create_graph=True)  # what R1 differentiates
    assert grad.abs().sum() > 0 and torch.isfinite(grad).all()
    penalty = grad.square().sum()
    weights.requires_grad_(True)
    torch.manual_seed(5)
    (g,) = torch.autograd.grad((pipe(x) * weights).sum(), x, create_graph=True)
    (dw,) = torch.autograd.grad(g.square().sum(), weights)
    assert torch.isfinite(penalty) and dw.abs().sum() > 0


def test_ada_adjusts_p_every_interval_by_the_hand_computed_step():
    pipe = AugmentPipe.from_name("bgc")
    ada = AdaptiveAugment(pipe, target=0.6, interval=4, kimg=500, batch_size=16)
    step = 16 * 4 / 500_000
    # steps 1-4: 3 of every 4 logits positive -> r_t = (12 - 4) / 16 = 0.5 < 0.6 -> p stays at the floor 0
    for k in range(1, 5):
        ada.observe(torch.tensor([1.0, 2.0, 0.5, -1.0]))
        ada.update(k)
        if k < 4:
            assert float(pipe.p) == 0 and math.isnan(float(ada.rt))
    assert float(ada.rt) == pytest.approx(0.5) and float(pipe.p) == 0.0
    # steps 5-8: all positive -> r_t = 1 > 0.6 -> p rises by one step
    for k in range(5, 9):
        ada.observe(torch.tensor([1.0, 2.0, 0.5, 3.0]))
        ada.update(k)
    assert float(ada.rt) == 1.0 and float(pipe.p) == pytest.approx(step)
    for k in range(9, 17):  # two more intervals above the target, then one below
        ada.observe(torch.ones(4))
        ada.update(k)
    assert float(pipe.p) == pytest.approx(3 * step)
    for k in range(17, 21):
        ada.observe(-torch.ones(4))
        ada.update(k)
    assert float(ada.rt) == -1.0 and float(pipe.p) == pytest.approx(2 * step)
    # the state round-trips
    other = AdaptiveAugment(AugmentPipe.from_name("bgc"), batch_size=16)
    other.load_state_tensors({k: v.clone() for k, v in ada.state_tensors().items()})
    assert float(other.pipe.p) == float(pipe.p) and float(other.rt) == -1.0


def test_create_augment_modes_and_errors():
    pipe, ada = create_augment("ada", batch_size=8)
    assert float(pipe.p) == 0 and ada is not None and ada.step_size == 8 * 4 / 500_000
    pipe, ada = create_augment("fixed", p=0.3)
    assert float(pipe.p) == pytest.approx(0.3) and ada is None
    assert create_augment("none") == (None, None)
    with pytest.raises(ValueError, match="ada, fixed, none"):
        create_augment("adaptive")
    with pytest.raises(ValueError, match="augpipe='bgcfnc'"):
        create_augment("ada", pipe="bgcfnc")
    with pytest.raises(ValueError, match="ada_target"):
        AdaptiveAugment(AugmentPipe(), target=1.5)
