"""The core below ``create``: a registered spec built into a model, and a model written as a folder.

Everything that makes or saves a model goes through here: ``create`` (:mod:`vgzoo._factory`), the published-weights
cache (:mod:`vgzoo.pretrained`) and the readers' conversions (:mod:`vgzoo.conversion`). It imports only downward
(the registry, the weights IO, the model contract); what publishes a model (``vgzoo.save_pretrained``, push, the
trainer's final save, ``vgzoo convert``) adds the model card on top (:func:`vgzoo.share.card.save_pretrained`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from . import _hub
from ._registry import ModelSpec, PretrainedCfg
from .errors import WeightsError


def build(spec: ModelSpec, tag: str, cfg: PretrainedCfg, kwargs: dict[str, Any], weight_source: str | None):
    """``spec``'s model for ``tag`` with ``kwargs`` over its arguments, its ``pretrained_cfg`` filled in.

    Raises:
        TypeError: a keyword argument the model class does not accept (the message lists the accepted ones).
    """
    accepted = spec.accepted_kwargs()
    if accepted is not None:
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            shown = f"{spec.name}.{tag}" if tag else spec.name
            raise TypeError(
                f"{shown}() got unexpected keyword argument(s) {', '.join(unknown)}; "
                f"{shown} accepts: {', '.join(accepted) or '(no arguments)'}"
            )
    model = spec.build(cfg, **kwargs)
    published = cfg.to_dict()
    published.pop("model_args", None)
    pretrained_cfg = {**published, **(getattr(model, "pretrained_cfg", None) or {})}  # the built model's facts win
    for key in ("mean", "std"):  # ... except the published normalisation, where it fits the model's channels
        if key in published and len(published[key]) == len(pretrained_cfg.get(key, ())):
            pretrained_cfg[key] = published[key]
    pretrained_cfg.update(architecture=spec.name, tag=tag or None, family=spec.family, task=cfg.task or spec.task,
                          weight_source=weight_source)
    model.pretrained_cfg = pretrained_cfg
    return model


def save_model(model, directory: str | os.PathLike) -> Path:
    """Write ``model.safetensors`` and ``config.json`` so ``create("local-dir:DIR")`` rebuilds the model.

    The config holds the architecture, its tag, ``model.config`` (every constructor argument), the vgzoo
    version and the pretrained config. Both files are written atomically.
    """
    from ._version import __version__
    from .protocols import ZooModel

    cfg = getattr(model, "pretrained_cfg", None) or {}
    if not isinstance(model, ZooModel) or "architecture" not in cfg:
        raise WeightsError(
            f"save_pretrained: this {type(model).__name__} was not built by vgzoo.create, so its architecture "
            "is unknown. Build it with vgzoo.create(name, ...) and load your weights into it."
        )
    directory = Path(directory)
    config = {
        "architecture": cfg["architecture"],
        "tag": cfg.get("tag"),
        "config": model.config,
        "vgzoo_version": __version__,
        "pretrained_cfg": {k: v for k, v in cfg.items() if k != "weight_source"},
    }
    _hub.save_state_dict(model.state_dict(), directory / _hub.WEIGHTS_NAME, {"architecture": cfg["architecture"]})
    _hub.atomic_write_json(directory / _hub.CONFIG_NAME, config)
    return directory


def save_atomically(model, folder: Path, save=save_model) -> None:
    """Write a whole folder with ``save(model, tmp)`` beside its final place, then rename it in: never half a folder.

    An existing ``folder`` is replaced (the caller decides whether it may be).
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would outlive the rename
    try:
        save(model, tmp)
        if folder.exists():  # a stale or incomplete folder left by an older version
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
