"""Learned label maps: one spatial plane per class, for conditioning convolutional GANs on a class label.

The conditional GAN of Mirza & Osindero (2014) feeds the class label y to both the generator and the
discriminator. For convolutional networks a common way to do so is a learned embedding of y with one
value per pixel of a feature map, reshaped to a single extra channel and concatenated to the features
(or to the image), so that image and class information sit in one tensor.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch
from torch import nn

from .exporting import is_exporting

__all__ = ["LabelMap", "validate_labels", "label_values_checked"]

_VALUES_CHECKED = contextvars.ContextVar("vgzoo_label_values_checked", default=False)


@contextlib.contextmanager
def label_values_checked() -> Iterator[None]:
    """Inside this block, :func:`validate_labels` trusts the values of labels on an accelerator.

    Reading a GPU tensor's values back stops the host until the GPU catches up. The trainer checks each batch's
    labels on the CPU, before copying them to the device, and runs the step in this block, so a model that
    validates its labels at every call does not read them back two to four times per step. Dtype, shape and
    batch size are still checked (they cost no read); CPU tensors are always checked in full.
    """
    token = _VALUES_CHECKED.set(True)
    try:
        yield
    finally:
        _VALUES_CHECKED.reset(token)


def _tracing() -> bool:
    """A graph is being traced (``torch.compile`` or an export): tensor values are not known."""
    return torch.compiler.is_compiling() or is_exporting()


def _trusted(labels: torch.Tensor) -> bool:
    """Labels on an accelerator inside :func:`label_values_checked` (checked on the host already)."""
    return labels.device.type != "cpu" and _VALUES_CHECKED.get()


def validate_labels(labels, num_classes: int, batch_size: int | None = None, *, what: str = "labels") -> torch.Tensor:
    """Check a batch of class labels and return it as a 1-D integer tensor.

    The values are read only in eager code: not while ``torch.compile`` or an export traces a graph (they are not
    known then, and a data-dependent check would break the graph; the model's entry points, which the trainer does
    not compile, have checked them), nor for labels on an accelerator inside :func:`label_values_checked`.

    Args:
        labels: a 1-D integer tensor (or a sequence of Python ints) of class indices.
        num_classes: labels must lie in ``[0, num_classes)``.
        batch_size: when given, the number of labels must equal it (the batch of z or of images).
        what: how the error message names the labels.

    Raises:
        ValueError: the labels are not integers, not 1-D, out of range, or of the wrong batch size.
            The message names what was received and the valid range.
    """
    if not isinstance(labels, torch.Tensor):
        try:
            labels = torch.as_tensor(labels)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(
                f"{what} must be a 1-D tensor of integer class indices in [0, {num_classes}); "
                f"got {type(labels).__name__} that cannot be turned into a tensor ({exc})."
            ) from exc
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise ValueError(
            f"{what} must be integer class indices in [0, {num_classes}) (dtype int64 or another integer type); "
            f"got a {labels.dtype} tensor. Convert with labels.long() if the values are whole numbers."
        )
    if labels.ndim != 1:
        raise ValueError(
            f"{what} must be a 1-D tensor of shape (batch,) of class indices in [0, {num_classes}); "
            f"got shape {tuple(labels.shape)}."
        )
    if batch_size is not None and labels.shape[0] != batch_size:
        raise ValueError(
            f"{what} has {labels.shape[0]} entries but the batch has {batch_size}: pass one label per sample "
            f"(class indices in [0, {num_classes}))."
        )
    if labels.numel() and not _tracing() and not _trusted(labels):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        if bad.numel():
            shown = sorted(set(bad.tolist()))[:8]
            raise ValueError(
                f"{what} must lie in [0, {num_classes}) (this model has {num_classes} classes); "
                f"got out-of-range value(s) {shown}."
            )
    return labels.long()


class LabelMap(nn.Module):
    """``Embedding(num_classes, height * width)`` reshaped to one feature plane ``(B, 1, height, width)``.

    One learned vector per class, with exactly one value per pixel of the map it is concatenated to.

    Args:
        num_classes: number of classes.
        height: height of the map.
        width: width of the map (defaults to ``height``).
    """

    def __init__(self, num_classes: int, height: int, width: int | None = None) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"LabelMap: num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.height = height
        self.width = height if width is None else width
        self.embed = nn.Embedding(num_classes, self.height * self.width)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        """Labels ``(B,)`` -> maps ``(B, 1, height, width)``."""
        return self.embed(labels).view(labels.shape[0], 1, self.height, self.width)

    def concat(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Concatenate the label map to ``x`` ``(B, C, height, width)`` as channel ``C``."""
        return torch.cat([x, self(labels).to(x.dtype)], dim=1)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, size=({self.height}, {self.width})"
