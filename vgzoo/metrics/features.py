"""Feature extractors for FID/KID and the image pipeline that feeds them, with a per-folder feature cache.

Three kinds of features (``--features``):

- ``inception``: the standard FID Inception-v3 (pool3, 2048 dims; the TensorFlow 2015 weights ported by
  torch-fidelity, run through torchmetrics' ``NoTrainInceptionV3``). The weights are fetched on first use through
  vgzoo's download layer (``VGZOO_MIRROR``, the timeouts) into ``VGZOO_CACHE/downloads/``; a copy already in torch
  hub's cache is used instead. ``VGZOO_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` forbids the download and a missing file
  raises one :class:`~vgzoo.errors.OfflineError` naming the URL and the destination (a failed download:
  :class:`~vgzoo.errors.DownloadError`, same message).
- ``digits``: the shipped 16x16 digits classifier of :mod:`vgzoo.quality` (its 64-d penultimate features).
- any classification model name or folder: its pooled pre-logit features
  (``forward_head(forward_features(x), pre_logits=True)``), input normalised with its ``mean``/``std``.

The Inception Score reads the same network's class logits instead (:func:`get_inception_logits`, torch-fidelity's
``logits_unbiased``, 1008 classes), from the same weights file.

The image rule (:data:`RESIZE_RULE`) follows clean-fid's note on resizing (Parmar et al. 2022, "On Aliased Resizing
and Surprising Subtleties in GAN Evaluation"): tensor libraries' bilinear resize without antialiasing aliases and
shifts FID, while PIL's bicubic filter is antialiased. Every image, from a file or from a generator in memory, is
first an 8-bit image (generator outputs are quantised exactly as when saved to PNG), converted to the extractor's
channels by PIL's rules and resized with PIL bicubic to the extractor's input size, so a folder of saved samples and
the same samples in memory give identical features.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..data.images import to_uint8
from ..errors import DataError, DownloadError, InputSizeError, OfflineError, VgzooError
from ..protocols import Classifier

__all__ = [
    "FeatureExtractor",
    "FeaturesError",
    "FolderFeatures",
    "RESIZE_RULE",
    "cache_dir",
    "conform_uint8",
    "extract_features",
    "folder_features",
    "get_features",
    "get_inception_logits",
    "inception_weights_path",
    "is_offline",
    "to_uint8",
]

OFFLINE_ENVS = ("VGZOO_OFFLINE", "HF_HUB_OFFLINE")
RESIZE_RULE = (
    "8-bit images (generator outputs quantised as when saved to PNG); grey replicated to RGB or RGB to grey with "
    "PIL's ITU-R 601-2 luma, as the features need; resized with PIL bicubic (antialiased, clean-fid's recommendation) "
    "to the features' input size when it differs"
)
_CACHE_VERSION = 1
_PATCH_LOCK = threading.Lock()


class FeaturesError(VgzooError, ValueError):
    """A features name or model that cannot serve as a feature extractor."""


def is_offline() -> bool:
    """Whether ``VGZOO_OFFLINE`` or ``HF_HUB_OFFLINE`` forbid downloads."""
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on") for name in OFFLINE_ENVS)


def cache_dir() -> Path:
    """vgzoo's cache folder: ``$VGZOO_CACHE`` or ``~/.cache/vgzoo`` (the download layer's)."""
    from ..download import cache_dir as download_cache_dir

    return download_cache_dir()


# ----------------------------------------------------------------------------------------- extractors
@dataclass
class FeatureExtractor:
    """A feature network and the input it takes.

    ``forward`` maps a uint8 batch (N, channels, H, W) already on ``device`` (conformed with :func:`conform_uint8`)
    to float features (N, dim).
    """

    name: str
    key: str  # identity of the network: includes a fingerprint of the weights (see cache_key for the precision)
    channels: int
    size: tuple[int, int]
    dim: int
    forward: Callable[[torch.Tensor], torch.Tensor]
    device: torch.device
    module: nn.Module | None = None
    mode: Any = None  # the vgzoo.inference.InferenceMode the features run in (None: fp32 on device)

    def cache_key(self) -> str:
        """The identity of features in the cache: the network's key, plus the reduced precision running now.

        Read it after extracting: the quality guard may have switched the run to fp32 on the first batch, and
        those features are fp32's."""
        running = self.mode is not None and self.mode.precision.enabled
        return f"{self.key}:{self.mode.dtype_name}" if running else self.key

    def describe(self) -> dict[str, Any]:
        out = {"features": self.name, "feature_dim": self.dim, "input_size": [self.channels, *self.size],
               "resize_rule": RESIZE_RULE}
        return {**out, "inference": self.mode.to_dict()} if self.mode is not None else out


