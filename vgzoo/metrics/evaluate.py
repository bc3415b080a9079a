"""The evaluations behind ``vgzoo eval``: folders (FID/KID), translators, paired translators, generators, classifiers.

Every function returns a JSON-ready dict that records what was measured: the features, image counts, the resize
rule, KID's subset count and size, and the seed. Data arguments go through :func:`layout_folders` (by a task's
folder layout: :func:`data_folders`), the one place that turns a DATA argument into folders.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.images import require_finite
from ..errors import DataError, DataNotFoundError
from ..protocols import Classifier, ConditionalSampler, UnconditionalSampler
from .distances import (
    IS_SHUFFLE_SEED,
    IS_SPLITS,
    SMALL_SET,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    kid_subset_size,
)
from .features import (
    FeatureExtractor,
    cached_features,
    extract_features,
    folder_features,
    get_features,
    get_inception_logits,
    to_uint8,
)

__all__ = [
    "compare_features",
    "data_folders",
    "eval_classify",
    "eval_fid",
    "eval_generate",
    "eval_paired",
    "eval_translate",
    "layout_folders",
    "real_features",
    "sample_generator",
    "GENERATE_METRICS",
]

#: What ``vgzoo eval generate --metrics`` can report (FID and KID share one feature pass and come together).
GENERATE_METRICS = ("fid", "kid", "is")
_IS_PROTOCOL_IMAGES = 50000  # the sample count behind published Inception Scores (Salimans et al. 2016)

#: What each layout of :data:`vgzoo.tasks.DATA_LAYOUTS` expects, for the messages.
_LAYOUT_TEXT = {
    "domains": "DATA/{split}A and DATA/{split}B (the CycleGAN layout)",
    "pairs": "DATA/{split}/ of A|B side-by-side images (the pix2pix layout), or such a folder itself",
    "classes": "DATA/<class>/<image> (one sub-folder per class)",
}


def _require_torchmetrics(what: str) -> None:
    try:
        import torchmetrics  # noqa: F401
    except ImportError as exc:
        raise ImportError(f'{what} needs torchmetrics: pip install "vgzoo[metrics]"') from exc


# ----------------------------------------------------------------------------------------- data
def _dataset_root(spec: str | os.PathLike, progress: bool = True) -> Path:
    """A DATA argument -> its root folder: a folder, or a reference dataset name (``cyclegan:horse2zebra``, fetched
    into the cache by :mod:`vgzoo.data.reference` when missing)."""
    from ..data.reference import is_reference_spec, resolve_spec

    text = os.fspath(spec)
    if is_reference_spec(text):
        return resolve_spec(text, progress=progress)[1]
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    raise DataNotFoundError(f"data folder {text!r} does not exist; pass a folder of images or a reference dataset "
                            "name (vgzoo data list).")


def default_direction(spec: str | os.PathLike, direction: str | None) -> str:
    """``direction`` if given, else a reference dataset's own default (``pix2pix:facades`` is BtoA), else AtoB."""
    if direction is not None:
        return direction
    from ..data.reference import get_reference, is_reference_spec

    text = os.fspath(spec)
    return get_reference(text).direction if is_reference_spec(text) else "AtoB"


def data_folders(spec: str | os.PathLike, task: str, split: str) -> dict[str, Path]:
    """The folders a DATA argument stands for, for ``task`` and ``split``, in the layout its task record names
    (:attr:`vgzoo.tasks.Task.layout`, so a plugin task gets one too).

    - ``domains`` (``unpaired_translation``): ``{"A": DATA/{split}A, "B": DATA/{split}B}``.
    - ``pairs`` (``paired_translation``): ``{"pairs": DATA/{split}}`` (or DATA itself when it holds the images).
    - ``classes`` (``classification``): ``{"root": DATA/{split}}`` when that exists, else ``{"root": DATA}``.

    DATA is a folder or a reference dataset name (``cyclegan:horse2zebra``, ``pix2pix:facades``), fetched into
    ``$VGZOO_CACHE/datasets`` when missing (``VGZOO_OFFLINE=1`` forbids that).

    Raises:
        DataNotFoundError: a missing folder, naming the layout that was expected.
        DataError: a task whose record names no folder layout.
    """
    from ..tasks import get_task

    layout = get_task(task).layout
    if layout is None:
        raise DataError(f"no folder layout for task {task!r}; its task record names none (data_layout), and "
                        f"vgzoo eval reads {', '.join(_LAYOUT_TEXT)} folders.")
    return layout_folders(spec, layout, split)


