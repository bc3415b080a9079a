"""The model registry: entry-point discovery and the ``register_model`` decorator.

Models are declared as Python entry points in the group ``vgzoo.models`` (name = model name, value =
``package.module:factory``). vgzoo's own models are declared the same way in its pyproject, so built-ins
and plugins share one path. Discovery reads installed metadata only; a model's module is imported the
first time that model is built or inspected, and a module that fails to import is reported by name
without breaking the rest of the zoo.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from .errors import PluginError, UnknownModelError

ENTRY_POINT_GROUP = "vgzoo.models"

TASKS = (
    "classification",
    "paired_translation",
    "unpaired_translation",
    "conditional_generation",
    "generation",
    "restoration",
)

# Fields every default config must carry (checked at registration and by vgzoo.testing).
REQUIRED_CFG_FIELDS = ("input_size", "mean", "std", "paper")


@dataclass(frozen=True)
class EntryPointRecord:
    """One ``vgzoo.models`` entry point as installed metadata declares it."""

    name: str
    value: str
    distribution: str

    @property
    def module(self) -> str:
        return self.value.partition(":")[0].strip()

    @property
    def attr(self) -> str:
        return self.value.partition(":")[2].strip()


@dataclass
class ModelSpec:
    """What ``@register_model`` records about one factory."""

    name: str
    factory: Callable[..., Any]
    family: str
    task: str
    default_cfg: dict[str, Any]
    test_kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint_filter: Callable[[dict, Any], dict] | None = None
    description: str = ""

    @property
    def module(self) -> str:
        return self.factory.__module__

    def accepted_kwargs(self) -> list[str] | None:
        """Keyword arguments the factory accepts, or None when it takes ``**kwargs``."""
        params = inspect.signature(self.factory).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return None
        return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]

    def factory_defaults(self) -> dict[str, Any]:
        """The factory's own keyword defaults (what a model built with no kwargs uses)."""
        return {
            p.name: p.default for p in inspect.signature(self.factory).parameters.values() if p.default is not p.empty
        }


# The distribution whose entry points are the built-in models; a plugin claiming one of its names is ignored.
BUILTIN_DISTRIBUTION = "vgzoo"


def _is_builtin(spec: ModelSpec | None) -> bool:
    return spec is not None and spec.module.startswith("vgzoo.")


# name -> spec, filled by @register_model when a model module is imported.
_specs: dict[str, ModelSpec] = {}
# Cached discovery: name -> records (more than one record = a name claimed twice).
_entry_points: dict[str, list[EntryPointRecord]] | None = None
# module name -> the exception its import raised, so a broken plugin is imported once.
_import_failures: dict[str, BaseException] = {}


