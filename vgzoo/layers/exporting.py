"""Whether a graph export (``torch.export``, ``torch.onnx.export(dynamo=True)``) is tracing the code.

Blocks use it to take the branch that holds for every input size and value while a graph is traced
(a data-dependent check, or a shortcut at one size, would otherwise pin the graph to the traced input).
"""

from __future__ import annotations

import torch

__all__ = ["is_exporting"]


def is_exporting() -> bool:
    """True inside a graph export; False in eager mode and on a torch too old to export (no such flag)."""
    check = getattr(torch.compiler, "is_exporting", None)
    return bool(check()) if check is not None else False
