"""Collect a plugin's tests only when its package is installed.

``python -m pytest`` from the repository root collects ``plugins/`` too (``testpaths``); the quickstart installs
vgzoo alone, so a plugin whose package is not importable is skipped at collection instead of failing with an
ImportError. Install them with ``pip install -e plugins/vgzoo-vanilla-gan -e plugins/vgzoo-restoration
-e plugins/vgzoo-stylegan2``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

HERE = Path(__file__).parent

collect_ignore: list[str] = []
for plugin in sorted(p for p in HERE.iterdir() if p.is_dir() and (p / "pyproject.toml").is_file()):
    packages = [d.name for d in plugin.iterdir() if (d / "__init__.py").is_file()]
    if not packages or any(importlib.util.find_spec(name) is None for name in packages):
        collect_ignore.append(plugin.name)
