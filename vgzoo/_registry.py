"""The model registry: ``register_model`` / ``ModelFamily``, published configs and name lookup.

Models are declared as Python entry points in the group ``vgzoo.models`` (name = model name, value =
``package.module:attribute``, the :class:`ModelSpec` that ``register_model`` returned). vgzoo's own models are
declared the same way in its pyproject, so built-ins and plugins share one path (the loader is
:mod:`vgzoo._plugins`). Discovery reads installed metadata only; a model's module is imported the first time that
model is built or inspected, and a module that fails to import is reported by name without breaking the zoo.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from ._plugins import EntryPointGroup, EntryPointRecord, is_builtin_module
from .errors import PluginError, UnknownModelError

ENTRY_POINT_GROUP = "vgzoo.models"

# Fields every pretrained config must carry (checked at registration and by vgzoo.testing).
REQUIRED_CFG_FIELDS = ("input_size", "mean", "std", "paper")


@dataclass(frozen=True)
class PretrainedCfg:
    """One configuration a model name is published under (timm's ``PretrainedCfg`` is the anchor).

    A name has one or more, keyed by tag (``cyclegan_resnet.horse2zebra``); the first is the default.
    It says how to feed the model (input size, normalisation, value range), where its weights come
    from (``hf_hub_id``, ``url`` or ``file``; none for an architecture without published weights), and
    which architecture arguments the weights need (``model_args``, e.g. ``img_size=384``). A tag published as
    files in another layout names a ``reader`` (``"package.module:function"``, imported when first used) and its
    files: ``files`` (name -> URL; a lone ``url`` is ``{"weights": url}``) and/or ``hf_hub_files`` (name -> file
    name in ``hf_hub_id``'s repository); :mod:`vgzoo.pretrained` fetches them, calls
    ``reader(files: dict[str, Path], cfg) -> vgzoo.ConvertedWeights`` and keeps the converted model. A tag never
    changes the class: weights that hold only part of an architecture (a reference CycleGAN generator without its
    discriminators) are published under a name of their own, which the tag an older name used points to through
    ``aliases`` (:func:`register_model`). ``task`` is the tag's task when it is not the name's.
    ``direction`` is the side of the reference dataset the model translates from (``"BtoA"``: feed the dataset's B
    images).
    ``value_range`` is the range of what ``forward`` takes once pixels in [0, 1] are normalised with mean/std.
    """

    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    paper: str
    description: str = ""
    num_classes: int | None = None
    out_chans: int | None = None
    crop_size: int | None = None
    load_size: int | None = None
    interpolation: str | None = None
    crop_pct: float | None = None
    value_range: tuple[float, float] = (-1.0, 1.0)
    classifier: str | None = None
    first_conv: str | None = None
    hf_hub_id: str | None = None
    hf_hub_filename: str | None = None
    url: str | None = None
    file: str | None = None
    source_format: str | None = None
    reader: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    hf_hub_files: dict[str, str] = field(default_factory=dict)
    license: str | None = None
    license_link: str | None = None  # the licence's text, for a licence outside the Hub's list (the model card)
    dataset: str | None = None
    direction: str | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    task: str | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        _check_sources(self)

    @property
    def has_weights(self) -> bool:
        return bool(self.hf_hub_id or self.url or self.file or self.files)

    def to_dict(self) -> dict[str, Any]:
        """The set fields, as a plain dict (what ``model.pretrained_cfg`` starts from)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or (f.name in ("model_args", "notes", "files", "hf_hub_files") and not value):
                continue
            out[f.name] = dict(value) if isinstance(value, dict) else value
        return out


def make_cfg(**values: Any) -> PretrainedCfg:
    """A :class:`PretrainedCfg` from keyword values, with one clear error for an unknown field."""
    known = {f.name for f in fields(PretrainedCfg)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"PretrainedCfg has no field(s) {unknown}; known fields: {', '.join(sorted(known))}.")
    missing = [k for k in REQUIRED_CFG_FIELDS if k not in values]
    if missing:
        raise ValueError(f"a pretrained config lacks required field(s) {missing}")
    for key in ("input_size", "mean", "std", "value_range"):
        if key in values:
            values[key] = tuple(values[key])
    return PretrainedCfg(**values)


def _check_sources(cfg: PretrainedCfg) -> None:
    """A reader's files are named once, and a reader is named wherever several files are."""
    files, hub_files, reader = cfg.files, cfg.hf_hub_files, cfg.reader
    if files and cfg.url:
        raise ValueError(f"a pretrained config gives both url= and files=; put the url into files (as "
                         f"'weights': {cfg.url!r}) or drop files.")
    if hub_files and not cfg.hf_hub_id:
        raise ValueError("a pretrained config gives hf_hub_files= without hf_hub_id= (the repository they are in).")
    clash = sorted(set(files) & set(hub_files))
    if clash:
        raise ValueError(f"a pretrained config names file(s) {clash} in both files= and hf_hub_files=.")
    if (files or hub_files) and not reader:
        raise ValueError("a pretrained config with files= or hf_hub_files= needs reader='package.module:function' "
                         "(the function that turns those files into vgzoo.ConvertedWeights).")
    if reader is not None and (not isinstance(reader, str) or ":" not in reader):
        raise ValueError(f"reader={reader!r}: expected 'package.module:function'.")


@dataclass
class ModelSpec:
    """What the registry knows of one model name: its class, architecture arguments and published configs.

    Variants are data: a name is a model class plus ``model_args`` (the architecture arguments that make
    this variant) plus its pretrained configs. Calling the spec builds the model. ``aliases`` maps a tag this name
    once published to the ``name.tag`` that holds it now (resolved by :func:`resolve_name` before anything is
    built); ``inference_only`` marks a model that serves its task's commands but is not trained (a published
    generator without its discriminator).
    """

    name: str
    model_cls: type
    family: str
    task: str
    model_args: dict[str, Any]
    cfgs: dict[str, PretrainedCfg]
    test_kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint_filter: Callable[[dict, Any], dict] | None = None
    description: str = ""
    aliases: dict[str, str] = field(default_factory=dict)
    inference_only: bool = False

    @property
    def module(self) -> str:
        return self.model_cls.__module__

    @property
    def default_tag(self) -> str:
        return next(iter(self.cfgs))

    @property
    def default_cfg(self) -> PretrainedCfg:
        return self.cfgs[self.default_tag]

    def accepted_kwargs(self) -> list[str] | None:
        """Keyword arguments the model class accepts; None for ``**kwargs``."""
        params = list(inspect.signature(self.model_cls.__init__).parameters.values())[1:]
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return None
        return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]

    def default_kwargs(self, cfg: PretrainedCfg | None = None) -> dict[str, Any]:
        """Every constructor argument with its default: what ``create(name)`` (or ``name.tag``) builds."""
        params = list(inspect.signature(self.model_cls.__init__).parameters.values())[1:]
        defaults = {p.name: p.default for p in params if p.default is not p.empty}
        return {**defaults, **self.model_args, **(cfg.model_args if cfg else {})}

    def build(self, cfg: PretrainedCfg | None = None, **kwargs: Any):
        """The model of ``cfg`` (default: this name's own) with ``kwargs`` over its architecture arguments."""
        return self.model_cls(**{**self.model_args, **(cfg.model_args if cfg else {}), **kwargs})

    def published_tags(self) -> list[str]:
        """The tags a user can load weights by: its configs with weights, then its aliases to such configs (whose
        modules are imported to tell)."""
        return [t for t, c in self.cfgs.items() if t and c.has_weights] + [
            t for t in self.aliases if _alias_has_weights(f"{self.name}.{t}")]

    def cfg_for(self, tag: str | None) -> tuple[str, PretrainedCfg]:
        """The tag (default when None) and its config; an unknown tag names the close ones.

        An alias tag is resolved by :func:`resolve_name` first; here it is named as what it points to.
        """
        if tag is None:
            return self.default_tag, self.default_cfg
        if tag in self.cfgs:
            return tag, self.cfgs[tag]
        if tag in self.aliases:
            raise UnknownModelError(f"{self.name}.{tag} is an alias of {self.aliases[tag]}; use that name (or "
                                    "vgzoo.create, which resolves aliases).")
        tags = [t for t in (*self.cfgs, *self.aliases) if t]
        if not tags:
            raise UnknownModelError(
                f"{self.name} has no tags ({self.name}.{tag} asked for one). Use the plain name {self.name!r}."
            )
        close = difflib.get_close_matches(tag, tags, n=3, cutoff=0.4)
        hint = f"Did you mean: {', '.join(f'{self.name}.{t}' for t in close)}? " if close else ""
        raise UnknownModelError(
            f"Unknown tag {tag!r} for {self.name}. {hint}Its tags: {', '.join(tags)} "
            "(`vgzoo list --pretrained` lists every name.tag)."
        )

    def __call__(self, **kwargs: Any):
        """Build the model: ``model_cls(**{**model_args, **kwargs})``."""
        return self.build(None, **kwargs)


def _alias_has_weights(alias: str) -> bool:
    try:
        arch, tag = split_name(resolve_name(alias))
        return load_spec(arch).cfg_for(tag)[1].has_weights
    except (UnknownModelError, PluginError):  # its target's plugin is missing or broken: no weights to offer
        return False


def _is_builtin(spec: ModelSpec | None) -> bool:
    return spec is not None and is_builtin_module(spec.module)


MODELS = EntryPointGroup(ENTRY_POINT_GROUP, "model")
# name -> spec, filled by register_model when a model module is imported.
_specs: dict[str, ModelSpec] = {}


def _as_cfgs(cfgs: PretrainedCfg | dict[str, PretrainedCfg] | dict[str, Any]) -> dict[str, PretrainedCfg]:
    if isinstance(cfgs, PretrainedCfg):
        return {"": cfgs}
    if not cfgs:
        raise ValueError("register_model: give at least one pretrained config")
    if all(isinstance(v, PretrainedCfg) for v in cfgs.values()):
        return dict(cfgs)
    return {"": make_cfg(**cfgs)}  # one config written as a plain dict


def register_model(
    name: str,
    model_cls: type,
    *,
    family: str,
    task: str,
    cfgs: PretrainedCfg | dict[str, PretrainedCfg] | dict[str, Any],
    model_args: dict[str, Any] | None = None,
    test_kwargs: dict[str, Any] | None = None,
    checkpoint_filter: Callable[[dict, Any], dict] | None = None,
    aliases: dict[str, str] | None = None,
    inference_only: bool = False,
) -> ModelSpec:
    """Register ``name`` as ``model_cls`` built with ``model_args``; returns the spec (an entry point's target).

    Args:
        name: the model name; the entry point that declares it must carry the same name.
        model_cls: a :class:`vgzoo.protocols.ZooModel` subclass.
        family: the model family (``vit``, ``pix2pix``, ``cyclegan``, ``cgan`` or a plugin's own).
        task: a task name from :mod:`vgzoo.tasks` (built-in or added by a plugin); the trainer picks its
            recipe by task.
        cfgs: the pretrained config (a :class:`PretrainedCfg` or a dict of its fields), or several keyed by
            tag, the first being the default.
        model_args: the constructor arguments that make this variant (e.g. ``depth=12, num_heads=12``).
        test_kwargs: a tiny configuration for the conformance kit and quick benchmarks.
        checkpoint_filter: ``fn(state_dict, model) -> state_dict`` run on every load path before the
            strict load (foreign key layouts, resampled position embeddings).
        aliases: ``{tag: "other_name.tag"}``: tags of this name that another name holds (weights that build
            another class were moved to a name of their own); ``name.tag`` keeps working and resolves there
            before anything is built, and ``vgzoo info`` / ``vgzoo list --pretrained`` say where it points.
        inference_only: the model serves its task's commands (translate, generate, export, the demo) but is not
            trained (a published generator without its discriminator): the conformance kit does not ask it for
            the GAN training protocol.
    """
    from .protocols import ZooModel

    if not (isinstance(model_cls, type) and issubclass(model_cls, ZooModel)):
        raise TypeError(
            f"register_model({name!r}): {model_cls!r} is not a vgzoo.protocols.ZooModel subclass. Models subclass "
            "ZooModel (or GANModel) so that their config is captured; see docs/plugins.md."
        )
    from .tasks import is_task, list_tasks

    if not is_task(task):
        raise ValueError(f"register_model({name!r}): task {task!r} is not one of {', '.join(list_tasks())}")
    cfg_map = _as_cfgs(cfgs)
    for tag, cfg in cfg_map.items():
        if cfg.task is not None and not is_task(cfg.task):
            raise ValueError(f"register_model({name!r}): tag {tag!r} has task {cfg.task!r}, not one of "
                             f"{', '.join(list_tasks())}")
    aliases = _checked_aliases(name, aliases, cfg_map)
    model_args = dict(model_args or {})
    accepted = ModelSpec(name, model_cls, family, task, {}, cfg_map).accepted_kwargs()
    if accepted is not None:
        unknown = sorted(set(model_args) - set(accepted))
        if unknown:
            raise ValueError(f"register_model({name!r}): {model_cls.__name__} takes no argument(s) {unknown}")
    default = next(iter(cfg_map.values()))
    doc = inspect.getdoc(model_cls) or ""
    spec = ModelSpec(
        name=name,
        model_cls=model_cls,
        family=family,
        task=task,
        model_args=model_args,
        cfgs=cfg_map,
        test_kwargs=dict(test_kwargs or {}),
        checkpoint_filter=checkpoint_filter,
        description=default.description or (doc.splitlines()[0] if doc else ""),
        aliases=aliases,
        inference_only=inference_only,
    )
    if _is_builtin(_specs.get(name)) and not _is_builtin(spec):
        return spec  # a plugin re-registering a built-in name: the built-in stays (get_entry_point picks it too)
    _specs[name] = spec
    return spec


def _checked_aliases(name: str, aliases: dict[str, str] | None, cfgs: dict[str, PretrainedCfg]) -> dict[str, str]:
    """``aliases`` as ``{tag: "name.tag"}``, refused where a tag is also a config or a target is not a name."""
    aliases = dict(aliases or {})
    for tag, target in aliases.items():
        if not tag or tag in cfgs:
            raise ValueError(f"register_model({name!r}): alias tag {tag!r} is empty or also one of its configs.")
        arch = target.partition(".")[0] if isinstance(target, str) else ""
        if not arch or arch == name:
            raise ValueError(f"register_model({name!r}): alias {tag!r} -> {target!r}: expected another "
                             "registered model's 'name' or 'name.tag'.")
    return aliases


class ModelFamily:
    """Registers the variants of one family, which share a class, a task and test settings."""

    def __init__(self, family: str, model_cls: type, *, task: str, test_kwargs: dict[str, Any] | None = None,
                 checkpoint_filter: Callable[[dict, Any], dict] | None = None, inference_only: bool = False) -> None:
        self.family, self.model_cls, self.task = family, model_cls, task
        self.test_kwargs, self.checkpoint_filter, self.inference_only = test_kwargs, checkpoint_filter, inference_only

    def variant(self, name: str, cfgs, model_args: dict[str, Any] | None = None, **overrides: Any) -> ModelSpec:
        """Register ``name``: this family's class with ``model_args``; ``overrides`` replace family settings."""
        settings = {"task": self.task, "test_kwargs": self.test_kwargs, "checkpoint_filter": self.checkpoint_filter,
                    "inference_only": self.inference_only}
        settings.update(overrides)
        return register_model(name, self.model_cls, family=self.family, cfgs=cfgs, model_args=model_args,
                              **settings)


def entry_points(refresh: bool = False) -> dict[str, list[EntryPointRecord]]:
    """Every ``vgzoo.models`` entry point in installed metadata, by model name (no imports)."""
    return MODELS.records(refresh)


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, sorted(set(entry_points()) | set(_specs)), n=5, cutoff=0.5)
    if close:
        return f"Did you mean: {', '.join(close)}? "
    return ""


