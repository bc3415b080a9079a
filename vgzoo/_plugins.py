"""Entry points: the one loader behind every group vgzoo reads (``vgzoo.models``, ``vgzoo.tasks``,
``vgzoo.converters``).

Discovery reads installed metadata only (once per group, cached), so listing imports nothing. This module is the one
place that says what *built-in* means: what vgzoo's own distribution declares (and, for things defined in code, a
module under ``vgzoo.``). A built-in name wins: a plugin that claims one is ignored and reported. A name two plugins
claim is refused, naming both. An entry point's module is imported once: a module that fails is remembered with its
exception and reported again without another import, so a broken plugin never breaks the zoo (not even one that
calls ``sys.exit`` on import).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from .errors import PluginError

BUILTIN_DISTRIBUTION = "vgzoo"


def is_builtin_module(module: str) -> bool:
    """Whether ``module`` is part of vgzoo itself (a model class or task defined in code)."""
    return module == "vgzoo" or module.startswith("vgzoo.")


@dataclass(frozen=True)
class EntryPointRecord:
    """One entry point as installed metadata declares it."""

    name: str
    value: str
    distribution: str

    @property
    def module(self) -> str:
        return self.value.partition(":")[0].strip()

    @property
    def attr(self) -> str:
        return self.value.partition(":")[2].strip()

    @property
    def builtin(self) -> bool:
        return self.distribution == BUILTIN_DISTRIBUTION

    @property
    def where(self) -> str:
        return f"entry point {self.name} = {self.value!r} of distribution {self.distribution!r}"


# module name -> the exception its import raised (shared by every group: a module is imported once).
_import_failures: dict[str, BaseException] = {}


class EntryPointGroup:
    """The entry points of one group: discovered lazily, de-duplicated, resolved with built-in precedence.

    Args:
        group: the entry-point group (``"vgzoo.models"``).
        kind: what its entries are, for messages (``"model"``).
        builtin_names: names vgzoo defines in code rather than through entry points (the built-in tasks); a plugin
            claiming one is ignored like one claiming a built-in entry point.
    """

    def __init__(self, group: str, kind: str, builtin_names: tuple[str, ...] = ()) -> None:
        self.group, self.kind, self.builtin_names = group, kind, builtin_names
        self._records: dict[str, list[EntryPointRecord]] | None = None

    def records(self, refresh: bool = False) -> dict[str, list[EntryPointRecord]]:
        """Every entry point of the group by name (more than one record: a name claimed twice). Nothing is imported."""
        if self._records is None or refresh:
            found: dict[str, list[EntryPointRecord]] = {}
            for ep in metadata.entry_points(group=self.group):
                dist = ep.dist.metadata["Name"] if ep.dist is not None else "<unknown>"
                records = found.setdefault(ep.name, [])
                # The same distribution seen twice on sys.path (e.g. an editable install) is one claim.
                if all((r.distribution, r.value) != (dist, ep.value) for r in records):
                    records.append(EntryPointRecord(ep.name, ep.value, dist))
            self._records = found
        return self._records

    def overridden(self, name: str) -> bool:
        """Whether ``name``'s plugin claims lose to a built-in of the same name."""
        records = self.records().get(name, [])
        return name in self.builtin_names or (any(r.builtin for r in records) and len(records) > 1)

    def ignored_message(self, record: EntryPointRecord) -> str:
        return (f"ignored: {record.name!r} is the name of a built-in vgzoo {self.kind}, which wins; the plugin must "
                f"rename its {self.kind} ({record.where})")

    def resolve(self, name: str) -> EntryPointRecord | None:
        """The one record that counts for ``name`` (None when no plugin or built-in declares it).

        Raises:
            PluginError: two distributions other than vgzoo claim the name, or a plugin claims a name vgzoo defines
                in code.
        """
        records = self.records().get(name)
        if not records:
            return None
        builtin = [r for r in records if r.builtin]
        if builtin:
            return builtin[0]  # a plugin cannot take over a built-in name; `vgzoo plugins` reports its claim
        if name in self.builtin_names:
            raise PluginError(self.ignored_message(records[0]))
        if len(records) > 1:
            claims = "; ".join(f"{r.distribution} ({r.value})" for r in records)
            raise PluginError(
                f"{self.kind.capitalize()} name {name!r} is claimed by {len(records)} distributions: {claims}. "
                f"Uninstall one of them, or ask its author to rename the {self.kind}."
            )
        return records[0]

    def load(self, record: EntryPointRecord) -> Any:
        """The object ``record`` names, importing its module once (a failure is remembered and reported again)."""
        what = f"Cannot load {self.kind} {record.name!r}: {record.where}"
        module_name = record.module
        if module_name in _import_failures:
            exc = _import_failures[module_name]
            raise PluginError(f"{what} failed to import: {exc!r}") from exc
        try:
            module = importlib.import_module(module_name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a broken plugin must never break the zoo, not even with sys.exit() on import
            _import_failures[module_name] = exc
            raise PluginError(f"{what} failed to import: {exc!r}") from exc
        target = getattr(module, record.attr, None)
        if target is None:
            raise PluginError(f"{what}: module has no attribute {record.attr!r}")
        return target

    def report(self, check) -> list[dict[str, str]]:
        """One row per installed entry point, ``{"name", "entry_point", "distribution", "status", "error"}``:
        ``check(name)`` loading it (any exception is its error); a plugin's claim on a built-in name is an error."""
        rows = []
        for name, records in sorted(self.records().items()):
            for record in records:
                try:
                    if self.overridden(name) and not record.builtin:
                        raise PluginError(self.ignored_message(record))
                    check(name)
                    status, detail = "ok", ""
                except Exception as exc:  # report every failure, never stop at the first
                    status, detail = "error", " ".join(str(exc).split())
                rows.append({"name": name, "entry_point": record.value, "distribution": record.distribution,
                             "status": status, "error": detail})
        return rows
