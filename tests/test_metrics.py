"""FID and KID on feature sets: closed forms, an independent NumPy/SciPy computation and torchmetrics agree; the
Inception Score against a hand computation and torchmetrics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from vgzoo.metrics import (
    FeatureSetError,
    SmallSampleWarning,
    frechet_distance,
    frechet_distance_from_stats,
    inception_score,
    kernel_inception_distance,
)


def _gaussians(n=600, d=8, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    a_mat = rng.normal(size=(d, d)) / np.sqrt(d)
    b_mat = rng.normal(size=(d, d)) / np.sqrt(d)
    a = rng.normal(size=(n, d)) @ a_mat
    b = rng.normal(size=(n, d)) @ b_mat + 0.3 + shift
    return a, b


def _numpy_fid(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _numpy_mmd2_cubic(x, y):
    d = x.shape[1]
    m = len(x)

    def k(u, v):
        return (u @ v.T / d + 1.0) ** 3

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())


def test_fid_of_a_set_with_itself_is_zero():
    a, _ = _gaussians()
    assert abs(frechet_distance(a, a)) < 1e-8
    assert abs(frechet_distance(torch.from_numpy(a).float(), torch.from_numpy(a).float())) < 1e-4


def test_fid_closed_form_for_known_gaussians():
    # diagonal covariances: FID = |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2
    s1, s2 = np.array([1.0, 4.0, 0.25, 2.0]), np.array([2.0, 1.0, 0.5, 2.0])
    mu1, mu2 = np.zeros(4), np.array([1.0, -2.0, 0.5, 0.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
    got = frechet_distance_from_stats(mu1, np.diag(s1), mu2, np.diag(s2))
    assert got == pytest.approx(expected, rel=1e-9)
    # full covariances, rotated: the value is invariant to a common rotation
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(4, 4)))
    got_rot = frechet_distance_from_stats(q @ mu1, q @ np.diag(s1) @ q.T, q @ mu2, q @ np.diag(s2) @ q.T)
    assert got_rot == pytest.approx(expected, rel=1e-9)


def test_fid_of_gaussian_samples_matches_scipy():
    a, b = _gaussians()
    assert frechet_distance(a, b) == pytest.approx(_numpy_fid(a, b), rel=1e-3)


def test_fid_of_large_gaussian_samples_approaches_closed_form():
    rng = np.random.default_rng(3)
    n, d = 200_000, 3
    a = rng.normal(size=(n, d)) * np.sqrt([1.0, 2.0, 3.0])
    b = rng.normal(size=(n, d)) * np.sqrt([2.0, 2.0, 1.0]) + [1.0, 0.0, 0.0]
    expected = 1.0 + ((np.sqrt([1.0, 2.0, 3.0]) - np.sqrt([2.0, 2.0, 1.0])) ** 2).sum()
    assert frechet_distance(a, b) == pytest.approx(expected, rel=2e-2)  # sampling error, not the 1e-3 of the algebra


class _Identity(nn.Module):
    """A "feature extractor" that returns its input, to feed features straight into torchmetrics."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = dim

    def forward(self, x):
        return x


def test_fid_and_kid_match_torchmetrics():
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    a, b = _gaussians(n=300, d=6)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    fid = FrechetInceptionDistance(feature=_Identity(6))
    fid.update(ta, real=True)
    fid.update(tb, real=False)
    assert frechet_distance(a, b) == pytest.approx(float(fid.compute()), rel=1e-3)
    kid = KernelInceptionDistance(feature=_Identity(6), subsets=1, subset_size=300)
    kid.update(ta, real=True)
    kid.update(tb, real=False)
    tm_mean, _ = kid.compute()
    mean, std = kernel_inception_distance(a, b, subsets=1, subset_size=300)
    assert mean == pytest.approx(float(tm_mean), rel=1e-3)
    assert std == 0.0


def test_kid_with_one_full_subset_is_the_unbiased_cubic_mmd():
    a, b = _gaussians(n=250, d=5, seed=2)
    mean, std = kernel_inception_distance(a, b, subsets=1, subset_size=10_000)
    assert mean == pytest.approx(_numpy_mmd2_cubic(a, b), rel=1e-3)
    assert std == 0.0


def test_kid_subsets_are_seeded_and_average_subset_mmds():
    a, b = _gaussians(n=400, d=5, seed=4)
    m1 = kernel_inception_distance(a, b, subsets=20, subset_size=100, seed=7)
    m2 = kernel_inception_distance(a, b, subsets=20, subset_size=100, seed=7)
    m3 = kernel_inception_distance(a, b, subsets=20, subset_size=100, seed=8)
    assert m1 == m2 and m1 != m3 and m1[1] > 0
    # independent re-computation of the same subsets
    gen = torch.Generator().manual_seed(7)
    scores = []
    for _ in range(20):
        ia = torch.randperm(400, generator=gen)[:100].numpy()
        ib = torch.randperm(400, generator=gen)[:100].numpy()
        scores.append(_numpy_mmd2_cubic(a[ia], b[ib]))
    assert m1[0] == pytest.approx(np.mean(scores), rel=1e-6)
    assert m1[1] == pytest.approx(np.std(scores), rel=1e-6)


def test_kid_is_near_zero_for_the_same_distribution_and_positive_otherwise():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(500, 8)), rng.normal(size=(500, 8))
    same, _ = kernel_inception_distance(x, y, subsets=10, subset_size=500)
    diff, _ = kernel_inception_distance(x, y + 1.0, subsets=10, subset_size=500)
    assert abs(same) < 0.05 < diff