def get_entry_point(name: str) -> EntryPointRecord:
    """The single entry point for ``name``; errors for unknown or doubly claimed names."""
    records = entry_points().get(name)
    if not records:
        raise UnknownModelError(
            f"Unknown model {name!r}. {_suggest(name)}"
            "Run `vgzoo list` to see the installed models; plugins add theirs through the "
            f"{ENTRY_POINT_GROUP!r} entry-point group."
        )
    return MODELS.resolve(name)


def split_name(name: str) -> tuple[str, str | None]:
    """``"arch.tag"`` -> ``("arch", "tag")``; a plain name has tag None. Model names hold no dot."""
    if not isinstance(name, str) or not name:
        raise UnknownModelError(
            f"A model name must be a non-empty string, got {name!r}. Run `vgzoo list` to see the installed models."
        )
    arch, dot, tag = name.partition(".")
    return arch, (tag if dot else None)


def load_spec(name: str) -> ModelSpec:
    """Import the module that holds ``name`` (only that one) and return its registered spec.

    Names registered at run time (``register_model`` in a script or notebook, no entry point) are
    found too; an entry point always takes precedence so a doubly claimed name is never hidden.
    """
    name, _ = split_name(name)
    if name not in entry_points() and name in _specs:
        return _specs[name]
    record = get_entry_point(name)
    where = record.where
    target = MODELS.load(record)
    spec = _specs.get(name)
    if spec is None or spec is not target:
        registered = getattr(target, "name", getattr(target, "__name__", record.attr))
        raise PluginError(
            f"Cannot load model {name!r}: {where} points at {registered!r}, which is not registered under "
            f"the name {name!r}. The entry point's name must equal the registered name, and its target must be "
            "what vgzoo.register_model returned."
        )
    return spec


