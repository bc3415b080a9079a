"""The reference fixtures and vgzoo's loopback servers for the plugin's tests.

``shared/reference/biggan`` sits beside the repository clone (tests skip where it is absent); the loopback HTTP
and Hub servers are vgzoo's own test helpers (``tests/_http.py``, ``tests/_hub_server.py``), put on the path here.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
REFERENCE = REPO.parent / "shared" / "reference" / "biggan"
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))