def layout_folders(spec: str | os.PathLike, layout: str, split: str) -> dict[str, Path]:
    """The folders of ``split`` in a DATA argument laid out as ``layout`` (see :func:`data_folders`)."""
    root = _dataset_root(spec)
    if layout == "domains":
        folders = {side: root / f"{split}{side}" for side in ("A", "B")}
        missing = [str(p) for p in folders.values() if not p.is_dir()]
        if missing:
            subdirs = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise DataNotFoundError(
                f"{str(root)!r} lacks {', '.join(missing)}; expected {_LAYOUT_TEXT[layout].format(split=split)} "
                f"(found sub-folders: {subdirs or 'none'}); choose the split with --split."
            )
        return folders
    if layout == "pairs":
        from ..data.images import resolve_folder

        return {"pairs": resolve_folder(root, split, what="paired dataset folder")}
    if layout == "classes":
        candidate = root / split
        return {"root": candidate if split and candidate.is_dir() else root}
    raise DataError(f"no folder layout {layout!r}; expected one of {', '.join(_LAYOUT_TEXT)}.")


# ----------------------------------------------------------------------------------------- scores
def compare_features(real: torch.Tensor, fake: torch.Tensor, *, subsets: int = 100, subset_size: int = 1000,
                     seed: int = 0) -> dict[str, Any]:
    """FID and KID (mean, std over seeded subsets) of two feature sets, with what they were computed on."""
    notes: list[str] = []
    if min(len(real), len(fake)) < SMALL_SET:
        notes.append(f"fewer than {SMALL_SET} images in a set ({len(real)} real, {len(fake)} fake): FID is biased "
                     "upwards and KID has a large std; compare scores only at equal set sizes.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the small-set warning is in notes
        kid_mean, kid_std = kernel_inception_distance(real, fake, subsets=subsets, subset_size=subset_size, seed=seed)
    return {
        "fid": frechet_distance(real, fake),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "kid_subsets": int(subsets),
        "kid_subset_size": kid_subset_size(len(real), len(fake), subset_size),
        "seed": int(seed),
        "n_real": len(real),
        "n_fake": len(fake),
        "notes": notes,
    }


def eval_fid(real: str | os.PathLike, fake: str | os.PathLike, *, features: str | nn.Module = "inception",
             device: str | None = None, batch_size: int = 64, subsets: int = 100, subset_size: int = 1000,
             seed: int = 0, cache: bool = True, progress: bool = True, precision: str | None = "auto",
             compile: bool = False) -> dict[str, Any]:
    """FID and KID between the images under two folders (``vgzoo eval fid REAL FAKE``).

    ``device`` (default ``auto``), ``precision`` (default ``auto``) and ``compile`` are those of
    :mod:`vgzoo.inference`, for the feature network; ``precision="fp32"`` matches torch-fidelity's fp32 features."""
    extractor = get_features(features, device or "auto", precision, compile)
    real_f = folder_features(real, extractor, batch_size=batch_size, cache=cache, progress=progress,
                             what="real image folder")
    fake_f = folder_features(fake, extractor, batch_size=batch_size, cache=cache, progress=progress,
                             what="fake image folder")
    out = compare_features(real_f.features, fake_f.features, subsets=subsets, subset_size=subset_size, seed=seed)
    return {**out, **extractor.describe(), "real": real_f.describe(), "fake": fake_f.describe(),
            "notes": out["notes"] + _resize_notes(extractor, real_f, fake_f)}


def _resize_notes(extractor: FeatureExtractor, *sets) -> list[str]:
    notes = []
    for s in sets:
        if len(s.sizes) > 1:
            notes.append(f"{s.folder}: mixed image sizes {s.sizes}; every image was resized to "
                         f"{extractor.size[0]}x{extractor.size[1]} (PIL bicubic).")
        elif s.resized:
            notes.append(f"{s.folder}: images resized from {next(iter(s.sizes))} to "
                         f"{extractor.size[0]}x{extractor.size[1]} (PIL bicubic) for the {extractor.name} features.")
    return notes


def eval_translate(model: str | os.PathLike | nn.Module, data: str | os.PathLike, *, split: str = "test",
                   direction: str | None = None, features: str | nn.Module = "inception", pretrained: bool = False,
                   out: str | os.PathLike | None = None, device: str | None = None, batch_size: int = 8,
                   subsets: int = 100, subset_size: int = 1000, seed: int = 0, cache: bool = True,
                   progress: bool = True, precision: str | None = "auto", compile: bool = False) -> dict[str, Any]:
    """Translate DATA's ``{split}A`` (``BtoA``: ``{split}B``) with ``model`` and score the results against the other
    domain's images of the same split with FID/KID (``vgzoo eval translate``).

    The translated images are written as PNG to ``out`` (kept) or to a temporary folder (deleted). ``direction``
    defaults to a reference dataset's own (else AtoB). ``device``, ``precision`` and ``compile`` (see
    :mod:`vgzoo.inference`) apply to the translator and the feature network.
    """
    from ..translate import translate

    direction = default_direction(data, direction)
    folders = layout_folders(data, "domains", split)
    source, target = (folders["A"], folders["B"]) if direction == "AtoB" else (folders["B"], folders["A"])
    extractor = get_features(features, device or "auto", precision, compile)
    with tempfile.TemporaryDirectory(prefix="vgzoo-eval-") as tmp:
        out_dir = Path(out) if out is not None else Path(tmp)
        if out is not None and out_dir.exists() and any(out_dir.iterdir()):
            raise DataError(f"--out {str(out_dir)!r} is not empty; pass a new or empty folder "
                            "(nothing is overwritten).")
        written = translate(model, source, out_dir, direction=direction, batch_size=batch_size,
                            device=extractor.device, pretrained=pretrained, progress=progress, precision=precision,
                            compile=compile)
        real_f = folder_features(target, extractor, batch_size=batch_size, cache=cache, progress=progress,
                                 what=f"target domain folder ({split})")
        fake_f = folder_features(out_dir, extractor, batch_size=batch_size, cache=False, progress=progress,
                                 what="translated images")
    result = compare_features(real_f.features, fake_f.features, subsets=subsets, subset_size=subset_size, seed=seed)
    fake_desc = fake_f.describe()
    fake_desc.update(folder=str(out) if out is not None else None, source=str(source))
    return {**result, **extractor.describe(), "model": _model_name(model), "direction": direction, "split": split,
            "real": real_f.describe(), "fake": fake_desc, "translate_inference": written.inference,
            "notes": result["notes"] + _resize_notes(extractor, real_f)}


def _model_name(model) -> str:
    if isinstance(model, nn.Module):
        return (getattr(model, "pretrained_cfg", None) or {}).get("architecture", type(model).__name__)
    return str(model)


# ----------------------------------------------------------------------------------------- paired
def _lpips_metric(device: torch.device):
    """torchmetrics' LPIPS (AlexNet), whose ImageNet backbone torchvision fetches into torch hub's cache."""
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity
    from torchvision.models import AlexNet_Weights

    from .features import fetch_torch_hub_file

    fetch_torch_hub_file(AlexNet_Weights.IMAGENET1K_V1.url, "The AlexNet weights of LPIPS (pass --no-lpips to skip it)")
    return LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True, reduction="mean").to(device)


