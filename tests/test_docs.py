"""The generated docs (CLI reference, model table) match the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_generated_docs_are_current():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "generate.py"), "--check"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr + "\nRun `python docs/generate.py` and commit the result."


def test_cli_reference_covers_every_command():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import generate
    finally:
        sys.path.pop(0)
    text = generate.cli_reference()
    for command in ("vgzoo list", "vgzoo info", "vgzoo plugins", "vgzoo convert"):
        assert f"## `{command}`" in text
