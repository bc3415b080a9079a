"""The run folder rule: ``train`` writes only into a new or empty folder, or continues a run of the same model.

Anything else (another model's run, a ``save_pretrained`` folder, a folder of the user's files) is refused before
anything is written, with one line saying what is there and what to do; ``overwrite=True`` (``--overwrite``) moves
the old folder aside to ``DIR.old-<UTC time>`` and never deletes it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..errors import VgzooError
from . import checkpoint as ckpt


class RunDirError(VgzooError, FileExistsError):
    """``--out`` holds something that is not this run: refused, so nothing the user did not ask for is replaced."""


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def run_model(run_dir: Path) -> str | None:
    """The model name a vgzoo run folder holds (from its newest checkpoint, else its config.json), or None."""
    latest = ckpt.latest_checkpoint(run_dir)
    if latest is not None:
        name = _json(latest / ckpt.STATE_JSON).get("config", {}).get("model")
        if name:
            return str(name)
    cfg = _json(run_dir / "config.json")
    return str(cfg["model"]) if "recipe" in cfg and cfg.get("model") else None


def describe(run_dir: Path) -> str | None:
    """What a non-empty folder holds, in words; None for a folder that does not exist or is empty."""
    if not run_dir.exists():
        return None
    if not run_dir.is_dir():
        return "a file (not a folder)"
    names = sorted(os.listdir(run_dir))
    if not names:
        return None
    model = run_model(run_dir)
    if model is not None or (run_dir / ckpt.CHECKPOINTS).is_dir() or (run_dir / "metrics.jsonl").is_file():
        latest = ckpt.latest_checkpoint(run_dir)
        where = f", newest checkpoint {latest.name}" if latest is not None else ", no complete checkpoint"
        return f"a vgzoo run of {model or 'an unknown model'}{where}"
    cfg = _json(run_dir / "config.json")
    if cfg and any(run_dir.glob("*.safetensors")):
        arch = cfg.get("architecture") or cfg.get("pretrained_cfg", {}).get("architecture") or "a model"
        return f"a saved model folder ({arch})"
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{len(names)} other file(s): {shown}"


def aside_name(run_dir: Path) -> Path:
    """``DIR.old-<UTC time>``, with a counter when that name is taken."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = run_dir.with_name(f"{run_dir.name}.old-{stamp}")
    n = 1
    while target.exists():
        target = run_dir.with_name(f"{run_dir.name}.old-{stamp}-{n}")
        n += 1
    return target


def claim(run_dir: Path, *, overwrite: bool, log=print) -> None:
    """Make ``run_dir`` safe to start a fresh run in, or refuse.

    Raises:
        RunDirError: ``run_dir`` is a file, or a folder with content, and ``overwrite`` is false.
    """
    what = describe(run_dir)
    if what is None:
        return
    if not overwrite or not run_dir.is_dir():
        resume = "continue it with --resume (resume=True), " if what.startswith("a vgzoo run") else ""
        move = (" or pass --overwrite (overwrite=True) to move it aside to "
                f"{run_dir.name}.old-<UTC time>" if run_dir.is_dir() else "")
        advice = f"{resume}{'choose' if resume else 'Choose'} another --out{move}."
        raise RunDirError(f"--out {str(run_dir)!r} already holds {what}; nothing was written. "
                          f"{advice[0].upper()}{advice[1:]}")
    target = aside_name(run_dir)
    os.replace(run_dir, target)
    log(f"--overwrite: moved the old contents of {run_dir} ({what}) to {target}")
