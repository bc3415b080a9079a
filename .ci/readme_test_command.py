"""Print the README's test command: the one line of README.md's bash blocks that installs (``pip install``) and
runs ``pytest``. .ci/run runs it as the README states it, so the two cannot drift apart (tests/test_docs.py checks
that exactly one such line exists and that it has both halves)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)


def test_command(text: str) -> str:
    """The README's test command; raises ValueError unless exactly one line installs and runs pytest."""
    lines = [line.strip() for block in BLOCK.findall(text) for line in block.splitlines()
             if "pip install" in line and "pytest" in line]
    if len(lines) != 1:
        raise ValueError(f"README.md must hold exactly one test command (a bash line with pip install ... && "
                         f"python -m pytest ...); found {len(lines)}: {lines}")
    install, sep, run = lines[0].partition(" && ")
    if not sep or not install.startswith("pip install") or "pytest" not in run or "pytest" in install:
        raise ValueError(f"README.md's test command must read 'pip install ... && python -m pytest ...': {lines[0]!r}")
    return lines[0]


if __name__ == "__main__":
    try:
        print(test_command(README.read_text(encoding="utf-8")))
    except ValueError as exc:
        sys.exit(f"error: {exc}")
