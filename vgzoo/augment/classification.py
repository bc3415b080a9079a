"""Batched classification augmentation for the ViT family, on Kornia.

The training recipe follows the ViT/DeiT practice (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words";
Touvron et al. 2021, "Training data-efficient image transformers"): RandomResizedCrop (scale 0.08-1),
horizontal flip, colour jitter, optional RandAugment (Cubuk et al. 2020) or TrivialAugment (Muller & Hutter
2021), random erasing (Zhong et al. 2020), MixUp (Zhang et al. 2018) / CutMix (Yun et al. 2019), and
normalisation. Evaluation resizes by ``crop_pct``, centre-crops and normalises.

Kornia 0.9 facts designed around (checked against its source):

* Colour jitter is ``ColorJitter``, which uses torchvision's formulas (brightness multiplies, contrast and
  saturation blend with the grey mean / grey image), the jitter timm and DeiT train with; ``ColorJiggle``
  instead shifts brightness additively, scales contrast without the mean and scales saturation through an
  RGB -> HSV -> RGB round trip (about twice the time on CPU). No hue. 1-channel batches get brightness and
  contrast only. The random order of the steps is drawn once per Kornia call (torchvision: per image).
* Per-image stages run in sub-batches of :data:`CPU_CHUNK_IMAGES` on CPU (see there: whole-batch temporaries
  are fresh page-faulting mappings) and on the whole batch on accelerators. ``RandomResizedCrop`` uses
  ``cropping_mode="slice"`` (crop, then resize each box; ``"resample"`` warps the full image with a per-sample
  affine grid) and ``align_corners=False`` like torchvision, on CPU; on accelerators the batched ``"resample"``
  path (the per-image slices would each read a box back to the host).
* Kornia's ``p < 1`` augmentations (flip, erasing) transform every image and blend with ``torch.where``: no
  host sync, ideal on a GPU, an extra pass or two on CPU.
* ``RandAugment`` / ``TrivialAugment`` pick their operations once per *batch*, not per sample, and some
  RandAugment ops (colour ops) refuse 1-channel input. The pipeline applies the policy to
  ``auto_augment_groups`` slices of the batch, each drawing its own operations, and runs 1-channel images
  through it as grey RGB (replicated, then averaged back).
* ``RandomMixUpV2`` returns labels ``(B, 3)`` = (label, paired label, lam) with the image
  ``(1 - lam) * x + lam * x_paired``. ``RandomCutMixV2`` returns ``(num_mix, B, 3)``; with
  ``use_correct_lambda=True`` its lam is ``1 - box_area / image_area``, the share of the *original* image
  (the legacy default returns the box share and warns). The two lambdas thus weigh opposite labels; the
  pipeline turns both into soft targets ``(B, num_classes)`` that ``F.cross_entropy`` takes directly.
  Only one CutMix box is used: with ``num_mix > 1`` Kornia pastes later boxes over earlier ones while still
  reporting each box's full area, so the labels would not match the pixels.
* Kornia's MixUp draws lam uniformly from ``mixup_lambda`` (not from Beta(alpha, alpha)); CutMix draws it
  from Beta(``cutmix_beta``, ``cutmix_beta``).
* Mix augmentations gate the whole batch with ``p`` (all rows mixed or none).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import kornia.augmentation as K
import torch
from kornia.augmentation.auto import RandAugment, TrivialAugment
from torch import nn

from ._checks import AugmentInputError, SeededModule, check_images, normalize, normalize_

#: Images per Kornia call on CPU. Whole-batch intermediates of 64 x 3 x 224 x 224 floats (38.5 MB) are above
#: glibc's largest mmap threshold (32 MiB), so every one of the ~20 temporaries Kornia creates per call is a
#: fresh mapping that page-faults on first touch; on the reference 2-core machine that was over half the run
#: time. Sub-batches of 8 (4.8 MB) are recycled by the allocator and stay cache-resident.
CPU_CHUNK_IMAGES = 8

_RESAMPLE = {"bilinear": "BILINEAR", "bicubic": "BICUBIC", "nearest": "NEAREST"}


def kornia_resample(interpolation: str) -> str:
    """Kornia's resample name for a timm-style interpolation name (``bicubic`` -> ``BICUBIC``)."""
    try:
        return _RESAMPLE[interpolation.lower()]
    except KeyError:
        raise ValueError(
            f"interpolation {interpolation!r} is not supported; expected one of {', '.join(_RESAMPLE)}."
        ) from None