MAX_ALIAS_HOPS = 8


def resolve_name(name: str) -> str:
    """``name.tag`` with its aliases followed: the ``name.tag`` (or plain name) that holds the model.

    A name without an alias is returned as given. Only the modules of the names on the way are imported.

    Raises:
        UnknownModelError: no installed model has the name.
        PluginError: aliases that run in a circle (a plugin's mistake).
    """
    seen = [name]
    while True:
        arch, tag = split_name(seen[-1])
        target = load_spec(arch).aliases.get(tag) if tag else None
        if target is None:
            return seen[-1]
        if target in seen or len(seen) > MAX_ALIAS_HOPS:
            raise PluginError(f"The aliases {' -> '.join([*seen, target])} run in a circle (or too long a chain); "
                              "the plugins that declare them must point each alias at a name.tag with a config.")
        seen.append(target)


def list_aliases(pattern: str | list[str] = "*", family: str | None = None) -> dict[str, str]:
    """Every alias ``name.tag`` matching ``pattern`` -> the ``name.tag`` it resolves to (model modules are imported)."""
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    out = {}
    for name in list_models("*", family=family):
        try:
            spec = load_spec(name)
        except PluginError:
            continue
        for tag in spec.aliases:
            full = f"{name}.{tag}"
            if any(fnmatch.fnmatchcase(full, p) for p in patterns):
                try:
                    out[full] = resolve_name(full)
                except (UnknownModelError, PluginError):  # its target's plugin is missing: create names it
                    continue
    return dict(sorted(out.items()))


