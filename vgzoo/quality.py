"""Sample quality of class-conditional digit generators.

Scores a generator of the built-in 16x16 digits (``cgan_embed_digits``, the conditional GAN of
Mirza & Osindero, "Conditional Generative Adversarial Nets", 2014) with two numbers:

- **class-conditional accuracy**: the share of samples that a small digits classifier, trained on
  the real digits (``DigitsDataset(split="train")``, >= 97 % on the held-out ``"val"`` split), assigns
  to the class that was requested. A generator that ignores its label scores about 0.1.
- **within-class diversity ratio**: for each class, the mean pairwise L2 distance between samples
  divided by the mean pairwise L2 distance between real images of that class (pixel space, both in
  [0, 1], or the classifier's penultimate features with ``space="features"``). About 1 means samples
  vary as much as real digits do; near 0 means mode collapse (the same image for every z).

The classifier's weights ship with the package (``vgzoo/weights/digits_classifier.safetensors``,
written by ``benchmarks/train_digits_classifier.py``), so scoring never trains or downloads anything.

Value ranges are explicit: every function takes images in [0, 1] (the data contract) unless told
otherwise with ``value_range=(-1.0, 1.0)`` (what generators return); images outside the declared
range are refused rather than silently misread.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import WeightsNotFoundError
from .layers.label_map import validate_labels
from .protocols import ConditionalSampler

__all__ = [
    "DigitsClassifier",
    "QualityScore",
    "class_conditional_accuracy",
    "diversity_ratio",
    "load_digits_classifier",
    "mean_pairwise_distance",
    "score_generator",
    "to_unit_range",
]

CLASSIFIER_RESOURCE = "weights/digits_classifier.safetensors"
DIGITS_SIZE = 16
NUM_CLASSES = 10
_RANGE_TOLERANCE = 1e-3


class DigitsClassifier(nn.Module):
    """A small CNN for 16x16 grey digits in [0, 1]: two conv/pool stages and a two-layer head (~38k parameters).

    Args:
        width: channels of the first conv (the second has twice as many).
        hidden: size of the penultimate features (:meth:`features`).
        num_classes: number of classes.
    """

    def __init__(self, width: int = 16, hidden: int = 64, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),             # 8x8
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),     # 4x4
            nn.Flatten(),
            nn.Linear(2 * width * 4 * 4, hidden), nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(hidden, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, 1, 16, 16) in [0, 1] -> penultimate features (N, hidden)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, 1, 16, 16) in [0, 1] -> logits (N, num_classes)."""
        return self.head(self.dropout(self.features(x)))


def classifier_weights_path() -> Path:
    """Where the shipped classifier weights live inside the installed package."""
    return Path(str(resources.files("vgzoo").joinpath(CLASSIFIER_RESOURCE)))


@functools.lru_cache(maxsize=1)
def _load_cpu_classifier() -> DigitsClassifier:
    from ._hub import load_state_dict

    path = classifier_weights_path()
    if not path.is_file():
        raise WeightsNotFoundError(
            f"The digits classifier weights {str(path)!r} are not installed. Reinstall vgzoo, or train them with "
            "`python benchmarks/train_digits_classifier.py` from a source checkout."
        )
    model = DigitsClassifier()
    model.load_state_dict(load_state_dict(path))
    return model.eval().requires_grad_(False)


def load_digits_classifier(device: str | torch.device | None = None) -> DigitsClassifier:
    """The shipped digits classifier in eval mode, on ``device`` (CPU by default). Loaded once per process."""
    model = _load_cpu_classifier()
    if device is not None and torch.device(device) != torch.device("cpu"):
        import copy

        model = copy.deepcopy(model).to(device)
    return model