def mix_soft_targets(labels: torch.Tensor, num_classes: int, kind: str, smoothing: float = 0.0) -> torch.Tensor:
    """Soft targets ``(B, num_classes)`` from Kornia's MixUp/CutMix label output.

    Args:
        labels: ``RandomMixUpV2`` output ``(B, 3)`` or ``RandomCutMixV2`` output ``(1, B, 3)`` (columns: label,
            paired label, lambda).
        num_classes: number of classes.
        kind: ``"mixup"`` (lam weighs the paired label) or ``"cutmix"`` (``use_correct_lambda=True``: lam weighs
            the original label).
        smoothing: label smoothing applied on top.
    """
    if kind == "cutmix":
        if labels.dim() != 3 or labels.shape[0] != 1:
            raise ValueError(f"CutMix labels must be (1, B, 3), got {tuple(labels.shape)}")
        labels = labels[0]
        own, other, lam = labels[:, 0], labels[:, 1], labels[:, 2]
        w_own = lam
    elif kind == "mixup":
        own, other, lam = labels[:, 0], labels[:, 1], labels[:, 2]
        w_own = 1 - lam
    else:
        raise ValueError(f"kind must be 'mixup' or 'cutmix', got {kind!r}")
    oh_own = one_hot(own, num_classes, labels.dtype)
    oh_other = one_hot(other, num_classes, labels.dtype)
    soft = w_own[:, None] * oh_own + (1 - w_own)[:, None] * oh_other
    return smooth_targets(soft, smoothing)


