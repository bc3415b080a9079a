"""The run folder rule: ``train`` writes only into a new or empty folder, or continues a run of the same model.

Anything else (another model's run, a ``save_pretrained`` folder, a folder of the user's files) is refused before
anything is written, with one line saying what is there and what to do; ``overwrite=True`` (``--overwrite``) moves
the old folder aside to ``DIR.old-<UTC time>`` and never deletes it.

A run holds an exclusive OS lock on its folder (:class:`RunLock`) from before these checks until it returns, so a
second run into the same folder at the same time is refused instead of overwriting the first one's checkpoints.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not locked (docs/train.md says so)
    fcntl = None

from ..errors import VgzooError
from . import checkpoint as ckpt


class RunDirError(VgzooError, FileExistsError):
    """``--out`` holds something that is not this run: refused, so nothing the user did not ask for is replaced."""


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def run_model(run_dir: Path) -> str | None:
    """The model name a vgzoo run folder holds (from its newest checkpoint, else its config.json), or None."""
    latest = ckpt.latest_checkpoint(run_dir)
    if latest is not None:
        name = read_json(latest / ckpt.STATE_JSON).get("config", {}).get("model")
        if name:
            return str(name)
    cfg = read_json(run_dir / "config.json")
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
    cfg = read_json(run_dir / "config.json")
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


def claim(run_dir: Path, *, overwrite: bool, log=print, lock: RunLock | None = None) -> None:
    """Make ``run_dir`` safe to start a fresh run in, or refuse.

    ``lock``, held on ``run_dir``, is taken again on the new, empty folder when ``overwrite`` moves the old one aside.

    Raises:
        RunDirError: ``run_dir`` is a file, or a folder with content, and ``overwrite`` is false; or another run took
            the new folder first.
    """
    what = describe(run_dir)
    if what is None:
        return
    if not overwrite or not run_dir.is_dir():
        resume = "continue it with --resume (resume=True), " if what.startswith("a vgzoo run") else ""
        if what.endswith("no complete checkpoint"):  # killed in its first save: --resume starts it over
            resume = ("start it over with --resume (resume=True: from step 0 with its saved options, what it left "
                      "moved aside), ")
        move = (" or pass --overwrite (overwrite=True) to move it aside to "
                f"{run_dir.name}.old-<UTC time>" if run_dir.is_dir() else "")
        advice = f"{resume}{'choose' if resume else 'Choose'} another --out{move}."
        raise RunDirError(f"--out {str(run_dir)!r} already holds {what}; nothing was written. "
                          f"{advice[0].upper()}{advice[1:]}")
    target = aside_name(run_dir)
    os.replace(run_dir, target)
    log(f"--overwrite: moved the old contents of {run_dir} ({what}) to {target}")
    if lock is not None and lock.enabled:
        lock.acquire()


def _holder(fd: int) -> str:
    """`` (pid N)`` of the process that holds the flock on ``fd``'s inode, read from ``/proc/locks``; else ``""``."""
    try:
        inode = str(os.fstat(fd).st_ino)
        with open("/proc/locks", encoding="ascii") as f:
            for line in f:
                fields = [x for x in line.split() if x != "->"]  # "1: FLOCK ADVISORY WRITE 4242 fd:01:1234 0 EOF"
                if len(fields) > 5 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == inode:
                    return f" (pid {fields[4]})"
    except (OSError, ValueError):
        pass
    return ""


class RunLock:
    """An exclusive ``flock`` on the run folder itself, held while a run may write into it.

    No lock file is involved: the lock belongs to the folder's open descriptor, so the kernel releases it when the
    process ends, however it ends (SIGKILL included), and nothing stale is ever left to delete by hand. A folder
    this lock created is removed again on release when the run wrote nothing into it.
    """

    def __init__(self, run_dir: Path, *, enabled: bool = True, log: Callable[[str], None] = print) -> None:
        self.run_dir, self.enabled, self.log = run_dir, enabled, log
        self._fds: list[int] = []
        self._created = False

    def __enter__(self) -> RunLock:
        if self.enabled:
            self.acquire()
        return self

    def acquire(self) -> None:
        """Lock ``run_dir`` (created when missing; a file there is left to :func:`claim` to refuse).

        Raises:
            RunDirError: another process holds the lock: a run is writing into this folder now.
        """
        if fcntl is None:
            return
        self.run_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.run_dir.mkdir()
            self._created = True
        except FileExistsError:
            if not self.run_dir.is_dir():
                return
        fd = os.open(self.run_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RunDirError(
                f"--out {str(self.run_dir)!r} is in use: another vgzoo train{holder} is writing into it now, and two "
                "runs in one folder overwrite each other's checkpoints; nothing was written. Wait for that run to "
                "end (--resume then continues it), or choose another --out."
            ) from None
        except OSError as exc:  # a file system without locks (some network mounts): say so and go on
            os.close(fd)
            self.log(f"warning: cannot lock {self.run_dir} ({exc}); a second run started into this --out at the "
                     "same time would not be refused")
            return
        self._fds.append(fd)

    def __exit__(self, *exc) -> None:
        while self._fds:
            os.close(self._fds.pop())
        if self._created:
            try:
                self.run_dir.rmdir()  # only when the run wrote nothing (rmdir never removes content)
            except OSError:
                pass