def to_unit_range(images: torch.Tensor, value_range: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """Map images declared to lie in ``value_range`` to [0, 1], refusing images outside that range.

    Raises:
        ValueError: images is not a float tensor, or its values fall outside ``value_range``.
    """
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        got = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a float tensor; got {got}.")
    lo, hi = float(value_range[0]), float(value_range[1])
    if not hi > lo:
        raise ValueError(f"value_range must be (low, high) with high > low; got {value_range!r}.")
    if images.numel():
        mn, mx = float(images.min()), float(images.max())
        tol = _RANGE_TOLERANCE * (hi - lo)
        if mn < lo - tol or mx > hi + tol:
            hint = " Generator outputs lie in [-1, 1]: pass value_range=(-1.0, 1.0)." if mn < 0 else ""
            raise ValueError(f"images lie in [{mn:.3f}, {mx:.3f}], outside the declared value_range "
                             f"{value_range}.{hint}")
    return ((images - lo) / (hi - lo)).clamp(0.0, 1.0)


def _prepare(images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """To (N, 1, 16, 16) in [0, 1]: checks the range, averages colour channels, resizes other sizes."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        got = f"shape {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor of shape (N, C, H, W); got {got}.")
    x = to_unit_range(images.float(), value_range)
    if x.shape[1] != 1:
        x = x.mean(dim=1, keepdim=True)
    if tuple(x.shape[2:]) != (DIGITS_SIZE, DIGITS_SIZE):
        x = F.interpolate(x, size=(DIGITS_SIZE, DIGITS_SIZE), mode="bilinear", align_corners=False, antialias=True)
    return x


@torch.no_grad()
def predict(images: torch.Tensor, *, value_range: tuple[float, float] = (0.0, 1.0),
            classifier: DigitsClassifier | None = None, batch_size: int = 512) -> torch.Tensor:
    """Class predictions (N,) of the digits classifier for images in ``value_range``."""
    x = _prepare(images, value_range)
    clf = classifier if classifier is not None else load_digits_classifier(x.device)
    clf.eval()
    return torch.cat([clf(chunk).argmax(1) for chunk in x.split(batch_size)]) if len(x) else x.new_zeros(0).long()


def class_conditional_accuracy(images: torch.Tensor, labels, *, value_range: tuple[float, float] = (0.0, 1.0),
                               classifier: DigitsClassifier | None = None) -> float:
    """Share of ``images`` that the digits classifier assigns to the requested ``labels``.

    Args:
        images: (N, C, H, W) float images in ``value_range``; colour is averaged to grey and other sizes are
            resized to 16x16.
        labels: (N,) requested classes in [0, 10).
        value_range: the range the images lie in: (0, 1) for data, (-1, 1) for generator outputs.
        classifier: a classifier to use instead of the shipped one.

    Returns:
        Accuracy in [0, 1].
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not len(images):
        raise ValueError("images must be a non-empty (N, C, H, W) tensor.")
    labels = validate_labels(labels, NUM_CLASSES, images.shape[0])
    preds = predict(images, value_range=value_range, classifier=classifier)
    return float((preds.cpu() == labels.cpu()).float().mean())


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean L2 distance over all pairs i != j of the rows of ``x`` flattened to vectors (needs N >= 2)."""
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"mean pairwise distance needs at least 2 images; got {n}.")
    flat = x.reshape(n, -1).double()
    d = torch.cdist(flat, flat)
    return float(d.sum() / (n * (n - 1)))


def _embed(x: torch.Tensor, space: str) -> torch.Tensor:
    if space == "pixel":
        return x
    with torch.no_grad():
        return load_digits_classifier(x.device).features(x)


def diversity_ratio(samples_by_class: Mapping[int, torch.Tensor], real_by_class: Mapping[int, torch.Tensor], *,
                    value_range: tuple[float, float] = (0.0, 1.0), real_value_range: tuple[float, float] = (0.0, 1.0),
                    space: str = "pixel", reduction: str = "mean") -> float | dict[int, float]:
    """Within-class diversity of samples relative to real images: about 1 is healthy, near 0 is mode collapse.

    For each class c in ``samples_by_class``: mean pairwise distance of the samples of c divided by the mean pairwise
    distance of the real images of c, both mapped to [0, 1] (and to 16x16 grey).

    Args:
        samples_by_class: class -> (N_c, C, H, W) samples, N_c >= 2, in ``value_range``.
        real_by_class: class -> (M_c, C, H, W) real images, M_c >= 2, in ``real_value_range``; needs every class of
            ``samples_by_class``.
        value_range: range of the samples ((-1, 1) for generator outputs).
        real_value_range: range of the real images ((0, 1) for vgzoo datasets).
        space: ``"pixel"`` (L2 in pixel space) or ``"features"`` (L2 between the classifier's penultimate features).
        reduction: ``"mean"`` (the mean of the per-class ratios) or ``"none"`` (a dict class -> ratio).
    """
    if space not in ("pixel", "features"):
        raise ValueError(f"space must be 'pixel' or 'features'; got {space!r}.")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none'; got {reduction!r}.")
    if not samples_by_class:
        raise ValueError("samples_by_class is empty: pass a dict class -> (N, C, H, W) samples.")
    missing = sorted(set(samples_by_class) - set(real_by_class))
    if missing:
        raise ValueError(f"real_by_class has no images of class(es) {missing}; pass real images of every class "
                         "sampled.")
    ratios: dict[int, float] = {}
    for cls in sorted(samples_by_class):
        fake = _embed(_prepare(samples_by_class[cls], value_range), space)
        real = _embed(_prepare(real_by_class[cls], real_value_range), space)
        reference = mean_pairwise_distance(real)
        if reference == 0.0:
            raise ValueError(f"the real images of class {cls} are all identical, so diversity has no reference.")
        ratios[int(cls)] = mean_pairwise_distance(fake) / reference
    if reduction == "none":
        return ratios
    return sum(ratios.values()) / len(ratios)


def real_digits_by_class(split: str = "all") -> dict[int, torch.Tensor]:
    """The built-in 16x16 digits of ``split`` as class -> (M_c, 1, 16, 16) images in [0, 1]."""
    from .data.digits import DigitsDataset

    ds = DigitsDataset(split=split, size=DIGITS_SIZE)
    return {c: ds.images[ds.labels == c] for c in range(NUM_CLASSES)}


@dataclass
class QualityScore:
    """What :func:`score_generator` measured."""

    accuracy: float
    diversity_ratio: float
    per_class_accuracy: dict[int, float] = field(default_factory=dict)
    per_class_diversity: dict[int, float] = field(default_factory=dict)
    per_class: int = 0
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def score_generator(model: nn.Module, per_class: int = 64, seed: int = 0, *, classes: list[int] | None = None,
                    real_by_class: Mapping[int, torch.Tensor] | None = None, space: str = "pixel") -> QualityScore:
    """Sample ``per_class`` images of every class from a conditional digits generator and score them.

    The model must provide ``sample(labels, generator=None)`` returning images in [-1, 1] (vgzoo's cgan family)
    and have 10 classes. It is put in eval mode for sampling and restored afterwards.

    Args:
        model: the conditional generator (e.g. ``vgzoo.create("cgan_embed_digits", pretrained=True)``).
        per_class: samples per class (>= 2).
        seed: seed of the latent draws (a CPU ``torch.Generator``), so scores are reproducible.
        classes: the classes to score (default all 10).
        real_by_class: reference images in [0, 1] (default: the built-in digits, all 1,797).
        space: ``"pixel"`` or ``"features"`` for the diversity ratio.

    Returns:
        A :class:`QualityScore` with the overall and per-class accuracy and diversity ratio.
    """
    num_classes = getattr(model, "num_classes", None) or getattr(model, "pretrained_cfg", {}).get("num_classes")
    if num_classes != NUM_CLASSES or not isinstance(model, ConditionalSampler):
        raise ValueError(
            f"score_generator scores conditional digit generators with 10 classes and a sample(labels) method; "
            f"got {type(model).__name__} with num_classes={num_classes!r}."
        )
    if per_class < 2:
        raise ValueError(f"per_class must be >= 2 (diversity needs pairs); got {per_class}.")
    classes = list(range(NUM_CLASSES)) if classes is None else [int(c) for c in classes]
    validate_labels(classes, NUM_CLASSES, what="classes")
    real = real_by_class if real_by_class is not None else real_digits_by_class()
    generator = torch.Generator().manual_seed(int(seed))
    was_training = model.training
    model.eval()
    try:
        samples = {c: model.sample(torch.full((per_class,), c, dtype=torch.long), generator=generator).cpu()
                   for c in classes}
    finally:
        model.train(was_training)
    per_acc = {c: class_conditional_accuracy(x, torch.full((per_class,), c), value_range=(-1.0, 1.0))
               for c, x in samples.items()}
    per_div = diversity_ratio(samples, real, value_range=(-1.0, 1.0), space=space, reduction="none")
    return QualityScore(
        accuracy=sum(per_acc.values()) / len(per_acc),
        diversity_ratio=sum(per_div.values()) / len(per_div),
        per_class_accuracy=per_acc,
        per_class_diversity=per_div,
        per_class=per_class,
        seed=int(seed),
    )