def _aligned_batches(ds, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    a_list, b_list = [], []
    for i in range(len(ds)):
        a, b = ds.load_pair(i)
        if a_list and (len(a_list) == batch_size or a_list[0].shape != a.shape or b_list[0].shape != b.shape):
            yield torch.stack(a_list), torch.stack(b_list)
            a_list, b_list = [], []
        a_list.append(a)
        b_list.append(b)
    if a_list:
        yield torch.stack(a_list), torch.stack(b_list)


@torch.no_grad()
def eval_paired(model: str | os.PathLike | nn.Module, data: str | os.PathLike, *, split: str = "val",
                direction: str | None = None, pretrained: bool = False, lpips: bool = True, lpips_metric=None,
                device: str | None = None, batch_size: int = 8, progress: bool = True) -> dict[str, Any]:
    """PSNR, SSIM (kornia.metrics), LPIPS (torchmetrics, AlexNet) and L1 of a paired translator over a split.

    Images keep their stored size (each half of the A|B file); outputs are clamped to [-1, 1] and compared with the
    targets in [0, 1]. PSNR and SSIM (11x11 Gaussian window) are computed per image and averaged over images.
    ``direction`` (which half is the input) defaults to a reference dataset's own (``pix2pix:facades``: BtoA), else
    AtoB.
    """
    import kornia.metrics
    from tqdm.auto import tqdm

    if lpips:
        _require_torchmetrics("LPIPS (vgzoo eval paired; --no-lpips skips it)")

    from .._runtime import check_device
    from ..data.aligned import AlignedDataset
    from ..translate import load_translator, translate_tensor

    dev = check_device(device, default="auto")
    direction = default_direction(data, direction)
    folder = layout_folders(data, "pairs", split)["pairs"]
    generator = load_translator(model, "AtoB", pretrained).to(dev).eval()
    in_chans = int(getattr(generator, "in_chans", 3))
    out_chans = int(getattr(generator, "out_chans", in_chans))
    ds = AlignedDataset(folder, phase=None, direction=direction, load_size=None, crop_size=None,
                        in_chans=in_chans, out_chans=out_chans)
    if len(ds) < 1:
        raise DataNotFoundError(f"paired dataset folder {str(folder)!r} holds no images.")
    metric = (lpips_metric or _lpips_metric(dev)) if lpips else None
    psnr, ssim, l1 = [], [], []
    with tqdm(total=len(ds), desc="paired", unit="img", disable=not progress, leave=False) as bar:
        for a, b in _aligned_batches(ds, batch_size):
            a, b = a.to(dev), b.to(dev)
            pred = require_finite(translate_tensor(generator, a * 2 - 1), "the translator's outputs",
                                  "nothing was scored")
            pred = (pred.clamp(-1, 1) + 1) / 2
            if pred.shape != b.shape:
                raise DataError(f"the model's output {tuple(pred.shape[1:])} does not match the targets "
                                f"{tuple(b.shape[1:])}; check --direction and the model's channels.")
            for p, t in zip(pred, b, strict=True):
                psnr.append(float(kornia.metrics.psnr(p[None], t[None], 1.0)))
                ssim.append(float(kornia.metrics.ssim(p[None], t[None], 11).mean()))
                l1.append(float((p - t).abs().mean()))
            if metric is not None:
                rgb = (lambda x: x.expand(-1, 3, -1, -1)) if out_chans == 1 else (lambda x: x)
                metric.update(rgb(pred), rgb(b))
            bar.update(len(a))
    n = len(psnr)
    return {
        "model": _model_name(model), "folder": str(folder), "split": split, "direction": direction, "num_images": n,
        "psnr": sum(psnr) / n, "ssim": sum(ssim) / n, "l1": sum(l1) / n,
        "lpips": float(metric.compute()) if metric is not None else None,
        "rule": "outputs clamped to [-1, 1] and mapped to [0, 1]; PSNR with max 1.0 and SSIM (11x11 Gaussian window) "
                "per image, then averaged; L1 mean absolute error in [0, 1]; LPIPS AlexNet (grey replicated to RGB)",
    }


# ----------------------------------------------------------------------------------------- generators
def _digits_real(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from ..data.digits import DigitsDataset

    ds = DigitsDataset(split=split)
    return (ds.images * 255.0).round().to(torch.uint8), ds.labels


def _folder_real(root: Path, extractor: FeatureExtractor, batch_size: int, cache: bool, progress: bool):
    """Features and labels of a folder: one sub-folder per class (labels by sorted name), or a flat folder."""
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        f = folder_features(root, extractor, batch_size=batch_size, cache=cache, progress=progress,
                            what="real image folder")
        return f.features, None, [f.describe()]
    feats, labels, desc = [], [], []
    for label, sub in enumerate(subdirs):
        f = folder_features(sub, extractor, batch_size=batch_size, cache=cache, progress=progress,
                            what=f"class folder {sub.name!r}")
        feats.append(f.features)
        labels.append(torch.full((len(f.features),), label, dtype=torch.long))
        desc.append(f.describe())
    return torch.cat(feats), torch.cat(labels), desc


def real_features(data: str | os.PathLike, features: str | nn.Module | FeatureExtractor = "digits", *,
                  split: str = "val", device: str | None = None, batch_size: int = 256, cache: bool = True,
                  progress: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Features (N, D) and labels (N,) or None of a real set: ``builtin:digits`` (its ``split``, by default the
    held-out ``val`` split the shipped weights never saw), a folder of class sub-folders, or a flat folder.

    Compute this once and pass it to :func:`vgzoo.metrics.training.evaluate_generator` at every evaluation.
    """
    extractor = get_features(features, device)
    text = os.fspath(data)
    if text == "builtin:digits":
        images, labels = _digits_real(split)
        # the digits are data shipped with scikit-learn: keyed by name, split and the split's indices
        from ..data.digits import DigitsDataset

        identity = {"data": "builtin:digits", "split": split,
                    "indices": hashlib.sha256(DigitsDataset(split=split).indices.numpy().tobytes()).hexdigest()}
        feats, _ = cached_features(identity, extractor, lambda: extract_features(
            images.split(batch_size), extractor, total=len(images), progress=progress), cache=cache)
        return feats, labels
    root = _dataset_root(text)
    folder = root / split if split and (root / split).is_dir() else root
    feats, labels, _ = _folder_real(folder, extractor, batch_size, cache, progress)
    return feats, labels


@torch.no_grad()
def sample_generator(model: nn.Module, labels: torch.Tensor | None, num: int, *, seed: int = 0,
                     batch_size: int = 256) -> torch.Tensor:
    """uint8 samples (N, C, H, W) of a generator, seeded: ``model.sample(labels, generator)`` for conditional models
    (labels given), ``model.sample(num, generator)`` for unconditional ones. Eval mode while sampling."""
    if not isinstance(model, (ConditionalSampler, UnconditionalSampler)):
        raise DataError(f"{type(model).__name__} has no sample() method; vgzoo eval generate scores generators "
                        "(tasks generation and conditional_generation).")
    gen = torch.Generator().manual_seed(int(seed))
    was_training = model.training
    model.eval()
    out = []
    try:
        what, done = f"{type(model).__name__}'s samples", "nothing was scored"
        if labels is not None:
            for chunk in labels.split(batch_size):
                out.append(to_uint8(require_finite(model.sample(chunk, generator=gen), what, done)).cpu())
        else:
            for start in range(0, num, batch_size):
                images = model.sample(min(batch_size, num - start), generator=gen)
                out.append(to_uint8(require_finite(images, what, done)).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)


def eval_generate(model: str | os.PathLike | nn.Module, *, real: str = "builtin:digits", split: str = "val",
                  features: str | nn.Module = "digits", pretrained: bool = False, per_class: int | None = None,
                  num_samples: int | None = None, shuffle_labels: bool = False, device: str | None = None,
                  batch_size: int = 256, subsets: int = 100, subset_size: int = 1000, seed: int = 0,
                  cache: bool = True, progress: bool = True, precision: str | None = "auto",
                  compile: bool = False, metrics: Sequence[str] = ("fid", "kid"),
                  is_logits: FeatureExtractor | None = None) -> dict[str, Any]:
    """FID/KID of a generator's samples against a real set, overall and per class, plus the class-conditional
    accuracy of the digits classifier when the real set is ``builtin:digits`` (``vgzoo eval generate``), and the
    Inception Score of the same samples when ``metrics`` names ``is``.

    Args:
        per_class: samples per class of a conditional model (default: as many as the real set has of that class).
        num_samples: samples of an unconditional model (default: as many as the real set).
        shuffle_labels: a control: the samples requested for class c are drawn with a randomly permuted label, so the
            scores describe a generator that ignores its label (per-class FID rises, accuracy falls to ~0.1).
        device, precision, compile: those of the feature network (:mod:`vgzoo.inference`); the generator samples
            in fp32 on the same device.
        metrics: any of ``fid``, ``kid`` (computed together, with the per-class scores) and ``is`` (the Inception
            Score over all samples: 10 splits, torch-fidelity's computation). The real set always sets which classes
            are drawn and how many samples.
        is_logits: the class-logits network of the Inception Score (default: the FID Inception's logits, fetched
            through the download layer as for ``--features inception``).
    """
    from .._factory import load_model

    unknown = sorted(set(metrics) - set(GENERATE_METRICS))
    if unknown or not metrics:
        raise DataError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}; choose from "
                        f"{', '.join(GENERATE_METRICS)} (comma-separated, e.g. fid,kid,is).")
    distances = "fid" in metrics or "kid" in metrics
    gen_model = load_model(model, pretrained=pretrained, needs=(ConditionalSampler, UnconditionalSampler))
    extractor = get_features(features, device or "auto", precision, compile)
    real_feats, real_labels = real_features(real, extractor, split=split, batch_size=batch_size,
                                            cache=cache, progress=False)
    cfg = getattr(gen_model, "pretrained_cfg", None) or {}
    num_classes = getattr(gen_model, "num_classes", None) or cfg.get("num_classes")
    conditional = isinstance(gen_model, ConditionalSampler)  # the capability decides, not the task's name
    gen_model = gen_model.to(extractor.device)
    result: dict[str, Any] = {"model": _model_name(model), "real": real, "split": split, **extractor.describe(),
                              "metrics": list(dict.fromkeys(metrics)), "notes": []}
    if conditional:
        if real_labels is None:
            raise DataError(f"{result['model']} is class-conditional, but the real set {real!r} has no classes; pass "
                            "builtin:digits or a folder with one sub-folder per class.")
        classes = sorted(int(c) for c in real_labels.unique())
        if max(classes) >= int(num_classes):
            raise DataError(f"the real set has {len(classes)} classes but the model has {num_classes}.")
        counts = {c: int((real_labels == c).sum()) for c in classes}
        wanted = torch.cat([torch.full((per_class or counts[c],), c, dtype=torch.long) for c in classes])
        drawn = wanted
        if shuffle_labels:
            drawn = wanted[torch.randperm(len(wanted), generator=torch.Generator().manual_seed(int(seed) + 1))]
        images = sample_generator(gen_model, drawn.to(next(gen_model.parameters()).device), len(drawn), seed=seed,
                                  batch_size=batch_size)
        if distances:
            fake_feats = extract_features(images.split(batch_size), extractor, total=len(images), progress=progress,
                                          desc="features samples")
            result.update(compare_features(real_feats, fake_feats, subsets=subsets, subset_size=subset_size,
                                           seed=seed))
            per: dict[str, Any] = {}
            for c in classes:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    per[str(c)] = compare_features(real_feats[real_labels == c], fake_feats[wanted == c],
                                                   subsets=subsets, subset_size=subset_size, seed=seed)
                per[str(c)].pop("notes")
            result["per_class"] = per
            result["class_fid_mean"] = sum(v["fid"] for v in per.values()) / len(per)
            result["class_kid_mean"] = sum(v["kid_mean"] for v in per.values()) / len(per)
        if distances and min(counts.values()) < SMALL_SET:
            result["notes"].append(f"per-class sets hold {min(counts.values())}-{max(counts.values())} real images: "
                                   "per-class FID is biased upwards by the small sets; compare per-class scores only "
                                   "between runs on the same real set.")
        if real == "builtin:digits":
            from ..quality import class_conditional_accuracy

            result["accuracy"] = class_conditional_accuracy(images.float() / 255.0, wanted)
        result["shuffle_labels"] = bool(shuffle_labels)
    else:
        n = num_samples or len(real_feats)
        images = sample_generator(gen_model, None, n, seed=seed, batch_size=batch_size)
        if distances:
            fake_feats = extract_features(images.split(batch_size), extractor, total=n, progress=progress,
                                          desc="features samples")
            result.update(compare_features(real_feats, fake_feats, subsets=subsets, subset_size=subset_size,
                                           seed=seed))
    if "is" in metrics:
        logits_net = is_logits or get_inception_logits(extractor.device, precision, compile)
        result.update(_inception_score_of(images, logits_net, batch_size, progress))
        if len(images) < _IS_PROTOCOL_IMAGES:
            result["notes"].append(f"IS over {len(images)} images (the reported protocol is {_IS_PROTOCOL_IMAGES} in "
                                   f"{IS_SPLITS} splits): compare only scores over equal numbers of images.")
    result["weight_source"] = cfg.get("weight_source")
    return result


def _inception_score_of(images: torch.Tensor, logits_net: FeatureExtractor, batch_size: int,
                        progress: bool) -> dict[str, Any]:
    """The Inception Score of uint8 samples, with what it was computed on."""
    logits = extract_features(images.split(batch_size), logits_net, total=len(images), progress=progress,
                              desc="IS logits")
    mean, std = inception_score(logits, IS_SPLITS, IS_SHUFFLE_SEED)
    out = {"is_mean": mean, "is_std": std, "is_splits": IS_SPLITS, "is_shuffle_seed": IS_SHUFFLE_SEED,
           "is_logits": logits_net.key, "is_num_images": len(images)}
    return out


# ----------------------------------------------------------------------------------------- classifiers
@torch.no_grad()
def eval_classify(model: str | os.PathLike | nn.Module, data: str | os.PathLike, *, split: str = "all",
                  pretrained: bool = False, device: str | None = None, batch_size: int = 64,
                  confusion_png: str | os.PathLike | None = None, progress: bool = True,
                  precision: str | None = "auto", compile: bool = False) -> dict[str, Any]:
    """Top-1 / top-5 accuracy and the confusion matrix (torchmetrics) of a classifier on labelled images
    (``vgzoo eval classify``). DATA is ``builtin:digits`` or a folder with one sub-folder per class, whose sorted
    names must be the model's classes (as many folders as the model has classes). ``device`` (default ``auto``),
    ``precision`` (default ``auto``, checked by top-1 agreement with fp32 on the first batch) and ``compile`` are
    those of :mod:`vgzoo.inference`."""
    from torchmetrics.functional.classification import multiclass_accuracy, multiclass_confusion_matrix
    from tqdm.auto import tqdm

    from .._factory import load_model
    from ..data.labelled import LabelledImageFolder
    from ..inference import GuardedRunner, inference_mode, prepare_module

    mode = inference_mode(device or "auto", precision, compile)
    dev = mode.device
    clf = load_model(model, pretrained=pretrained, needs=Classifier).to(dev).eval()
    run = GuardedRunner(prepare_module(clf, mode), mode, "logits", reference_fn=clf)
    cfg = getattr(clf, "pretrained_cfg", None) or {}
    channels, h, w = (int(s) for s in cfg.get("input_size", (3, 224, 224)))
    num_classes = int(getattr(clf, "num_classes", None) or cfg.get("num_classes"))
    if os.fspath(data) == "builtin:digits":
        from ..data.digits import DigitsDataset

        digits = DigitsDataset(split="val" if split == "all" else split, size=h)
        images, targets = digits.images, digits.labels
        if channels == 3:
            images = images.expand(-1, 3, -1, -1)
        class_names = digits.classes
        batches = ((images[i:i + batch_size], targets[i:i + batch_size]) for i in range(0, len(images), batch_size))
        total = len(images)
    else:
        root = layout_folders(data, "classes", split)["root"]
        ds = LabelledImageFolder(root, load_size=(h, w), channels=channels)
        class_names = ds.classes
        total = len(ds)

        def batches():
            for i in range(0, len(ds), batch_size):
                items = [ds[j] for j in range(i, min(i + batch_size, len(ds)))]
                yield torch.stack([it["image"] for it in items]), torch.stack([it["label"] for it in items])

        batches = batches()
    if len(class_names) != num_classes:
        raise DataError(f"{data!r} has {len(class_names)} class folders ({', '.join(class_names[:10])}...) but the "
                        f"model predicts {num_classes} classes; pass a folder with one sub-folder per model class.")
    mean = torch.tensor(cfg.get("mean", (0.5,) * channels), device=dev).view(1, -1, 1, 1)
    std = torch.tensor(cfg.get("std", (0.5,) * channels), device=dev).view(1, -1, 1, 1)
    logits, labels = [], []
    # one run: the batches share the weights' casts and the memory a batch frees (vgzoo.inference.GuardedRunner)
    with run, tqdm(total=total, desc="classify", unit="img", disable=not progress, leave=False) as bar:
        for x, y in batches:
            logits.append(run((x.to(dev) - mean) / std).float().cpu())
            labels.append(y)
            bar.update(len(x))
    logits_t, labels_t = torch.cat(logits), torch.cat(labels)
    top1 = float(multiclass_accuracy(logits_t, labels_t, num_classes, average="micro", top_k=1))
    top5 = (float(multiclass_accuracy(logits_t, labels_t, num_classes, average="micro", top_k=5))
            if num_classes >= 5 else None)
    confusion = multiclass_confusion_matrix(logits_t, labels_t, num_classes)
    result = {"model": _model_name(model), "data": os.fspath(data), "split": split, "num_images": len(labels_t),
              "top1": top1, "top5": top5, "classes": class_names, "confusion_matrix": confusion.tolist(),
              "input_size": [channels, h, w], "resize_rule": "PIL bicubic to the model's input_size",
              "inference": mode.to_dict()}
    if confusion_png is not None:
        result["confusion_png"] = str(save_confusion_png(confusion, class_names, confusion_png))
    return result


def save_confusion_png(confusion: torch.Tensor, class_names: list[str], path: str | os.PathLike) -> Path:
    """Draw a confusion matrix (rows true, columns predicted) as a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .._hub import atomic_write

    n = len(class_names)
    fig, ax = plt.subplots(figsize=(max(4, 0.45 * n + 2), max(4, 0.45 * n + 1.5)))
    ax.imshow(confusion.numpy(), cmap="Blues")
    if n <= 30:
        ax.set_xticks(range(n), class_names, rotation=90)
        ax.set_yticks(range(n), class_names)
        top = int(confusion.max()) or 1
        for i in range(n):
            for j in range(n):
                v = int(confusion[i, j])
                if v:
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                            color="white" if v > top / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    finally:
        plt.close(fig)
