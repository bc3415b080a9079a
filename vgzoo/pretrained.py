"""Published weights by tag: downloaded once, converted once, read as safetensors ever after.

``create("cyclegan_resnet.horse2zebra", pretrained=True)`` finds the tag's :class:`~vgzoo.PretrainedCfg`,
then:

1. looks for the converted model in the cache (``VGZOO_CACHE/models/ARCH.TAG/`` holding ``model.safetensors``
   and ``config.json``, a :func:`vgzoo.save_pretrained` folder): found, it is used and nothing else is read;
2. otherwise fetches the published file: a URL through :func:`vgzoo.download.fetch` (``VGZOO_MIRROR``,
   ``VGZOO_OFFLINE``), a Hub file through huggingface_hub (``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, and
   ``VGZOO_OFFLINE`` too);
3. converts it to the model's layout (a reference ``.pth`` is read with ``torch.load(weights_only=True)``, the tag
   being the opt-in, and must match the architecture key by key and shape by shape; a timm file goes through the
   model's checkpoint filter), loads it strictly into the tag's architecture and writes the converted folder
   atomically. A file that does not fit is removed from the cache, so it is never used again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from . import _hub
from ._registry import ModelSpec, PretrainedCfg
from .errors import WeightsError, WeightsNotFoundError

MODELS_DIR = "models"
DOWNLOADS_DIR = "downloads"


def shown_name(spec: ModelSpec, tag: str) -> str:
    return f"{spec.name}.{tag}" if tag else spec.name


def converted_dir(spec: ModelSpec, tag: str) -> Path:
    """Where the converted model of ``spec``'s ``tag`` lives in the cache."""
    from .download import cache_dir

    return cache_dir() / MODELS_DIR / shown_name(spec, tag or spec.default_tag)


def source_of(cfg: PretrainedCfg) -> str:
    """What a tag's weights come from, as shown to users (URL, ``hf-hub:`` id or file)."""
    if cfg.url:
        return cfg.url
    if cfg.hf_hub_id:
        return f"hf-hub:{cfg.hf_hub_id}"
    return f"file:{cfg.file}" if cfg.file else ""


def pretrained_weights(spec: ModelSpec, tag: str, cfg: PretrainedCfg) -> tuple[Path, str]:
    """The safetensors file holding ``spec``'s published weights for ``tag``, and where they came from."""
    shown = shown_name(spec, tag)
    if cfg.file:  # shipped inside an installed package: nothing to download or convert
        path = _hub.resolve_file_source(cfg.file)
        if not path.is_file():
            raise WeightsNotFoundError(
                f"{shown}: its published weights {cfg.file!r} are not installed (looked at {str(path)!r}). "
                "Reinstall the package that provides the model."
            )
        return path, f"file:{cfg.file}"
    if not (cfg.url or cfg.hf_hub_id):
        tags = [t for t, c in spec.cfgs.items() if t and c.has_weights]
        hint = f" Its tags with weights: {', '.join(f'{spec.name}.{t}' for t in tags)}." if tags else ""
        raise WeightsNotFoundError(
            f"{shown} has no published weights.{hint} Use pretrained=False to train from scratch, or pass "
            "checkpoint_path= with your own weights."
        )
    folder = converted_dir(spec, tag)
    weights = folder / _hub.WEIGHTS_NAME
    if not (weights.is_file() and (folder / _hub.CONFIG_NAME).is_file()):
        model = _convert(spec, tag, cfg)
        _save_atomically(model, folder)
    return weights, f"{shown_name(spec, tag or spec.default_tag)} ({source_of(cfg)})"


def _convert(spec: ModelSpec, tag: str, cfg: PretrainedCfg):
    from ._factory import _build

    model = _build(spec, tag, cfg, {}, source_of(cfg))
    if cfg.source_format == "reference-generator":
        _load_reference_generator(model, spec, tag, cfg)
    elif cfg.hf_hub_id:
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
        raise WeightsError(f"{shown_name(spec, tag)}: unknown source format {cfg.source_format!r} for {cfg.url}.")
    return model.eval()


def _offline() -> bool:
    from .download import is_offline

    return is_offline()


def _load_reference_generator(model, spec: ModelSpec, tag: str, cfg: PretrainedCfg) -> None:
    """Fetch a reference ``.pth`` (one generator's state dict) and load it, checked key by key."""
    from .convert.reference import generator_key_map, map_state_dict, read_reference_state_dict
    from .download import fetch
    from .protocols import Translator

    if not isinstance(model, Translator):
        raise WeightsError(f"{shown_name(spec, tag)}: a reference generator file needs a translation model.")
    path = fetch(cfg.url, Path(DOWNLOADS_DIR, *urlsplit(cfg.url).path.lstrip("/").split("/")),
                 desc=f"{shown_name(spec, tag)}")
    generator = model.inference_generator("AtoB")
    try:
        state = read_reference_state_dict(path)
        what = f"{shown_name(spec, tag)}'s generator ({type(generator).__name__}, {model.config})"
        generator.load_state_dict(map_state_dict(generator, state, generator_key_map(generator), what))
    except WeightsError as exc:
        _forget(path)
        raise WeightsError(
            f"{exc} The downloaded file {cfg.url} was removed from the cache; if a mirror serves it "
            "(VGZOO_MIRROR), check that the mirror holds the reference's file."
        ) from exc


def _forget(path: Path) -> None:
    """Remove a downloaded file and its recorded checksum, so a poisoned file is never read again."""
    for p in (path, path.with_name(path.name + ".sha256")):
        if p.exists():
            p.unlink()


def _save_atomically(model, folder: Path) -> None:
    """Write the converted folder beside its final place, then rename it in: never half a folder."""
    from ._factory import save_pretrained

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would outlive the rename
    try:
        save_pretrained(model, tmp)
        if folder.exists():  # a stale or incomplete folder left by an older version
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
