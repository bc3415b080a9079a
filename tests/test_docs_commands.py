"""Every ``bash`` block of README.md and docs/ runs as written (docs/cli.md excepted: it is generated).

Mechanism (documented in docs/index.md, "Docs that run"):

- Blocks of one page run in order, in one temporary folder per page, each in a ``bash -euo pipefail`` subprocess
  with a time limit, with ``VGZOO_DOCS_TINY=1`` (training capped at a few steps, see :mod:`vgzoo._docs`).
- Downloads go to a loopback mirror (``VGZOO_MIRROR``) serving the reference datasets in their upstream archive
  formats (built as in tests/test_reference_data.py); the Hugging Face Hub is offline.
- An HTML comment right above a block changes how it runs: ``<!-- docs-test: slow -->`` (run only with
  ``VGZOO_TEST_SLOW=1``, which ``.ci/run`` sets, so CI runs every documented command),
  ``<!-- docs-test: network -->`` (needs the network: runs against the loopback mirror),
  ``<!-- docs-test: skip REASON -->`` (not run; the reason is shown by pytest -ra).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _http import LoopbackServer

ROOT = Path(__file__).parents[1]
GENERATED = {"cli.md", "models-table.md"}
BLOCK = re.compile(r"(?:<!--\s*docs-test:\s*(?P<marker>[^>]*?)\s*-->[ \t]*\n)?^```bash[ \t]*\n(?P<body>.*?)^```",
                   re.S | re.M)
TIME_LIMIT = 300  # seconds per block
SLOW_LIMIT = 1200  # seconds per slow block (full-size 256 px GANs for 2 steps on a busy CPU)


def pages() -> list[Path]:
    docs = sorted((ROOT / "docs").glob("*.md")) + sorted((ROOT / "docs").glob("models/*.md"))
    return [ROOT / "README.md"] + [p for p in docs if p.name not in GENERATED]


def blocks() -> list:
    params = []
    for page in pages():
        text = page.read_text(encoding="utf-8")
        for m in BLOCK.finditer(text):
            line = text.count("\n", 0, m.start("body"))
            marker = (m.group("marker") or "").strip()
            tokens = {t.strip() for t in marker.split(",")} if not marker.startswith("skip") else set()
            unknown = tokens - {"slow", "network", ""}
            assert not unknown, f"{page}:{line}: unknown docs-test marker(s) {sorted(unknown)}; use skip, slow, network"
            marks = []
            if marker.startswith("skip"):
                marks.append(pytest.mark.skip(reason=f"{page.relative_to(ROOT)}:{line}: {marker[4:].strip(' :')}"))
            elif "slow" in tokens:
                marks.append(pytest.mark.slow)
                if os.environ.get("VGZOO_TEST_SLOW", "") in ("", "0"):
                    marks.append(pytest.mark.skip(reason="slow docs block: set VGZOO_TEST_SLOW=1 to run it"))
            rel = page.relative_to(ROOT).as_posix()
            limit = SLOW_LIMIT if "slow" in tokens else TIME_LIMIT
            params.append(pytest.param(rel, line, m.group("body"), limit, id=f"{rel}:{line}", marks=marks))
    return params


@pytest.fixture(scope="module")
def mirror():
    """The loopback mirror with the reference datasets the docs fetch."""
    from test_reference_data import FACADES, H2Z, facades_tar, h2z_zip

    with LoopbackServer() as server:
        server.add(H2Z, h2z_zip())
        server.add(FACADES, facades_tar())
        yield server


@pytest.fixture(scope="module")
def page_dirs(tmp_path_factory):
    """One working folder per page, shared by its blocks (a later block uses what an earlier one made)."""
    root = tmp_path_factory.mktemp("docs")
    return root, {}


def _env(root: Path, mirror: LoopbackServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VGZOO_OFFLINE", "PYTEST_CURRENT_TEST")}
    env.update(
        PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
        VGZOO_DOCS_TINY="1", VGZOO_MIRROR=mirror.url, VGZOO_CACHE=str(root / "cache"), HF_HUB_OFFLINE="1",
        HF_HOME=str(root / "hf"), MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1",
    )
    return env


@pytest.mark.parametrize(("page", "line", "script", "limit"), blocks())
def test_docs_block_runs(page, line, script, limit, page_dirs, mirror):
    root, dirs = page_dirs
    where = dirs.setdefault(page, root / page.replace("/", "_").removesuffix(".md"))
    where.mkdir(exist_ok=True)
    try:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=where, env=_env(root, mirror),
                              capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{page}:{line} ran past {limit} s:\n{script}\n{exc.stdout or ''}{exc.stderr or ''}")
    assert proc.returncode == 0, (
        f"{page}:{line} failed (exit {proc.returncode}) in {where}:\n{script}\n--- stdout\n{proc.stdout[-3000:]}"
        f"\n--- stderr\n{proc.stderr[-3000:]}"
    )


def test_every_page_with_commands_is_covered():
    ids = {p.id.split(":")[0] for p in blocks()}
    assert "README.md" in ids and "docs/train.md" in ids and "docs/cli.md" not in ids
