"""Tiny mode for running the documentation's commands as tests: ``VGZOO_DOCS_TINY=1``.

tests/test_docs_commands.py runs every ``bash`` block of README.md and docs/ as written; with this variable set the
commands keep their meaning but stay cheap: a training run is capped at :data:`TINY_STEPS` steps. The variable is
for tests and demos only; it is documented in docs/index.md ("Docs that run").
"""

from __future__ import annotations

import os

ENV = "VGZOO_DOCS_TINY"
TINY_STEPS = 2


def docs_tiny() -> bool:
    """True when ``VGZOO_DOCS_TINY`` is set to anything but ``""``/``0``."""
    return os.environ.get(ENV, "") not in ("", "0")


def tiny_train_length(steps: int | None, epochs: int | None) -> tuple[int | None, int | None]:
    """``(steps, epochs)`` for a training run: unchanged normally, at most :data:`TINY_STEPS` steps in tiny mode."""
    if not docs_tiny():
        return steps, epochs
    return min(steps, TINY_STEPS) if steps else TINY_STEPS, None