def list_models(pattern: str | list[str] = "*", family: str | None = None) -> list[str]:
    """Names of the installed models, sorted.

    Args:
        pattern: an fnmatch pattern (or a list of them) on the model name. Models registered at run
            time in this process (no entry point) are listed too.
        family: keep only this family. Filtering by family has to import the model modules (the
            family is declared in code, not in metadata); a module that fails to import is skipped
            and reported by ``vgzoo plugins``. Without ``family`` only installed metadata is read
            and no model module is imported.
    """
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    known = set(entry_points()) | set(_specs)
    names = sorted(n for n in known if any(fnmatch.fnmatchcase(n, p) for p in patterns))
    if family is None:
        return names
    kept = []
    for n in names:
        try:
            spec = load_spec(n)
        except PluginError:
            continue
        if spec.family == family:
            kept.append(n)
    return kept


def list_pretrained(pattern: str | list[str] = "*", family: str | None = None) -> list[str]:
    """Every ``name.tag`` with published weights (a name alone when its only config has them), sorted.

    Like ``timm.list_pretrained``: the model modules are imported to read their tags; ``pattern`` matches
    ``name.tag``. An alias whose target has weights is listed too (it is a name users type;
    :func:`list_aliases` says where each points).
    """
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    out = []
    for name in list_models("*", family=family):
        try:
            spec = load_spec(name)
        except PluginError:
            continue
        for tag, cfg in spec.cfgs.items():
            full = f"{name}.{tag}" if tag else name
            if cfg.has_weights and any(fnmatch.fnmatchcase(full, p) for p in patterns):
                out.append(full)
    out += [alias for alias in list_aliases(patterns, family=family) if _alias_has_weights(alias)]
    return sorted(out)


def loaded_modules() -> list[str]:
    """Model modules imported so far (used by tests that check listing is lazy)."""
    modules = {r.module for recs in entry_points().values() for r in recs}
    return sorted(m for m in modules if m in sys.modules)