def inception_weights_url() -> str:
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    return URL_INCEPTION_V3


def inception_weights_path() -> Path:
    """Where the FID Inception weights are read from (see :func:`fetch_torch_hub_file`)."""
    return _weights_path(inception_weights_url())


def _weights_path(url: str) -> Path:
    """A file already in torch hub's cache (``$TORCH_HOME/hub/checkpoints``, where torch-fidelity, torchmetrics and
    torchvision put it) is used where it is; otherwise the file lives in vgzoo's cache under ``downloads/``."""
    hub = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
    if hub.is_file():
        return hub
    from ..download import cache_path

    return cache_path(_download_relpath(url))


def _download_relpath(url: str) -> str:
    from urllib.parse import urlsplit

    return "downloads/" + urlsplit(url).path.lstrip("/")


def _missing_weights_error(what: str, url: str, path: Path, cause: str, cls: type = OfflineError) -> Exception:
    return cls(
        f"{what} are not in the cache ({cause}). Download {url} and save it as {str(path)!r} (vgzoo's cache; "
        "a copy in torch hub's cache, $TORCH_HOME/hub/checkpoints, is used too), or allow downloads (unset "
        "VGZOO_OFFLINE / HF_HUB_OFFLINE)."
    )


def fetch_torch_hub_file(url: str, what: str) -> Path:
    """A published weights file that torch libraries would fetch through torch hub, fetched through vgzoo's download
    layer instead: ``VGZOO_MIRROR``, ``VGZOO_OFFLINE`` (and ``HF_HUB_OFFLINE``), the timeouts and the low-speed
    limit apply, and its SHA-256 is recorded. A copy already in torch hub's cache is used as it is.

    Raises:
        OfflineError: offline and the file is in neither cache (names the URL and where to put the file).
        DownloadError: the download failed.
    """
    from ..download import OFFLINE_ENV, fetch

    path = _weights_path(url)
    if path.is_file() and path.parent.name == "checkpoints":
        return path
    if is_offline() and not path.is_file():
        raise _missing_weights_error(what, url, path, f"downloads are off: {OFFLINE_ENV} or HF_HUB_OFFLINE is set")
    try:
        path = fetch(url, _download_relpath(url), desc=os.path.basename(url))
    except OfflineError as exc:
        raise _missing_weights_error(what, url, path, str(exc)) from None
    except DownloadError as exc:
        raise _missing_weights_error(what, url, path, f"download failed: {exc}", DownloadError) from exc
    return path


# the Inception network's outputs vgzoo reads: its layer name in torch-fidelity -> (extractor name, dim)
_INCEPTION_LAYERS = {"2048": ("inception", 2048), "logits_unbiased": ("inception-logits", 1008)}


