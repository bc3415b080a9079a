"""Building models by name: ``create``, ``model_info`` and ``load_model``.

``create`` is the single way a model comes to life, whatever its source: a registered name (random or
published weights, or a checkpoint file), a saved folder (``local-dir:PATH``) or a Hub repository
(``hf-hub:org/repo@rev``). Every path that loads weights goes through the model's checkpoint filter and
a strict load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _hub
from ._builder import build
from ._registry import entry_points, get_entry_point, load_spec, resolve_name, split_name
from .errors import UnknownModelError, WeightsError, WeightsNotFoundError

LOCAL_PREFIX = "local-dir:"
HUB_PREFIX = "hf-hub:"


@dataclass
class ModelInfo:
    """What is known about a model without building it."""

    name: str
    family: str
    task: str
    distribution: str
    entry_point: str
    description: str
    paper: str
    default_cfg: dict[str, Any]
    default_kwargs: dict[str, Any] = field(default_factory=dict)
    test_kwargs: dict[str, Any] = field(default_factory=dict)
    tag: str | None = None
    tags: list[str] = field(default_factory=list)
    alias_of: str | None = None  # the name.tag asked for, when it is an alias of this one
    aliases: dict[str, str] = field(default_factory=dict)  # this name's alias tags -> where each points

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def model_info(name: str) -> ModelInfo:
    """Name, family, task, providing distribution and config of ``name`` or ``name.tag`` (nothing is built).

    An alias is described as the ``name.tag`` it points to, with ``alias_of`` naming what was asked for.
    """
    resolved = resolve_name(name)
    arch, tag = split_name(resolved)
    spec = load_spec(arch)
    tag, cfg = spec.cfg_for(tag)
    if arch in entry_points():
        record = get_entry_point(arch)
        distribution, entry_point = record.distribution, record.value
    else:  # registered at run time, not installed
        distribution, entry_point = "(registered at run time)", f"{spec.module}:{spec.name}"
    return ModelInfo(
        name=arch,
        family=spec.family,
        task=cfg.task or spec.task,
        distribution=distribution,
        entry_point=entry_point,
        description=cfg.description or spec.description,
        paper=cfg.paper,
        default_cfg=cfg.to_dict(),
        default_kwargs=spec.default_kwargs(cfg),
        test_kwargs=dict(spec.test_kwargs),
        tag=tag or None,
        tags=[t for t in spec.cfgs if t],
        alias_of=name if resolved != name else None,
        aliases={f"{arch}.{t}": target for t, target in spec.aliases.items()},
    )


def create(
    name: str,
    pretrained: bool = False,
    checkpoint_path: str | os.PathLike | None = None,
    *,
    allow_pickle: bool = False,
    strict: bool = True,
    **kwargs: Any,
):
    """Build a model by name, ``name.tag``, from a saved folder or from the Hub.

    Args:
        name: a registered model name, ``name.tag`` (a published configuration), ``local-dir:PATH`` or
            ``hf-hub:org/repo[@revision]``.
        pretrained: load the weights the (default or named) tag publishes.
        checkpoint_path: a ``.safetensors`` state dict to load (a pickle only with ``allow_pickle``).
        allow_pickle: opt in to reading ``.pth``/``.bin`` checkpoints with ``torch.load(weights_only=True)``.
        strict: refuse missing and unexpected keys (shape mismatches are always refused).
        **kwargs: constructor arguments of the model (``vgzoo info NAME`` lists them).

    Raises:
        UnknownModelError: no installed model has this name or tag (the message lists close names).
        PluginError: the model's module fails to import, or two distributions claim the name.
        TypeError: a keyword argument the model does not accept.
        WeightsError: weights that are missing, unreadable or do not fit.
    """
    if not isinstance(name, str) or not name:
        raise UnknownModelError(
            f"create() needs a model name, `name.tag`, local-dir:PATH or hf-hub:org/repo; got {name!r}. "
            "Run `vgzoo list` to see the installed models."
        )
    if name.startswith((LOCAL_PREFIX, HUB_PREFIX)) and checkpoint_path is not None:
        raise ValueError(
            f"create({name!r}, checkpoint_path=...): a saved model already brings its weights, so the checkpoint "
            "would be ignored. Pass a model name with checkpoint_path=, or the saved model alone."
        )
    if name.startswith(LOCAL_PREFIX):
        return _create_from_dir(Path(name[len(LOCAL_PREFIX) :]).expanduser(), name, kwargs, strict)
    if name.startswith(HUB_PREFIX):
        repo_id, revision = _hub.parse_hub_id(name[len(HUB_PREFIX) :])
        config_path = _hub.hf_hub_file(repo_id, _hub.CONFIG_NAME, revision)
        weights_path = _hub.hf_hub_file(repo_id, _hub.WEIGHTS_NAME, revision)
        return _create_from_files(config_path.parent, weights_path, name, kwargs, strict)

    arch, tag = split_name(resolve_name(name))
    spec = load_spec(arch)
    tag, cfg = spec.cfg_for(tag)
    source = None
    weights = None
    if checkpoint_path is not None:
        source = str(checkpoint_path)
        weights = _hub.load_state_dict(checkpoint_path, allow_pickle=allow_pickle)
    elif pretrained:
        from .pretrained import pretrained_weights

        path, source, converted_config = pretrained_weights(spec, tag, cfg)
        kwargs = {**converted_config, **kwargs}  # what a reader read from the files (a width...), then the caller's
        weights = _hub.load_state_dict(path)
    model = build(spec, tag, cfg, kwargs, source)
    if weights is not None:
        _hub.load_into(model, weights, source, spec.checkpoint_filter, strict=strict)
    return model


def _create_from_dir(directory: Path, source: str, overrides: dict, strict: bool):
    if not directory.is_dir():
        raise WeightsNotFoundError(
            f"{source!r}: {str(directory)!r} is not a folder. Expected a folder written by vgzoo.save_pretrained."
        )
    if not (directory / _hub.CONFIG_NAME).is_file():
        _explain_foreign_folder(directory, source)
    return _create_from_files(directory, directory / _hub.WEIGHTS_NAME, source, overrides, strict)


def _explain_foreign_folder(directory: Path, source: str) -> None:
    """A folder without config.json that holds something vgzoo can convert: say so, and how (nothing is read)."""
    legacy = directory / "generator.json"
    if legacy.is_file():
        raise WeightsError(
            f"{source!r} is a generator folder written by vgzoo 0.2 (generator.json + generator.safetensors), a "
            "format vgzoo no longer reads. Rewrite it once as a model folder (your files are left as they are): "
            f"vgzoo convert generator-json {legacy} {directory / 'generator.safetensors'} NEW_DIR"
        )
    if any(directory.glob("*_net_*.pth")):
        raise WeightsNotFoundError(
            f"{source!r} holds no config.json but reference .pth checkpoints: convert them first with `vgzoo convert "
            "pix2pix-reference --dir DIR --model cycle_gan|pix2pix OUT_DIR` (or one generator: `vgzoo convert "
            "pix2pix-reference DIR/latest_net_G.pth OUT_DIR`)."
        )


def _create_from_files(config_dir: Path, weights_path: Path, source: str, overrides: dict, strict: bool):
    config = _hub.read_config(config_dir)
    arch, tag = config["architecture"], config.get("tag") or None
    try:
        # a folder written before a tag moved to a name of its own records the old name.tag: its alias says where
        arch, tag = split_name(resolve_name(f"{arch}.{tag}" if tag else arch))
        spec = load_spec(arch)
    except UnknownModelError as exc:
        raise WeightsError(
            f"{source!r}: config.json names architecture {arch!r}, which is not installed. {exc} "
            "Install the plugin that provides it."
        ) from exc
    tag, cfg = spec.cfg_for(tag)
    kwargs = {**config["config"], **overrides}
    _check_sizes_first(spec, tag, cfg, kwargs, weights_path, source, config_dir)
    weights = _hub.load_state_dict(weights_path)
    model = build(spec, tag, cfg, kwargs, source)
    _hub.load_into(model, weights, source, spec.checkpoint_filter, strict=strict)
    return model


def _check_sizes_first(spec, tag, cfg, kwargs: dict, weights_path: Path, source: str, config_dir: Path) -> None:
    """Build the model on the meta device and check its shapes against the weights file's header before anything is
    allocated: a config.json with absurd sizes (``ngf=100000``) is refused by name instead of exhausting memory.
    A file whose header cannot be read is left to the full read, which reports it."""
    import torch

    header = _hub.read_shapes(weights_path)
    if header is None:
        return
    with torch.device("meta"):
        skeleton = build(spec, tag, cfg, dict(kwargs), source)
    own = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    # the shapes as loading will see them: a ViT's position embedding is resampled to the model's size first
    fitted = _hub.fitted_state_dict(skeleton, {k: torch.empty(v, device="meta") for k, v in header.items()},
                                    spec.checkpoint_filter)
    try:
        _hub.check_fit(own, {k: v for k, v in fitted.items() if k in own}, source, spec.name, strict=False)
    except WeightsError as exc:
        raise WeightsError(f"{exc} The model was built from {str(config_dir / _hub.CONFIG_NAME)!r} "
                           f"({kwargs}); nothing was allocated at those sizes.") from None


def resolve_source(model_or_dir: str | os.PathLike) -> str:
    """The ``create`` source for a model name, ``name.tag``, a ``local-dir:``/``hf-hub:`` source or a folder path.

    An existing folder becomes ``local-dir:PATH``; a ``vgzoo train`` run directory becomes its ``final/`` model
    (with a warning saying so). Text that looks like a path (it holds a ``/`` or the OS separator, or starts with
    ``.`` or ``~``; model names never do) but names no folder raises :class:`WeightsNotFoundError` instead of a
    confusing unknown-model error.
    """
    from ._runtime import run_model_folder

    text = str(model_or_dir)
    if text.startswith((LOCAL_PREFIX, HUB_PREFIX)):
        return text
    if Path(text).expanduser().is_dir():
        final = run_model_folder(text)
        if final is not None:
            import warnings

            warnings.warn(f"{text!r} is a training run; using its final model {str(final)!r}", stacklevel=3)
            return f"{LOCAL_PREFIX}{final}"
        return f"{LOCAL_PREFIX}{Path(text).expanduser()}"
    if "/" in text or os.sep in text or text.startswith((".", "~")):
        raise WeightsNotFoundError(
            f"{text!r} is not a folder (it looks like a path, and model names hold no '/'). Expected a folder "
            "written by vgzoo.save_pretrained, or a model name from `vgzoo list`."
        )
    return text


def load_model(
    model_or_dir, pretrained: bool = False, *, needs: type | tuple[type, ...] | None = None, warn_random: bool = True
):
    """A model from a built module, a registered name, a saved folder or a ``local-dir:``/``hf-hub:`` source.

    The one resolver behind ``vgzoo translate``, ``vgzoo generate`` and ``vgzoo attention-map``.

    Args:
        model_or_dir: an ``nn.Module`` (returned as is), a model name, a folder path or a prefixed source.
        pretrained: with a model name, load its published weights (folders and Hub sources carry their own; a
            ``name.tag`` always loads its tag's weights).
        needs: the capability classes (:mod:`vgzoo.protocols`) the caller uses; a vgzoo model that is none of them
            raises ValueError. A capability, not a task name, so a plugin task's models qualify as the built-ins do.
        warn_random: warn when the result holds random weights (a name without ``pretrained``).

    Raises:
        WeightsNotFoundError: a path that is not a folder, or a model without published weights asked for them.
        UnknownModelError: a name no installed model has.
        ValueError: the model is none of ``needs``.
    """
    built = not isinstance(model_or_dir, (str, os.PathLike))
    if built:
        model, source = model_or_dir, None
    else:
        source = resolve_source(model_or_dir)
        is_named = not source.startswith((LOCAL_PREFIX, HUB_PREFIX))
        if is_named and split_name(source)[1]:  # naming a published tag asks for its weights
            pretrained = True
        model = create(source, pretrained=pretrained and is_named)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    from .protocols import ZooModel
    from .tasks import tasks_offering

    if needs is not None and isinstance(model, ZooModel) and not isinstance(model, needs):
        raise ValueError(
            f"{cfg.get('architecture', type(model).__name__)} is a {cfg.get('task') or type(model).__name__} model; "
            f"this needs a model of task {' or '.join(tasks_offering(needs))}. See `vgzoo list` and `vgzoo info NAME`."
        )
    if not built and warn_random and cfg.get("weight_source") is None:
        import warnings

        warnings.warn(
            f"{source}: the model has random weights, so its outputs mean nothing. Pass pretrained=True "
            "(CLI: --pretrained) if it has published weights, or a folder of trained weights.",
            stacklevel=2,
        )
    return model
