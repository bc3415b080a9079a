"""Evaluation metrics: FID and KID on Inception, digits or any classifier's features, paired-translation scores
(PSNR, SSIM, LPIPS, L1), the Inception Score, classifier accuracy. Heavy pieces (torchmetrics, torch-fidelity)
load on first use."""

from __future__ import annotations

from .distances import (
    FeatureSetError,
    SmallSampleWarning,
    feature_stats,
    frechet_distance,
    frechet_distance_from_stats,
    inception_score,
    kernel_inception_distance,
    kid_subset_size,
)
from .evaluate import (
    compare_features,
    data_folders,
    eval_classify,
    eval_fid,
    eval_generate,
    eval_paired,
    eval_translate,
    real_features,
)
from .features import RESIZE_RULE, FeatureExtractor, extract_features, folder_features, get_features

__all__ = [
    "RESIZE_RULE",
    "FeatureExtractor",
    "FeatureSetError",
    "SmallSampleWarning",
    "compare_features",
    "data_folders",
    "eval_classify",
    "eval_fid",
    "eval_generate",
    "eval_paired",
    "eval_translate",
    "extract_features",
    "feature_stats",
    "folder_features",
    "frechet_distance",
    "frechet_distance_from_stats",
    "get_features",
    "inception_score",
    "kernel_inception_distance",
    "kid_subset_size",
    "real_features",
]
