"""Import directions (docs/architecture.md): no circle, no import from a lower layer to a higher one, and nothing
inside vgzoo but its __init__ and the CLI uses the top-level package.

The layers are read from the table in docs/architecture.md, so the page draws the layers the code has.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "vgzoo"
ALLOWED = {PACKAGE / "__init__.py", PACKAGE / "cli.py", PACKAGE / "__main__.py"}
LAYER_ROW = re.compile(r"^\| (\d+) \| (`[^|]+`) \|", re.M)


def _module_name(path: Path, package: Path = PACKAGE) -> list[str]:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {".".join(_module_name(p, package)): p for p in package.rglob("*.py") if "_plugin_template" not in p.parts}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks: annotations only, never run."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(path: Path, modules: dict[str, Path], root: Path = PACKAGE) -> dict[str, int]:
    """The vgzoo modules ``path`` imports (at the top or inside a function), each with the line of its first import."""
    tree = ast.parse(path.read_text(), str(path))
    typing_only = _type_checking_lines(tree)
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name[:-1]
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or node.lineno in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names]
        for target in targets:
            while target and target not in modules:  # `from .x import name`: the module x
                target = target.rpartition(".")[0]
            if target and target.split(".")[0] == "vgzoo":
                found.setdefault(target, node.lineno)
    found.pop(".".join(name), None)
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, dict[str, int]]:
    modules = _modules(package)
    return {name: imports_of(path, modules, package) for name, path in modules.items()}


def layers(doc: Path = ROOT / "docs" / "architecture.md") -> dict[str, int]:
    """Module prefix -> layer, from the table of docs/architecture.md."""
    table = {}
    for height, names in LAYER_ROW.findall(doc.read_text()):
        for prefix in re.findall(r"`([\w.]+)`", names):
            table[prefix] = int(height)
    return table


def layer_of(module: str, table: dict[str, int]) -> int | None:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in table:
            return table[".".join(parts[:n])]
    return None


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def problems(graph: dict[str, dict[str, int]], table: dict[str, int]) -> list[str]:
    out = []
    for component in circles(graph):
        edges = [f"{a} -> {b} (line {graph[a][b]})" for a in component for b in graph[a] if b in component]
        out.append(f"import circle {component}: {'; '.join(edges)}")
    for module in sorted(graph):
        own = layer_of(module, table)
        if own is None:
            out.append(f"{module} is in no layer of docs/architecture.md's table; add it where it belongs")
            continue
        for target, line in sorted(graph[module].items()):
            theirs = layer_of(target, table)
            if theirs is not None and theirs > own:
                out.append(f"{module} (layer {own}) imports {target} (layer {theirs}) at line {line}: upward")
    return out


def test_the_import_graph_has_no_circle_and_runs_downward():
    table = layers()
    assert {"vgzoo._factory", "vgzoo.errors", "vgzoo.cli"} <= set(table)  # the table was read
    graph = import_graph()
    assert graph["vgzoo._factory"].keys() >= {"vgzoo._builder", "vgzoo.pretrained"}  # the walk sees real edges
    assert problems(graph, table) == []


def test_the_check_sees_a_circle_an_upward_import_and_an_unplaced_module(tmp_path):
    fake = tmp_path / "vgzoo"
    (fake / "core").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "core" / "__init__.py").write_text("")
    (fake / "core" / "a.py").write_text("from . import b\n")
    (fake / "core" / "b.py").write_text("def f():\n    from .a import g\n")  # deferred: still an edge
    (fake / "low.py").write_text("from .high import x\nfrom typing import TYPE_CHECKING\n"
                                 "if TYPE_CHECKING:\n    from .core import a\n")
    (fake / "high.py").write_text("x = 1\n")
    (fake / "stray.py").write_text("")
    graph = import_graph(fake)
    assert "vgzoo.core" not in graph["vgzoo.low"]  # a TYPE_CHECKING import is no edge
    found = problems(graph, {"vgzoo": 9, "vgzoo.core": 5, "vgzoo.low": 1, "vgzoo.high": 2})
    assert any(p.startswith("import circle ['vgzoo.core.a', 'vgzoo.core.b']") for p in found), found
    assert "vgzoo.low (layer 1) imports vgzoo.high (layer 2) at line 1: upward" in found
    assert not any("stray" in p for p in found)  # placed by the `vgzoo` prefix
    found = problems(graph, {"vgzoo.core": 5, "vgzoo.low": 1, "vgzoo.high": 2})
    assert any(p.startswith("vgzoo.stray is in no layer") for p in found)


# ------------------------------------------------------------------------------- the top-level package
def _upward_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path)[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names
                      if a.name == "vgzoo" or a.name.startswith("vgzoo.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "vgzoo":  # names from the package itself, not one of its modules
                found += [f"line {node.lineno}: from vgzoo import {a.name}" for a in node.names
                          if not ((PACKAGE / f"{a.name}.py").is_file() or (PACKAGE / a.name).is_dir())]
            elif not node.level and target.startswith("vgzoo."):
                found.append(f"line {node.lineno}: from {target} import ... (use a relative import)")
    return found


def test_nothing_inside_vgzoo_imports_the_top_level_package():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in ALLOWED or "_plugin_template" in path.parts:
            continue
        found = _upward_imports(path)
        if found:
            offenders[str(path.relative_to(PACKAGE.parent))] = found
    assert not offenders, offenders


@pytest.mark.parametrize("source, expected", [("import vgzoo\nfrom .. import create\nfrom .. import _hub\n", 2)])
def test_the_check_sees_an_import_of_the_top_level_package(source, expected):
    probe = PACKAGE / "models" / "vit.py"
    assert _upward_imports(probe) == []
    fake = PACKAGE / "models" / "_probe_upward.py"
    try:
        fake.write_text(source)
        assert len(_upward_imports(fake)) == expected
    finally:
        fake.unlink()