def register_model(
    *,
    family: str,
    task: str,
    default_cfg: dict[str, Any],
    test_kwargs: dict[str, Any] | None = None,
    checkpoint_filter: Callable[[dict, Any], dict] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a model factory; the factory's function name is the model name.

    Args:
        family: the model family (``vit``, ``pix2pix``, ``cyclegan``, ``cgan`` or a plugin's own).
        task: one of :data:`TASKS`; the trainer picks its recipe by task.
        default_cfg: input_size (C, H, W), mean, std, paper, and where they apply num_classes,
            description, weight source (``hf_hub_id`` [+ ``hf_hub_filename``] or ``file``),
            ``classifier`` and ``first_conv`` key prefixes for head/stem adaptation.
        test_kwargs: a tiny configuration for the conformance kit and quick benchmarks.
        checkpoint_filter: ``fn(state_dict, model) -> state_dict`` run on every load path before the
            strict load (foreign key layouts, resampled position embeddings).

    The factory is returned unchanged, so it can still be called directly.
    """
    if task not in TASKS:
        raise ValueError(f"register_model: task {task!r} is not one of {', '.join(TASKS)}")
    missing = [k for k in REQUIRED_CFG_FIELDS if k not in default_cfg]
    if missing:
        raise ValueError(f"register_model: default_cfg lacks required field(s) {missing}")

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        if _is_builtin(_specs.get(fn.__name__)) and not fn.__module__.startswith("vgzoo."):
            return fn  # a plugin re-registering a built-in name: the built-in stays (get_entry_point picks it)
        doc = inspect.getdoc(fn) or ""
        description = default_cfg.get("description") or (doc.splitlines()[0] if doc else "")
        _specs[fn.__name__] = ModelSpec(
            name=fn.__name__,
            factory=fn,
            family=family,
            task=task,
            default_cfg=dict(default_cfg),
            test_kwargs=dict(test_kwargs or {}),
            checkpoint_filter=checkpoint_filter,
            description=description,
        )
        return fn

    return decorator


def entry_points(refresh: bool = False) -> dict[str, list[EntryPointRecord]]:
    """Every ``vgzoo.models`` entry point in installed metadata, by model name (no imports)."""
    global _entry_points
    if _entry_points is None or refresh:
        found: dict[str, list[EntryPointRecord]] = {}
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.metadata["Name"] if ep.dist is not None else "<unknown>"
            record = EntryPointRecord(ep.name, ep.value, dist)
            records = found.setdefault(ep.name, [])
            # The same distribution seen twice on sys.path (e.g. an editable install) is one claim.
            if all((r.distribution, r.value) != (dist, ep.value) for r in records):
                records.append(record)
        _entry_points = found
    return _entry_points


def duplicates() -> dict[str, list[EntryPointRecord]]:
    """Model names claimed by more than one distribution."""
    return {name: recs for name, recs in entry_points().items() if len(recs) > 1}


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
    builtin = [r for r in records if r.distribution == BUILTIN_DISTRIBUTION]
    if len(records) > 1 and len(builtin) == 1:
        return builtin[0]  # a plugin cannot take over a built-in name; `vgzoo plugins` reports its claim
    if len(records) > 1:
        claims = "; ".join(f"{r.distribution} ({r.value})" for r in records)
        raise PluginError(
            f"Model name {name!r} is claimed by {len(records)} distributions: {claims}. "
            "Uninstall one of them, or ask its author to rename the model."
        )
    return records[0]


def load_spec(name: str) -> ModelSpec:
    """Import the module that holds ``name`` (only that one) and return its registered spec.

    Names registered at run time (``@register_model`` in a script or notebook, no entry point) are
    found too; an entry point always takes precedence so a doubly claimed name is never hidden.
    """
    if name not in entry_points() and name in _specs:
        return _specs[name]
    record = get_entry_point(name)
    where = f"entry point {record.name} = {record.value!r} of distribution {record.distribution!r}"
    module_name = record.module
    if module_name in _import_failures:
        exc = _import_failures[module_name]
        raise PluginError(f"Cannot load model {name!r}: {where} failed to import: {exc!r}") from exc
    try:
        module = importlib.import_module(module_name)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a broken plugin must never break the zoo, not even with sys.exit() on import
        _import_failures[module_name] = exc
        raise PluginError(f"Cannot load model {name!r}: {where} failed to import: {exc!r}") from exc
    factory = getattr(module, record.attr, None)
    if factory is None:
        raise PluginError(f"Cannot load model {name!r}: {where}: module has no attribute {record.attr!r}")
    spec = _specs.get(name)
    if spec is None or spec.factory is not factory:
        registered = getattr(factory, "__name__", record.attr)
        raise PluginError(
            f"Cannot load model {name!r}: {where} points at {registered!r}, which is not registered under "
            f"the name {name!r}. The entry point's name must equal the factory's name, and the factory "
            "must be decorated with @vgzoo.register_model."
        )
    return spec


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


def loaded_modules() -> list[str]:
    """Model modules imported so far (used by tests that check listing is lazy)."""
    modules = {r.module for recs in entry_points().values() for r in recs}
    return sorted(m for m in modules if m in sys.modules)