def _load_inception(device: torch.device, layer: str = "2048") -> FeatureExtractor:
    """The FID Inception-v3 returning ``layer``: pool3 features (FID/KID) or the class logits (Inception Score)."""
    try:
        import torch_fidelity.feature_extractor_inceptionv3 as tfi
        from torchmetrics.image.fid import NoTrainInceptionV3
    except ImportError as exc:
        raise ImportError('--features inception needs torchmetrics and torch-fidelity: pip install "vgzoo[metrics]"'
                          ) from exc
    path = fetch_torch_hub_file(inception_weights_url(), "The FID Inception-v3 weights")
    # torch-fidelity unpickles its weights with weights_only=False; read them as plain tensors instead and hand them to
    # its constructor in place of its own loader
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    original = tfi.load_state_dict_from_url
    with _PATCH_LOCK:
        tfi.load_state_dict_from_url = lambda *args, **kwargs: state
        try:
            net = NoTrainInceptionV3(name="inception-v3-compat", features_list=[layer])
        finally:
            tfi.load_state_dict_from_url = original
    net = net.to(device)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return net(x)

    name, dim = _INCEPTION_LAYERS[layer]
    key = f"inception-v3-compat:{'pool3' if layer == '2048' else layer}:{dim}"
    return FeatureExtractor(name, key, 3, (299, 299), dim, forward, device, net)


def _load_digits(device: torch.device) -> FeatureExtractor:
    from ..quality import DIGITS_SIZE, classifier_weights_path, load_digits_classifier

    clf = load_digits_classifier(device)
    digest = hashlib.sha256(classifier_weights_path().read_bytes()).hexdigest()[:16]

    def forward(x: torch.Tensor) -> torch.Tensor:
        return clf.features(x.float() / 255.0)

    dim = clf.head.in_features
    return FeatureExtractor("digits", f"digits:{digest}", 1, (DIGITS_SIZE, DIGITS_SIZE), dim, forward, device, clf)


