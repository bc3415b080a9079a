"""Where the StyleGAN2-ADA reference fixtures are: ``shared/reference/stylegan2`` beside the vgzoo checkout.

``VGZOO_REFERENCE_DIR`` points elsewhere (a git worktree that is not beside ``shared/``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
REF = Path(os.environ.get("VGZOO_REFERENCE_DIR", ROOT.parent / "shared" / "reference")) / "stylegan2"
needs_ref = pytest.mark.skipif(not REF.is_dir(), reason=f"StyleGAN2 reference fixtures not found at {REF}")

# vgzoo's own test helpers (the loopback HTTP server): tests/ of the checkout this plugin is in
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))
