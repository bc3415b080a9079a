"""Atomic file writes: a temporary file beside the target, fsynced, then renamed over it.

The lowest layer of vgzoo's IO (the download layer and the weights IO both write through it), so a crash mid-write
never leaves a half-written file where a good one stood.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], *, to_file: bool = False) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it over ``path``.

    With ``to_file``, ``write`` gets the open temporary file (binary) instead of its path: it is written and synced
    through one open, where a writer that opens the path itself means opening it again to sync it (many small
    files, such as generated images, pay for those calls).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = os.path.join(path.parent, f".{path.name}.{os.urandom(6).hex()}.tmp")  # not mkstemp: its files are 0600
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any new file
    try:
        if to_file:
            with open(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(fd)
        else:
            mode = os.fstat(fd).st_mode & 0o777
            os.close(fd)
            write(tmp)
            os.chmod(tmp, mode)  # some writers (safetensors) replace the file with a 0600 one of their own
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        code = _os_error_code(exc)
        if code is not None:  # a full or read-only disk, reported with the file it was writing
            raise OSError(code, f"{os.strerror(code)} while writing", str(path)) from exc
        raise
    return path


def _os_error_code(exc: BaseException) -> int | None:
    """The errno of an I/O failure that does not name its file: an OSError without a filename, or a writer's own
    error carrying one (safetensors reports ``I/O error: No space left on device (os error 28)``)."""
    import re

    if isinstance(exc, OSError):
        return exc.errno if exc.filename is None and exc.errno else None
    if isinstance(exc, Exception):
        found = re.search(r"\(os error (\d+)\)", str(exc))
        return int(found.group(1)) if found else None
    return None


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")
