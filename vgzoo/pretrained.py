"""Published weights by tag: downloaded once, converted once, read as safetensors ever after.

``create("cyclegan_resnet.horse2zebra", pretrained=True)`` finds the tag's :class:`~vgzoo.PretrainedCfg`,
then:

1. looks for the converted model in the cache (``VGZOO_CACHE/models/ARCH.TAG/`` holding ``model.safetensors``
   and ``config.json``, a :func:`vgzoo.save_pretrained` folder): found, it is used and nothing else is read;
2. otherwise fetches the published files: URLs through :func:`vgzoo.download.fetch` (``VGZOO_MIRROR``,
   ``VGZOO_OFFLINE``), Hub files through huggingface_hub (``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, and
   ``VGZOO_OFFLINE`` too);
3. converts them to the model's layout: a tag with a ``reader`` hands every named file to it
   (:mod:`vgzoo.conversion`; a pickle is read with ``torch.load(weights_only=True)``, the tag being the opt-in),
   and the result must match the architecture key by key and shape by shape, checked on the meta device before
   anything is allocated; a timm file goes through the model's checkpoint filter. The model is loaded strictly
   and the converted folder written atomically, its SHA-256 recorded beside the weights and checked on reuse.
   A downloaded file that does not fit is removed from the cache, so it is never used again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import _hub
from ._builder import build, save_atomically
from ._registry import ModelSpec, PretrainedCfg
from .errors import VgzooError, WeightsError, WeightsNotFoundError

MODELS_DIR = "models"
DOWNLOADS_DIR = "downloads"


def shown_name(spec: ModelSpec, tag: str) -> str:
    return f"{spec.name}.{tag}" if tag else spec.name


def converted_dir(spec: ModelSpec, tag: str) -> Path:
    """Where the converted model of ``spec``'s ``tag`` lives in the cache."""
    from .download import cache_dir

    return cache_dir() / MODELS_DIR / shown_name(spec, tag or spec.default_tag)


def published_urls(cfg: PretrainedCfg) -> dict[str, str]:
    """A tag's downloadable files, name -> URL (a lone ``url`` is the file ``weights``)."""
    return dict(cfg.files) if cfg.files else ({"weights": cfg.url} if cfg.url else {})


def source_of(cfg: PretrainedCfg) -> str:
    """What a tag's weights come from, as shown to users (URLs, ``hf-hub:`` id or file)."""
    urls = list(published_urls(cfg).values())
    hub = [f"hf-hub:{cfg.hf_hub_id}"] if cfg.hf_hub_id else []
    if urls or hub:
        return " + ".join(urls + hub)
    return f"file:{cfg.file}" if cfg.file else ""


def pretrained_weights(spec: ModelSpec, tag: str, cfg: PretrainedCfg) -> tuple[Path, str, dict[str, Any]]:
    """The safetensors file holding ``spec``'s published weights for ``tag``, where they came from, and the
    constructor arguments they were converted for (empty for weights shipped in a package)."""
    shown = shown_name(spec, tag)
    if cfg.file:  # shipped inside an installed package: nothing to download or convert
        path = _hub.resolve_file_source(cfg.file)
        if not path.is_file():
            raise WeightsNotFoundError(
                f"{shown}: its published weights {cfg.file!r} are not installed (looked at {str(path)!r}). "
                "Reinstall the package that provides the model."
            )
        return path, f"file:{cfg.file}", {}
    if not (published_urls(cfg) or cfg.hf_hub_id):
        tags = spec.published_tags()
        hint = f" Its tags with weights: {', '.join(f'{spec.name}.{t}' for t in tags)}." if tags else ""
        raise WeightsNotFoundError(
            f"{shown} has no published weights.{hint} Use pretrained=False to train from scratch, or pass "
            "checkpoint_path= with your own weights."
        )
    folder = converted_dir(spec, tag)
    weights = folder / _hub.WEIGHTS_NAME
    damage = _damage(folder, spec.name)
    if damage is not None:
        from .download import cache_lock, record_sha256, recorded_sha256, sha256_file

        with cache_lock(folder, shown):  # a concurrent first load waits, then reads what the first one converted
            if not (weights.is_file() and (folder / _hub.CONFIG_NAME).is_file()
                    and recorded_sha256(weights) == sha256_file(weights) and _architecture(folder) == spec.name):
                try:
                    model = _convert(spec, tag, cfg)
                except (VgzooError, OSError) as exc:
                    if not damage:
                        raise
                    raise WeightsError(
                        f"{damage}, and converting the published files again failed: {exc}\nDelete "
                        f"{str(folder)!r} and load {shown} again where its published files can be fetched."
                    ) from exc
                save_atomically(model, folder)
                record_sha256(weights)
    config = _hub.read_config(folder)["config"] if cfg.reader else {}
    return weights, f"{shown_name(spec, tag or spec.default_tag)} ({source_of(cfg)})", config


