"""The reference fixtures and vgzoo's loopback servers for the plugin's tests.

``shared/reference/biggan`` sits beside the repository clone (``VGZOO_REFERENCE_DIR`` points elsewhere; tests skip
where it is absent); the loopback HTTP and Hub servers are vgzoo's own test helpers (``tests/_http.py``,
``tests/_hub_server.py``), put on the path here. (A module name of its own: the test folders of several plugins
share one interpreter.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
REFERENCE = Path(os.environ.get("VGZOO_REFERENCE_DIR", REPO.parent / "shared" / "reference")) / "biggan"
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))
