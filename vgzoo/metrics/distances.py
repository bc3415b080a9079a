"""Fréchet distance (FID, Heusel et al. 2017) and kernel distance (KID, Bińkowski et al. 2018) between feature sets.

Both take two (N, D) arrays or tensors of features (Inception-v3 pool features for the standard scores, any other
features for their analogues) and compute in float64. torchmetrics and torch-fidelity compute the same numbers only
inside their image metrics; these functions work on features, so a fixed real set's features can be cached and
reused, and the tests cross-check them against torchmetrics and against an independent SciPy computation.
:func:`inception_score` (Salimans et al. 2016) works on one set's class logits, through torch-fidelity.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from ..errors import VgzooError

__all__ = [
    "FeatureSetError",
    "SmallSampleWarning",
    "feature_stats",
    "frechet_distance",
    "frechet_distance_from_stats",
    "inception_score",
    "kernel_inception_distance",
    "kid_subset_size",
    "polynomial_mmd2_unbiased",
]

#: The Inception Score's splits and shuffle seed: torch-fidelity's defaults (10 splits is the paper's protocol)
IS_SPLITS = 10
IS_SHUFFLE_SEED = 2020

#: Below this many images per set KID (and even more FID) is noisy; a warning says so.
SMALL_SET = 100


class FeatureSetError(VgzooError, ValueError):
    """Feature sets that cannot be compared: wrong shape, too few rows, different widths, non-finite values."""


class SmallSampleWarning(UserWarning):
    """A set below about 100 images: the scores are valid but have a large variance and (FID) a large bias."""


def _as_features(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise FeatureSetError(f"{name} must be an (N, D) numpy array or torch tensor; got {type(x).__name__}.")
    if x.ndim != 2:
        raise FeatureSetError(f"{name} must have shape (N, D); got shape {tuple(x.shape)}.")
    if x.shape[0] < 2:
        raise FeatureSetError(
            f"{name} holds {x.shape[0]} feature vector(s); a covariance needs at least 2 (use 100 or more images "
            "for a meaningful score)."
        )
    x = x.detach().to("cpu", torch.float64)
    if not torch.isfinite(x).all():
        raise FeatureSetError(f"{name} holds NaN or infinite values; check the images or the feature extractor.")
    return x


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape[1] != b.shape[1]:
        raise FeatureSetError(
            f"the feature sets have different widths ({a.shape[1]} and {b.shape[1]}); extract both with the same "
            "features."
        )


def feature_stats(features) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of (N, D) features, in float64."""
    x = _as_features(features, "features")
    return x.mean(0), torch.cov(x.T, correction=1).reshape(x.shape[1], x.shape[1])


def _sqrt_psd(m: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues below 0 from rounding set to 0)."""
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance_from_stats(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) for Gaussians N(mu1, S1), N(mu2, S2).

    Tr((S1 S2)^(1/2)) is taken as the trace of the root of the symmetric matrix S1^(1/2) S2 S1^(1/2), which has the
    same eigenvalues as S1 S2 and, unlike S1 S2, stays symmetric in floating point, so no complex parts appear.
    """
    mu1, mu2 = (torch.as_tensor(m, dtype=torch.float64) for m in (mu1, mu2))
    s1, s2 = (torch.as_tensor(s, dtype=torch.float64) for s in (sigma1, sigma2))
    root1 = _sqrt_psd(s1)
    inner = root1 @ s2 @ root1
    tr_covmean = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()
    value = (mu1 - mu2).square().sum() + torch.trace(s1) + torch.trace(s2) - 2 * tr_covmean
    return max(float(value), 0.0)


def frechet_distance(feats_a, feats_b) -> float:
    """The Fréchet distance between Gaussians fitted to two (N, D) feature sets (FID on Inception features).

    Args:
        feats_a, feats_b: (N_a, D) and (N_b, D) arrays or tensors; N >= 2 each (FID is biased upwards for small N,
            so compare scores only at equal set sizes).

    Raises:
        FeatureSetError: shapes that do not fit, fewer than 2 rows, or non-finite values.
    """
    a, b = _as_features(feats_a, "feats_a"), _as_features(feats_b, "feats_b")
    _check_pair(a, b)
    return frechet_distance_from_stats(*feature_stats(a), *feature_stats(b))


