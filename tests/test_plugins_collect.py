"""The quickstart's `python -m pytest` passes without the plugins installed: their tests are not collected."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _plugin(root: Path, folder: str, package: str) -> None:
    (root / folder / package).mkdir(parents=True)
    (root / folder / package / "__init__.py").write_text("")
    (root / folder / "pyproject.toml").write_text(f"[project]\nname = '{folder}'\n")
    (root / folder / "tests").mkdir()
    (root / folder / "tests" / "test_it.py").write_text(f"import {package}\n\ndef test_it():\n    pass\n")


def test_plugin_tests_are_collected_only_when_installed(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy(ROOT / "plugins" / "conftest.py", plugins / "conftest.py")
    _plugin(plugins, "vgzoo-not-installed", "vgzoo_surely_not_installed_pkg")
    _plugin(plugins, "vgzoo-installed", "vgzoo")  # importable: collected
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "plugins"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout and "error" not in proc.stdout.lower()
