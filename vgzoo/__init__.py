"""vgzoo: a model zoo for vision GANs and vision transformers.

The public face. Importing vgzoo is cheap: neither torch nor numpy nor any model module is imported
until a model is built or inspected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._registry import ModelFamily, PretrainedCfg, list_models, list_pretrained, register_model
from ._version import __version__
from .conversion import ConvertedWeights
from .converters import Converter
from .errors import (
    DataError,
    DataNotFoundError,
    InputSizeError,
    PluginError,
    UnknownModelError,
    VgzooError,
    WeightsError,
    WeightsNotFoundError,
)

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from ._factory import ModelInfo

__all__ = [
    "__version__",
    "create",
    "list_models",
    "list_pretrained",
    "model_info",
    "register_model",
    "ModelFamily",
    "PretrainedCfg",
    "ConvertedWeights",
    "Converter",
    "save_pretrained",
    "push_to_hub",
    "VgzooError",
    "UnknownModelError",
    "PluginError",
    "WeightsError",
    "WeightsNotFoundError",
    "DataError",
    "DataNotFoundError",
    "InputSizeError",
]


def create(name: str, pretrained: bool = False, checkpoint_path=None, **kwargs: Any) -> torch.nn.Module:
    """Build a model by name, ``local-dir:PATH`` or ``hf-hub:org/repo[@rev]``; see :func:`vgzoo._factory.create`."""
    from ._factory import create as _create

    return _create(name, pretrained=pretrained, checkpoint_path=checkpoint_path, **kwargs)


def model_info(name: str) -> ModelInfo:
    """What is known about ``name`` without building it; see :func:`vgzoo._factory.model_info`."""
    from ._factory import model_info as _model_info

    return _model_info(name)


def save_pretrained(model: torch.nn.Module, directory, overwrite_card: bool = False) -> Path:
    """Write ``model.safetensors`` + ``config.json`` + README.md atomically; see :func:`vgzoo.share.save_pretrained`."""
    from .share.card import save_pretrained as _save

    return _save(model, directory, overwrite_card=overwrite_card)


def push_to_hub(model_or_folder, repo_id: str, private: bool = False, revision=None, token=None, **kwargs: Any):
    """Publish a model or a saved folder to the Hugging Face Hub; see :func:`vgzoo.share.push.push_to_hub`."""
    from .share.push import push_to_hub as _push

    return _push(model_or_folder, repo_id, private=private, revision=revision, token=token, **kwargs)
