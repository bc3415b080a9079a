"""Import directions (docs/architecture.md): nothing inside vgzoo but its __init__ and the CLI uses the top-level package."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "vgzoo"
ALLOWED = {PACKAGE / "__init__.py", PACKAGE / "cli.py", PACKAGE / "__main__.py"}


def _module_name(path: Path) -> list[str]:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


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


def test_the_check_sees_an_upward_import(tmp_path):
    probe = PACKAGE / "models" / "vit.py"
    assert _upward_imports(probe) == []
    fake = PACKAGE / "models" / "_probe_upward.py"
    try:
        fake.write_text("import vgzoo\nfrom .. import create\nfrom .. import _hub\n")
        assert len(_upward_imports(fake)) == 2
    finally:
        fake.unlink()