def _convert(spec: ModelSpec, tag: str, cfg: PretrainedCfg):
    if cfg.reader:
        return _convert_with_reader(spec, tag, cfg)
    model = build(spec, tag, cfg, {}, source_of(cfg))
    if cfg.hf_hub_id:
        repo_id, revision = _hub.parse_hub_id(cfg.hf_hub_id)
        filename = cfg.hf_hub_filename or _hub.WEIGHTS_NAME
        try:
            path = _hub.hf_hub_file(repo_id, filename, revision, local_only=_offline())
        except WeightsNotFoundError as exc:
            raise WeightsNotFoundError(
                f"{exc} By hand: download {_hub.hub_url(repo_id, filename, revision)} and convert it into vgzoo's "
                f"cache: vgzoo convert timm-vit {filename} {converted_dir(spec, tag)}"
            ) from exc
        _hub.load_into(model, _hub.load_state_dict(path), source_of(cfg), spec.checkpoint_filter, strict=True)
    else:
        raise WeightsError(f"{shown_name(spec, tag)}: {cfg.url} names no reader (PretrainedCfg.reader) to convert it.")
    return model.eval()


def _convert_with_reader(spec: ModelSpec, tag: str, cfg: PretrainedCfg):
    """Fetch every file the tag names, hand them to its reader and build the checked model."""
    from .conversion import build_converted, read_files
    from .download import fetch

    shown = shown_name(spec, tag)
    downloaded = {name: fetch(url, download_path(url), desc=f"{shown} {name}")
                  for name, url in published_urls(cfg).items()}
    files = dict(downloaded)
    if cfg.hf_hub_files:
        repo_id, revision = _hub.parse_hub_id(cfg.hf_hub_id)
        for name, filename in cfg.hf_hub_files.items():
            files[name] = _hub.hf_hub_file(repo_id, filename, revision, local_only=_offline())
    try:
        return build_converted(spec, tag, cfg, read_files(cfg.reader, files, cfg, shown), source_of(cfg))
    except WeightsError as exc:
        for path in downloaded.values():
            _forget(path)
        if not downloaded:
            raise
        raise WeightsError(
            f"{exc} The downloaded file(s) {', '.join(published_urls(cfg).values())} were removed from the cache; "
            "if a mirror serves them (VGZOO_MIRROR), check that it holds the published files."
        ) from exc


def download_path(url: str) -> Path:
    """Where a published file's download lives in the cache: ``downloads/`` + the URL's path."""
    return Path(DOWNLOADS_DIR, *urlsplit(url).path.lstrip("/").split("/"))


def _damage(folder: Path, architecture: str) -> str | None:
    """``None`` when the converted folder can be used; else why not (``""``: it is not there, nothing to say).

    The weights' SHA-256, recorded when they were converted, is checked on every load; a file that no longer has it
    is converted again from the published files (warned), and named in the error when that is not possible. A
    folder without a record (converted by hand, or by an earlier version) gets one now and is checked from then on.
    A folder whose config.json names another architecture than ``architecture`` (written by a version that built
    the tag under another name) is converted again too, never loaded as what it is not.
    """
    from .download import record_sha256, recorded_sha256, sha256_file

    weights = folder / _hub.WEIGHTS_NAME
    if not (weights.is_file() and (folder / _hub.CONFIG_NAME).is_file()):
        return ""
    recorded_architecture = _architecture(folder)
    if recorded_architecture != architecture:
        import warnings

        damage = (f"{str(folder)!r} holds a {recorded_architecture!r} model, not {architecture!r} (converted by an "
                  "earlier version, or its config.json is damaged)")
        warnings.warn(f"{damage}; converting the published files again.", stacklevel=4)
        return damage
    recorded, actual = recorded_sha256(weights), sha256_file(weights)
    if recorded is None:
        record_sha256(weights, actual)
        return None
    if recorded == actual:
        return None
    import warnings

    damage = (f"{str(weights)!r} changed since it was converted (its SHA-256 is {actual}, {recorded} was recorded): "
              "the file was damaged or replaced")
    warnings.warn(f"{damage}; converting the published files again.", stacklevel=4)
    return damage


def _architecture(folder: Path) -> str | None:
    """The architecture a converted folder's config.json names (None: unreadable)."""
    try:
        return _hub.read_config(folder)["architecture"]
    except VgzooError:
        return None


def _offline() -> bool:
    from .download import is_offline

    return is_offline()


def _forget(path: Path) -> None:
    """Remove a downloaded file and its recorded checksum, so a poisoned file is never read again."""
    for p in (path, path.with_name(path.name + ".sha256")):
        if p.exists():
            p.unlink()