def test_a_mean_shift_increases_fid_monotonically():
    a, _ = _gaussians(n=400, d=6)
    shifts = [0.0, 0.1, 0.3, 0.6, 1.0, 2.0]
    fids = [frechet_distance(a, a + s) for s in shifts]
    assert all(x < y for x, y in zip(fids, fids[1:], strict=False))
    for s, f in zip(shifts, fids, strict=True):  # a pure shift adds exactly D * s^2
        assert f == pytest.approx(6 * s * s, abs=1e-6)
    kids = [kernel_inception_distance(a, a + s, subsets=1, subset_size=400)[0] for s in shifts[1:]]
    assert all(x < y for x, y in zip(kids, kids[1:], strict=False))


def test_small_sets_warn_and_bad_shapes_raise():
    a, b = _gaussians(n=50, d=4)
    with pytest.warns(SmallSampleWarning, match="50"):
        kernel_inception_distance(a, b, subsets=2)
    with pytest.raises(FeatureSetError, match="at least 2"):
        frechet_distance(a[:1], b)
    with pytest.raises(FeatureSetError, match="widths"):
        frechet_distance(a, b[:, :3])
    with pytest.raises(FeatureSetError, match=r"\(N, D\)"):
        frechet_distance(a[:, 0], b)
    bad = a.copy()
    bad[0, 0] = np.nan
    with pytest.raises(FeatureSetError, match="NaN"):
        kernel_inception_distance(bad, b)
    with pytest.raises(ValueError, match="subsets"):
        kernel_inception_distance(a, b, subsets=0)


def _hand_inception_score(logits: np.ndarray, splits: int, seed: int) -> tuple[float, float]:
    """exp(E_x[KL(p(y|x) || p(y))]) per split, written out in NumPy: rows shuffled by RandomState(seed)."""
    x = logits[np.random.RandomState(seed).permutation(len(logits))].astype(np.float64)
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    scores = []
    for i in range(splits):
        part = p[i * len(p) // splits:(i + 1) * len(p) // splits]
        marginal = part.mean(0)
        kl = (part * (np.log(part) - np.log(marginal))).sum(1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def test_inception_score_matches_a_hand_computation_over_splits():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(230, 7)) * 3.0  # 230 rows: the 10 splits are 23 rows each
    mean, std = inception_score(logits)  # the defaults: 10 splits, torch-fidelity's shuffle seed 2020
    hand_mean, hand_std = _hand_inception_score(logits, 10, 2020)
    assert mean == pytest.approx(hand_mean, rel=1e-9) and std == pytest.approx(hand_std, rel=1e-9)
    assert std > 0
    assert inception_score(logits, splits=5, seed=1) == pytest.approx(_hand_inception_score(logits, 5, 1), rel=1e-9)


def test_inception_score_closed_forms_and_bad_input():
    # confident and spread evenly over k classes: p(y|x) one-hot, p(y) uniform, IS = k; one class only: IS = 1
    k = 5
    confident = torch.full((100, k), -50.0)
    confident[torch.arange(100), torch.arange(100) % k] = 50.0
    assert inception_score(confident, splits=1)[0] == pytest.approx(k, rel=1e-6)
    assert inception_score(torch.zeros(40, k), splits=4) == pytest.approx((1.0, 0.0), abs=1e-12)
    with pytest.raises(FeatureSetError, match="splits"):
        inception_score(torch.zeros(5, k), splits=10)
    with pytest.raises(FeatureSetError, match="NaN"):
        inception_score(torch.full((20, k), float("nan")), splits=2)


class _ControlledLogits(nn.Module):
    """A stand-in classifier: the logits are the input rows themselves."""

    def forward(self, x):
        return x


def test_inception_score_matches_torchmetrics_with_a_stand_in_classifier():
    from torchmetrics.image.inception import InceptionScore

    logits = torch.from_numpy(np.random.default_rng(1).normal(size=(120, 6)) * 2.0)
    metric = InceptionScore(feature=_ControlledLogits(), splits=1)  # one split: torchmetrics' shuffle cannot matter
    metric.update(logits)
    tm_mean, _ = metric.compute()
    assert inception_score(logits, splits=1)[0] == pytest.approx(float(tm_mean), rel=1e-6)


def test_feature_extraction_is_one_inference_run():
    """The batches of an extraction share one run (vgzoo.inference.inference_run): a parametrized weight (a
    spectral norm) is computed once for all of them, not once per batch."""
    from torch import nn

    from vgzoo.metrics.features import FeatureExtractor, extract_features

    net = nn.Sequential(nn.Flatten(), nn.utils.parametrizations.spectral_norm(nn.Linear(3 * 4 * 4, 5))).eval()
    computed = []
    net[1].parametrizations.weight[0].register_forward_hook(lambda *_: computed.append(1))
    extractor = FeatureExtractor("sn", "sn", 3, (4, 4), 5, lambda x: net(x.float() / 255), torch.device("cpu"), net)
    batches = [torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8) for _ in range(3)]
    with torch.no_grad():
        features = extract_features(batches, extractor, progress=False)
        assert len(computed) == 1
        torch.testing.assert_close(features, torch.cat([net(b.float() / 255) for b in batches]))
