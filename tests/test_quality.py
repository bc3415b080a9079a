"""Tests of vgzoo.quality: the shipped digits classifier, class-conditional accuracy and the diversity ratio."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import vgzoo
from vgzoo.data.digits import DigitsDataset
from vgzoo.protocols import ConditionalSampler
from vgzoo.quality import (
    QualityScore,
    class_conditional_accuracy,
    diversity_ratio,
    load_digits_classifier,
    mean_pairwise_distance,
    score_generator,
    to_unit_range,
)


@pytest.fixture(scope="module")
def val() -> DigitsDataset:
    return DigitsDataset(split="val")


@pytest.fixture(scope="module")
def train() -> DigitsDataset:
    return DigitsDataset(split="train")


def by_class(ds: DigitsDataset) -> dict[int, torch.Tensor]:
    return {c: ds.images[ds.labels == c] for c in range(10)}


class CollapsedGenerator(nn.Module, ConditionalSampler):
    """Returns one fixed real digit per class whatever z is: perfect labels, no diversity."""

    num_classes = 10

    def __init__(self, ds: DigitsDataset) -> None:
        super().__init__()
        self.register_buffer("protos", torch.stack([ds.images[ds.labels == c][0] for c in range(10)]) * 2 - 1)

    def sample_z(self, batch_size, generator=None):
        return torch.rand(batch_size, 4, generator=generator)

    def sample(self, labels, generator=None):
        torch.rand(len(labels), 4, generator=generator)  # draws z, ignores it
        return self.protos[labels]


def test_classifier_held_out_accuracy(val):
    acc = class_conditional_accuracy(val.images, val.labels)
    assert acc >= 0.97
    clf = load_digits_classifier()
    assert not clf.training and sum(p.numel() for p in clf.parameters()) < 100_000


def test_accuracy_value_range_is_explicit(val):
    x, y = val.images[:64], val.labels[:64]
    assert class_conditional_accuracy(x * 2 - 1, y, value_range=(-1.0, 1.0)) == class_conditional_accuracy(x, y)
    with pytest.raises(ValueError, match=r"value_range=\(-1.0, 1.0\)"):
        class_conditional_accuracy(x * 2 - 1, y)


def test_accuracy_counts_wrong_labels(val):
    x, y = val.images[:100], val.labels[:100]
    assert class_conditional_accuracy(x, (y + 1) % 10) < 0.1


def test_accuracy_bad_labels(val):
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        class_conditional_accuracy(val.images[:2], torch.tensor([0, 10]))
    with pytest.raises(ValueError, match="batch has 2"):
        class_conditional_accuracy(val.images[:2], torch.tensor([0]))


def test_accuracy_resizes_and_greys(val):
    x = val.images[:64]
    big_rgb = torch.nn.functional.interpolate(x, size=32, mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    assert class_conditional_accuracy(big_rgb, val.labels[:64]) >= 0.9


def test_real_vs_real_ratio_is_about_one(val, train):
    ratio = diversity_ratio(by_class(val), by_class(train))
    assert 0.9 < ratio < 1.1
    per_class = diversity_ratio(by_class(val), by_class(train), reduction="none")
    assert set(per_class) == set(range(10)) and all(0.75 < r < 1.3 for r in per_class.values())
    feat = diversity_ratio(by_class(val), by_class(train), space="features")
    assert 0.8 < feat < 1.25


def test_collapsed_samples_ratio_is_zero(train):
    samples = {c: imgs[:1].repeat(8, 1, 1, 1) for c, imgs in by_class(train).items()}
    assert diversity_ratio(samples, by_class(train)) == pytest.approx(0.0, abs=1e-6)


def test_score_collapsed_generator(val):
    score = score_generator(CollapsedGenerator(val), per_class=6, seed=0)
    assert isinstance(score, QualityScore)
    assert score.accuracy >= 0.9  # the labels are right ...
    assert score.diversity_ratio < 0.01  # ... but every z gives the same image
    assert set(score.per_class_accuracy) == set(range(10))
    assert score.to_dict()["per_class"] == 6


def test_score_random_cgan_is_reproducible():
    torch.manual_seed(0)
    model = vgzoo.create("cgan_embed_digits", nz=8, ngf=8, ndf=8)
    model.train()
    a = score_generator(model, per_class=4, seed=3, classes=[0, 1, 2])
    b = score_generator(model, per_class=4, seed=3, classes=[0, 1, 2])
    assert model.training  # mode restored
    assert a == b
    assert set(a.per_class_diversity) == {0, 1, 2}
    assert a.diversity_ratio > 0.0


def test_mean_pairwise_distance():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    # pairs (0,1)=5, (0,2)=0, (1,2)=5 -> mean 10/3
    assert mean_pairwise_distance(x) == pytest.approx(10 / 3)
    with pytest.raises(ValueError, match="at least 2"):
        mean_pairwise_distance(x[:1])


def test_errors(val):
    real = by_class(val)
    with pytest.raises(ValueError, match=r"class\(es\) \[3\]"):
        diversity_ratio({3: real[3]}, {0: real[0]})
    with pytest.raises(ValueError, match="space"):
        diversity_ratio(real, real, space="lpips")
    with pytest.raises(ValueError, match="per_class must be >= 2"):
        score_generator(CollapsedGenerator(val), per_class=1)
    with pytest.raises(ValueError, match="10 classes"):
        score_generator(vgzoo.create("cgan_embed_digits", num_classes=5, nz=8, ngf=8, ndf=8))
    with pytest.raises(ValueError, match="float tensor"):
        to_unit_range(torch.zeros(2, dtype=torch.uint8))