def polynomial_mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 between equal-sized (m, D) sets with the cubic kernel k(u, v) = (u.v / D + 1)^3."""
    m, d = x.shape
    k_xx = (x @ x.T / d + 1) ** 3
    k_yy = (y @ y.T / d + 1) ** 3
    k_xy = (x @ y.T / d + 1) ** 3
    off_xx = k_xx.sum() - k_xx.diagonal().sum()
    off_yy = k_yy.sum() - k_yy.diagonal().sum()
    return float((off_xx + off_yy) / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


def kid_subset_size(n_a: int, n_b: int, subset_size: int = 1000) -> int:
    """The subset size KID uses: ``min(n_a, n_b, subset_size)``."""
    return int(min(n_a, n_b, subset_size))


def kernel_inception_distance(feats_a, feats_b, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """KID: the unbiased MMD^2 with a cubic polynomial kernel, averaged over random subsets.

    Each of ``subsets`` rounds draws ``min(N_a, N_b, subset_size)`` rows of each set without replacement (a seeded
    CPU ``torch.Generator``, so the result is reproducible) and computes the unbiased MMD^2. Unlike FID, KID is
    unbiased, which is why it is the companion score for small test sets.

    Returns:
        ``(mean, std)`` over the subsets; std is the population standard deviation (as torch-fidelity reports it),
        0 for one subset.

    Raises:
        FeatureSetError: shapes that do not fit, fewer than 2 rows, non-finite values, or ``subsets``/``subset_size``
            below 1/2.
    """
    a, b = _as_features(feats_a, "feats_a"), _as_features(feats_b, "feats_b")
    _check_pair(a, b)
    if int(subsets) < 1:
        raise FeatureSetError(f"subsets must be >= 1; got {subsets}.")
    if int(subset_size) < 2:
        raise FeatureSetError(f"subset_size must be >= 2 (the unbiased estimate needs pairs); got {subset_size}.")
    m = kid_subset_size(len(a), len(b), int(subset_size))
    if m < SMALL_SET:
        warnings.warn(
            f"KID uses subsets of {m} images (the smaller set has {min(len(a), len(b))}); below {SMALL_SET} images "
            "the score has a large variance: report its std and compare only at equal sizes.",
            SmallSampleWarning,
            stacklevel=2,
        )
    gen = torch.Generator().manual_seed(int(seed))
    scores = []
    for _ in range(int(subsets)):
        ia = torch.randperm(len(a), generator=gen)[:m]
        ib = torch.randperm(len(b), generator=gen)[:m]
        scores.append(polynomial_mmd2_unbiased(a[ia], b[ib]))
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    return mean, std


def inception_score(logits, splits: int = IS_SPLITS, seed: int = IS_SHUFFLE_SEED) -> tuple[float, float]:
    """The Inception Score exp(E_x[KL(p(y|x) || p(y))]) of one set's class logits (N, classes), per split.

    The rows are shuffled with ``RandomState(seed)``, cut into ``splits`` consecutive parts, p(y) is each part's mean
    of softmax(logits), and the score of a part is exp of the mean KL divergence. torch-fidelity's computation
    (float64), so a set's score equals ``fidelity --isc`` on the same images.

    Returns:
        ``(mean, std)`` over the splits; std is the population standard deviation (as torch-fidelity reports it).

    Raises:
        FeatureSetError: not (N, C), non-finite values, or fewer rows than splits.
    """
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

    x = _as_features(logits, "logits")
    if int(splits) < 1 or len(x) < int(splits):
        raise FeatureSetError(f"the Inception Score needs 1 <= splits <= images; got {splits} splits of {len(x)} "
                              "images: draw more samples (the standard protocol is 10 splits of 5000).")
    out = isc_features_to_metric(x, splits=int(splits), shuffle=True, rng_seed=int(seed))
    return out[KEY_METRIC_ISC_MEAN], out[KEY_METRIC_ISC_STD]