def one_hot(labels: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """One-hot rows by scatter: ``F.one_hot`` reads the labels' range back to the host (a sync on a GPU)."""
    out = torch.zeros(labels.shape[0], num_classes, device=labels.device, dtype=dtype)
    return out.scatter_(1, labels.long().view(-1, 1), 1.0)


def smooth_targets(soft: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Label smoothing of soft targets: ``(1 - eps) * t + eps / num_classes``."""
    if smoothing <= 0:
        return soft
    return soft * (1 - smoothing) + smoothing / soft.shape[-1]


class _PerGroupPolicy(nn.Module):
    """An auto-augment policy applied to slices of the batch, each drawing its own operations.

    Kornia's policies choose operations once per call; slicing restores some per-sample variety. 1-channel
    images run as grey RGB (colour ops on grey leave it grey) and are averaged back.
    """

    def __init__(self, policy: nn.Module, groups: int) -> None:
        super().__init__()
        self.policy = policy
        self.groups = max(1, int(groups))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gray = x.shape[1] == 1
        if gray:
            x = x.expand(-1, 3, -1, -1)
        parts = [self.policy(chunk) for chunk in x.tensor_split(min(self.groups, x.shape[0]))]
        out = torch.cat(parts, 0)
        return out.mean(1, keepdim=True) if gray else out


class ClassificationTrainTransform(SeededModule):
    """Training augmentation for classifiers, batched on the input's device.

    Call ``t(x)`` for images only, or ``t(x, y)`` with integer labels ``(B,)`` to get ``(x, targets)``. The
    targets are soft ``(B, num_classes)`` floats when MixUp/CutMix or label smoothing are on, otherwise the
    labels unchanged; ``F.cross_entropy(logits, targets)`` takes either form.

    Args:
        input_size: ``(C, H, W)`` of the model; the crop size is ``(H, W)``.
        mean: per-channel mean for the normalisation.
        std: per-channel std for the normalisation.
        num_classes: number of classes (needed for soft targets).
        interpolation: ``bicubic``, ``bilinear`` or ``nearest`` for the resized crop.
        scale: RandomResizedCrop area range.
        ratio: RandomResizedCrop aspect-ratio range.
        hflip: horizontal flip probability.
        color_jitter: brightness/contrast/saturation strength for Kornia's ``ColorJitter`` (torchvision's
            formulas, as timm/DeiT use; no hue; 0 disables it).
        color_jitter_prob: probability of applying the colour jitter to an image.
        auto_augment: ``None``, ``"randaugment"`` or ``"trivialaugment"``.
        ra_n: RandAugment number of operations.
        ra_m: RandAugment magnitude on Kornia's 0-30 scale (27 = timm's ``rand-m9``, 9 of 10).
        auto_augment_groups: batch slices that draw their own auto-augment operations.
        re_prob: random-erasing probability (applied after normalisation, erased pixels = the mean colour).
        mixup: enable MixUp (Kornia ``RandomMixUpV2``).
        cutmix: enable CutMix (Kornia ``RandomCutMixV2`` with the paper's lambda).
        mix_prob: probability that a batch is mixed at all.
        switch_prob: with both enabled, probability of CutMix rather than MixUp for a batch.
        mixup_lambda: range of the uniform MixUp lambda.
        cutmix_beta: Beta parameter of the CutMix lambda.
        label_smoothing: smoothing of the returned soft targets.
        seed: makes the augmentation sequence reproducible (see :class:`~vgzoo.augment._checks.SeededModule`).
        check_range: refuse 0-255 or already-normalised input (one device sync per call).
        chunk_size: images per Kornia call for the per-image stages (crop to erasing); MixUp/CutMix always
            see the whole batch. ``None`` picks :data:`CPU_CHUNK_IMAGES` on CPU and the whole batch on
            accelerators. Every parameter is drawn per image either way; the chunking only changes how the
            draws are sequenced, so a seeded run repeats exactly for the same chunk size.
    """

    def __init__(
        self,
        *,
        input_size: Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        num_classes: int | None = None,
        interpolation: str = "bicubic",
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        hflip: float = 0.5,
        color_jitter: float = 0.4,
        color_jitter_prob: float = 1.0,
        auto_augment: str | None = None,
        ra_n: int = 2,
        ra_m: int = 27,
        auto_augment_groups: int = 4,
        re_prob: float = 0.25,
        mixup: bool = False,
        cutmix: bool = False,
        mix_prob: float = 1.0,
        switch_prob: float = 0.5,
        mixup_lambda: tuple[float, float] = (0.0, 1.0),
        cutmix_beta: float = 1.0,
        label_smoothing: float = 0.0,
        seed: int | None = None,
        check_range: bool = True,
        chunk_size: int | None = None,
    ) -> None:
        super().__init__(seed)
        chans, h, w = (int(v) for v in input_size)
        self.input_size = (chans, h, w)
        self.mean, self.std = tuple(mean), tuple(std)
        self.num_classes = num_classes
        self.check_range = check_range
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ValueError(f"chunk_size={chunk_size!r}: expected a positive int, or None for the device default.")
        self.chunk_size = chunk_size
        # Bilinear/nearest resizing stays inside [0, 1]; bicubic overshoots slightly and is clamped.
        self._clamp_crop = interpolation.lower() == "bicubic"
        self.label_smoothing = float(label_smoothing)
        self.mix_prob, self.switch_prob = float(mix_prob), float(switch_prob)
        if (mixup or cutmix or label_smoothing > 0) and not num_classes:
            raise ValueError(
                "MixUp/CutMix/label smoothing return soft targets (B, num_classes) and need num_classes; "
                "pass num_classes= or a config that has it."
            )
        crop = {"scale": tuple(scale), "ratio": tuple(ratio), "resample": kornia_resample(interpolation),
                "align_corners": False}
        # "slice" crops and resizes image by image (cheapest on CPU, one host sync per image on a GPU);
        # "resample" warps the whole batch through one per-sample affine grid. Both draw the same boxes.
        self.crop = K.RandomResizedCrop((h, w), cropping_mode="slice", **crop)
        self.crop_batched = K.RandomResizedCrop((h, w), cropping_mode="resample", **crop)
        self.flip = K.RandomHorizontalFlip(p=hflip) if hflip > 0 else nn.Identity()
        if color_jitter > 0:
            # Grey images have no saturation: they get brightness + contrast. No hue (timm's default too).
            sat = color_jitter if chans == 3 else 0.0
            self.color = K.ColorJitter(color_jitter, color_jitter, sat, 0.0, p=color_jitter_prob)
        else:
            self.color = nn.Identity()
        if auto_augment is None:
            self.auto = nn.Identity()
        elif auto_augment.lower() in ("randaugment", "rand", "ra"):
            self.auto = _PerGroupPolicy(RandAugment(n=ra_n, m=ra_m), auto_augment_groups)
        elif auto_augment.lower() in ("trivialaugment", "trivial", "ta"):
            self.auto = _PerGroupPolicy(TrivialAugment(), auto_augment_groups)
        else:
            raise ValueError(
                f"auto_augment={auto_augment!r}: expected None, 'randaugment' or 'trivialaugment'."
            )
        self.erase = K.RandomErasing(p=re_prob, value=0.0) if re_prob > 0 else nn.Identity()
        self.mixup = K.RandomMixUpV2(lambda_val=tuple(mixup_lambda), p=1.0, data_keys=["input", "class"]) \
            if mixup else None
        self.cutmix = K.RandomCutMixV2(num_mix=1, beta=cutmix_beta, p=1.0, data_keys=["input", "class"],
                                       use_correct_lambda=True) if cutmix else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None):
        check_images(x, "ClassificationTrainTransform input", self.check_range)
        if x.shape[1] != self.input_size[0]:
            raise AugmentInputError(
                f"ClassificationTrainTransform: the images have {x.shape[1]} channel(s), the model expects "
                f"{self.input_size[0]} (input_size {self.input_size})."
            )
        mixing = self.mixup is not None or self.cutmix is not None
        if mixing and y is None:
            raise ValueError("MixUp/CutMix mix labels too: call the transform as t(images, labels).")
        with self.rng_scope(x.device):
            chunk = self.chunk_size or (CPU_CHUNK_IMAGES if x.device.type == "cpu" else x.shape[0])
            if x.shape[0] <= chunk:
                x = self._per_image(x)
            else:
                x = torch.cat([self._per_image(part) for part in x.split(chunk)])
            if y is None:
                return x
            soft = None
            if mixing and float(torch.rand(())) < self.mix_prob:
                use_cutmix = self.mixup is None or (
                    self.cutmix is not None and float(torch.rand(())) < self.switch_prob)
                if use_cutmix:
                    x, labels = self.cutmix(x, y)
                    soft = mix_soft_targets(labels, self.num_classes, "cutmix", self.label_smoothing)
                else:
                    x, labels = self.mixup(x, y)
                    soft = mix_soft_targets(labels, self.num_classes, "mixup", self.label_smoothing)
            elif mixing or self.label_smoothing > 0:
                soft = smooth_targets(one_hot(y, self.num_classes, x.dtype), self.label_smoothing)
            return x, (soft if soft is not None else y)


    def _per_image(self, x: torch.Tensor) -> torch.Tensor:
        """Crop, flip, colour, auto-augment, normalise, erase: every parameter drawn per image."""
        out = self.crop(x) if x.device.type == "cpu" else self.crop_batched(x)
        owned = out.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
        if self._clamp_crop:
            out = out.clamp_(0, 1) if owned else out.clamp(0, 1)
        out = self.auto(self.color(self.flip(out)))
        if owned and out.untyped_storage().data_ptr() != x.untyped_storage().data_ptr():
            out = normalize_(out, self.mean, self.std)
        else:
            out = normalize(out, self.mean, self.std)
        return self.erase(out)


class ClassificationEvalTransform(SeededModule):
    """Evaluation transform: resize by ``crop_pct``, centre crop, normalise (timm's eval recipe).

    The shorter side is resized to ``floor(size / crop_pct)`` (both sides for a non-square ``input_size``),
    with antialiasing, then the centre ``(H, W)`` is cut. ``t(x, y)`` returns ``(x, y)``.
    """

    def __init__(
        self,
        *,
        input_size: Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        crop_pct: float = 0.875,
        interpolation: str = "bicubic",
        check_range: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        chans, h, w = (int(v) for v in input_size)
        self.input_size = (chans, h, w)
        self.mean, self.std = tuple(mean), tuple(std)
        self.check_range = check_range
        if not 0 < crop_pct <= 1:
            raise ValueError(f"crop_pct={crop_pct}: expected a fraction in (0, 1].")
        if h == w:
            scale_size: int | tuple[int, int] = math.floor(h / crop_pct)
        else:
            scale_size = (math.floor(h / crop_pct), math.floor(w / crop_pct))
        self.resize = K.Resize(scale_size, side="short", resample=kornia_resample(interpolation), antialias=True)
        self.center = K.CenterCrop((h, w))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None):
        check_images(x, "ClassificationEvalTransform input", self.check_range)
        x = self.center(self.resize(x).clamp(0, 1))
        x = normalize(x, self.mean, self.std)
        return x if y is None else (x, y)