def _weights_fingerprint(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(flat.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return h.hexdigest()[:16]


def _load_classifier(spec: str | nn.Module, device: torch.device) -> FeatureExtractor:
    from .._factory import load_model

    # a name means its published weights (random weights give meaningless features); folders carry their own
    model = load_model(spec, pretrained=True, needs=Classifier)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    name = spec if isinstance(spec, str) else cfg.get("architecture", type(model).__name__)
    if not isinstance(model, Classifier):
        raise FeaturesError(
            f"{name!r} has no forward_features/forward_head(pre_logits=True), so it has no pooled pre-logit features; "
            "use --features inception, digits, or a vgzoo/timm-style classification model."
        )
    size = cfg.get("input_size")
    if not (isinstance(size, (list, tuple)) and len(size) == 3):
        raise FeaturesError(f"{name!r} declares no input_size (C, H, W) in its pretrained_cfg, so images cannot be "
                            "sized for it; save it with vgzoo.save_pretrained so its config travels with it.")
    channels, h, w = (int(s) for s in size)
    if channels not in (1, 3):
        raise FeaturesError(f"{name!r} takes {channels}-channel images; features can be taken from 1- or 3-channel "
                            "models only.")
    model = model.eval().requires_grad_(False).to(device)
    mean = torch.tensor(cfg.get("mean", (0.5,) * channels), dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.tensor(cfg.get("std", (0.5,) * channels), dtype=torch.float32, device=device).view(1, -1, 1, 1)

    def forward(x: torch.Tensor) -> torch.Tensor:
        x = (x.float() / 255.0 - mean) / std
        out = model.forward_head(model.forward_features(x), pre_logits=True)
        return out.flatten(1)

    try:
        with torch.no_grad():
            dim = forward(torch.zeros(1, channels, h, w, dtype=torch.uint8, device=device)).shape[1]
    except (RuntimeError, ValueError) as exc:
        raise InputSizeError(
            f"{name!r} fails on its own declared input size {channels}x{h}x{w} ({exc}); its config does not match its "
            "weights: pass a model whose pretrained_cfg input_size it accepts."
        ) from exc
    key = f"model:{cfg.get('architecture', type(model).__name__)}:{_weights_fingerprint(model)}"
    return FeatureExtractor(str(name), key, channels, (h, w), int(dim), forward, device, model)


_EXTRACTOR_CACHE: dict[tuple[str, str], FeatureExtractor] = {}


def get_features(spec: str | nn.Module | FeatureExtractor = "inception",
                 device: str | torch.device | None = None, precision: str | None = "fp32",
                 compile: bool = False) -> FeatureExtractor:
    """The feature extractor named by ``spec``: ``"inception"``, ``"digits"``, a classification model name (its
    published weights), a saved folder, a ``local-dir:``/``hf-hub:`` source, or a built classification model.

    ``device`` (default: the CPU; ``auto``: CUDA when present), ``precision`` and ``compile`` are those of
    :mod:`vgzoo.inference`; a reduced precision is checked against fp32 on the first batch (relative feature error),
    and its name joins the cache key, so features of different precisions are never mixed. Training-time
    evaluation keeps the fp32 default; ``vgzoo eval`` passes ``auto``.

    Raises:
        OfflineError, DownloadError: the Inception weights are missing and cannot be downloaded (the message says where
            to put them).
        FeaturesError: a model that is not a classifier with pooled pre-logit features and a declared input size.
    """
    from ..inference import inference_mode

    if isinstance(spec, FeatureExtractor):
        return spec
    mode = inference_mode(device or "cpu", precision, compile)
    dev = mode.device
    if isinstance(spec, nn.Module):
        return _with_mode(_load_classifier(spec, dev), mode)
    if spec not in ("inception", "digits"):  # models are loaded each time: a folder's weights may have changed
        return _with_mode(_load_classifier(str(spec), dev), mode)
    key = (str(spec), str(dev), mode.dtype_name, mode.compile)
    if key not in _EXTRACTOR_CACHE:
        _EXTRACTOR_CACHE[key] = _with_mode(_load_inception(dev) if spec == "inception" else _load_digits(dev), mode)
    return _EXTRACTOR_CACHE[key]


def get_inception_logits(device: str | torch.device | None = None, precision: str | None = "fp32",
                         compile: bool = False) -> FeatureExtractor:
    """The FID Inception-v3's class logits (torch-fidelity's ``logits_unbiased``, 1008 dims), for the Inception
    Score; same weights, download path and errors as :func:`get_features` ``("inception")``."""
    from ..inference import inference_mode

    mode = inference_mode(device or "cpu", precision, compile)
    key = ("inception-logits", str(mode.device), mode.dtype_name, mode.compile)
    if key not in _EXTRACTOR_CACHE:
        _EXTRACTOR_CACHE[key] = _with_mode(_load_inception(mode.device, "logits_unbiased"), mode)
    return _EXTRACTOR_CACHE[key]


def _with_mode(extractor: FeatureExtractor, mode) -> FeatureExtractor:
    """The extractor running in ``mode``: compiled if asked, autocast with the first-batch guard, keyed by precision."""
    from ..inference import GuardedRunner

    if not mode.precision.enabled and not mode.compile:
        extractor.mode = mode  # fp32, eager: the extractor as loaded, its cache key unchanged
        return extractor
    plain = extractor.forward
    run = torch.compile(plain) if mode.compile else plain
    return FeatureExtractor(extractor.name, extractor.key, extractor.channels, extractor.size, extractor.dim,
                            GuardedRunner(run, mode, "features", reference_fn=plain), extractor.device,
                            extractor.module, mode)


# ----------------------------------------------------------------------------------------- images
def _luma(x: torch.Tensor) -> torch.Tensor:
    """RGB uint8 (N, 3, H, W) -> grey (N, 1, H, W) exactly as PIL's convert("L") (ITU-R 601-2, fixed point)."""
    r, g, b = (x[:, i].to(torch.int32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8).unsqueeze(1)


def _pil_resize(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, C) uint8 -> (h, w, C) uint8 by PIL bicubic."""
    img = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    out = np.asarray(img.resize((size[1], size[0]), Image.Resampling.BICUBIC))
    return out[..., None] if out.ndim == 2 else out


def conform_uint8(images: torch.Tensor, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (N, C, H, W), C in {1, 3} -> (N, channels, *size) by the rule in :data:`RESIZE_RULE` (on CPU when
    resizing, since PIL does it)."""
    c = images.shape[1]
    if c == 4:
        images = images[:, :3]  # PIL's RGBA -> RGB drops alpha too
        c = 3
    if c not in (1, 3):
        raise DataError(f"images have {c} channels; expected 1 (grey) or 3 (RGB).")
    if c == 3 and channels == 1:
        images = _luma(images)
    elif c == 1 and channels == 3:
        images = images.expand(-1, 3, -1, -1)
    if tuple(images.shape[2:]) != tuple(size):
        device = images.device
        arr = images.permute(0, 2, 3, 1).cpu().numpy()
        images = torch.from_numpy(np.stack([_pil_resize(a, size) for a in arr])).permute(0, 3, 1, 2).to(device)
    return images.contiguous()


def _read_file(path: Path, channels: int, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """One file -> (h, w, channels) uint8 resized by the rule, and its original (H, W)."""
    from ..data.images import load_image

    img = load_image(path, channels)  # L/RGB, or F in [0, 255] for 16-bit grey
    original = (img.height, img.width)
    if (img.height, img.width) != tuple(size):
        img = img.resize((size[1], size[0]), Image.Resampling.BICUBIC)
    arr = np.asarray(img)
    if img.mode == "F":
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
        if channels == 3:
            arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim == 2:
        arr = arr[..., None]
    return arr, original


@torch.no_grad()
def extract_features(batches: Iterable[torch.Tensor], extractor: FeatureExtractor, *, total: int | None = None,
                     progress: bool = True, desc: str = "features") -> torch.Tensor:
    """Features (N, dim) float32 on CPU of uint8 batches (N, C, H, W), conformed and run on the extractor's device."""
    from tqdm.auto import tqdm

    from ..inference import GuardedRunner, inference_run

    out: list[torch.Tensor] = []
    run = extractor.forward if isinstance(extractor.forward, GuardedRunner) else inference_run(extractor.device)
    with run, tqdm(total=total, desc=desc, unit="img", disable=not progress, leave=False) as bar:  # one run
        for batch in batches:
            x = conform_uint8(batch, extractor.channels, extractor.size).to(extractor.device)
            out.append(extractor.forward(x).float().cpu())
            bar.update(len(batch))
    if not out:
        return torch.zeros(0, extractor.dim)
    return torch.cat(out)


@dataclass
class FolderFeatures:
    """The features of one folder and what was done to its images."""

    folder: str
    features: torch.Tensor
    num_images: int
    sizes: dict[str, int] = field(default_factory=dict)  # "HxW" -> count, of the files as stored
    resized: int = 0
    cache_hit: bool = False
    cache_file: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"folder": self.folder, "num_images": self.num_images, "image_sizes": self.sizes,
                "resized": self.resized, "cache_hit": self.cache_hit}


def _file_entries(files: Sequence[Path], root: Path) -> list[list]:
    entries = []
    for f in files:
        st = f.stat()
        entries.append([f.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns])
    return entries


def _cache_key(entries: list[list], extractor: FeatureExtractor) -> str:
    blob = json.dumps({"v": _CACHE_VERSION, "features": extractor.cache_key(), "rule": RESIZE_RULE,
                       "size": list(extractor.size), "files": entries}, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def cached_features(identity: dict, extractor: FeatureExtractor, compute: Callable[[], torch.Tensor],
                    meta: dict | None = None, cache: bool = True) -> tuple[torch.Tensor, bool]:
    """Features of an image set named by ``identity`` (JSON-able), from the cache or ``compute()`` then stored.

    Returns the features and whether they came from the cache."""
    def cache_key() -> str:  # after compute(): the precision that ran (the guard may have fallen back to fp32)
        blob = json.dumps({"v": _CACHE_VERSION, "features": extractor.cache_key(), "rule": RESIZE_RULE,
                           "size": list(extractor.size), **identity}, separators=(",", ":"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    if cache:
        hit = _cache_read(cache_key())
        if hit is not None:
            return hit[0], True
    feats = compute()
    if cache:
        _cache_write(cache_key(), feats, {"features": extractor.name, "feature_dim": extractor.dim, **identity,
                                  **(meta or {})})
    return feats, False


def _cache_read(key: str) -> tuple[torch.Tensor, dict] | None:
    from .._hub import load_state_dict

    base = cache_dir() / "features"
    meta_path, data_path = base / f"{key[:40]}.json", base / f"{key[:40]}.safetensors"
    if not (meta_path.is_file() and data_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("key") != key:
            return None
        return load_state_dict(data_path)["features"], meta
    except (OSError, ValueError, KeyError):
        return None  # a damaged entry is recomputed and rewritten


def _cache_write(key: str, features: torch.Tensor, meta: dict) -> Path | None:
    """Store features in the cache; ``None`` when the cache cannot be written (read-only, full): the cache is an
    optimisation, so that costs a recomputation next time and a warning, never the evaluation."""
    from .._hub import atomic_write_json, save_state_dict

    base = cache_dir() / "features"
    try:
        data_path = save_state_dict({"features": features}, base / f"{key[:40]}.safetensors")
        atomic_write_json(base / f"{key[:40]}.json", {"key": key, **meta})
    except OSError as exc:
        import warnings

        warnings.warn(f"the feature cache could not be written ({exc}); the features were computed and are used, "
                      "and will be computed again next time. Point VGZOO_CACHE at a writable folder to keep them.",
                      stacklevel=3)
        return None
    return data_path


def list_folder_images(folder: str | os.PathLike, what: str = "image folder") -> list[Path]:
    """The images of ``folder`` (recursive, sorted), at least 2 of them."""
    from ..data.images import list_images

    files = list_images(folder, what=what)
    if len(files) < 2:
        raise DataError(f"{what} {str(folder)!r} holds {len(files)} image; FID and KID need at least 2 images per set "
                        "(100 or more for a meaningful score).")
    return files


def folder_features(folder: str | os.PathLike, extractor: FeatureExtractor, *, batch_size: int = 64,
                    cache: bool = True, progress: bool = True, what: str = "image folder") -> FolderFeatures:
    """Features of every image under ``folder``, from the cache when the folder has not changed.

    The cache entry (``$VGZOO_CACHE/features/<key>.safetensors`` + ``.json``) is keyed by the sorted file list with
    sizes and modification times, the features (with a fingerprint of their weights) and the resize rule.
    """
    root = Path(folder)
    files = list_folder_images(root, what)
    entries = _file_entries(files, root)
    if cache:
        hit = _cache_read(_cache_key(entries, extractor))
        if hit is not None:
            feats, meta = hit
            return FolderFeatures(str(root), feats, len(files), meta.get("image_sizes", {}), meta.get("resized", 0),
                                  True, meta.get("cache_file"))
    sizes: Counter[str] = Counter()
    resized = 0

    def batches():
        nonlocal resized
        for start in range(0, len(files), batch_size):
            arrays = []
            for f in files[start:start + batch_size]:
                arr, (h, w) = _read_file(f, extractor.channels, extractor.size)
                sizes[f"{h}x{w}"] += 1
                resized += (h, w) != tuple(extractor.size)
                arrays.append(arr)
            yield torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)

    feats = extract_features(batches(), extractor, total=len(files), progress=progress, desc=f"features {root.name}")
    result = FolderFeatures(str(root), feats, len(files), dict(sizes), resized)
    if cache:
        meta = {"folder": str(root.resolve()), "features": extractor.name, "feature_dim": extractor.dim,
                "num_images": len(files), "image_sizes": dict(sizes), "resized": resized, "resize_rule": RESIZE_RULE}
        path = _cache_write(_cache_key(entries, extractor), feats, meta)  # the precision that ran, after the guard
        result.cache_file = str(path) if path is not None else None
    return result
