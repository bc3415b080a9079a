"""Atomic file writes: a temporary file beside the target, synced to disk, then renamed over it.

The lowest layer of vgzoo's IO (the download layer and the weights IO both write through it), so a crash mid-write
never leaves a half-written file where a good one stood. :func:`atomic_write_many` does the same for a batch of
files (generated images) with one sync of the file system for all of them instead of an fsync each.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], *, to_file: bool = False) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it over ``path``.

    With ``to_file``, ``write`` gets the open temporary file (binary) instead of its path: it is written and synced
    through one open, where a writer that opens the path itself means opening it again to sync it (many small
    files, such as generated images, pay for those calls).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, fd = _temporary_beside(path)
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
        _remove(tmp)
        _raise_naming(exc, path)
    return path


def atomic_write_many(paths: Sequence[str | os.PathLike], writes: Sequence[Callable[[BinaryIO], None]],
                      threads: int = 1) -> list[Path]:
    """Write ``writes[i](file)`` to ``paths[i]`` for every i, each file atomically, from ``threads`` threads.

    Every file goes to a temporary file beside its target first; then the file systems holding them are synced
    once (Linux's ``syncfs``; elsewhere each file is fsynced as :func:`atomic_write` does) and the temporary files
    are renamed over their targets. An fsync per file costs a journal commit each, which for many small files
    (generated images) takes longer than writing them. A write that fails leaves no target of the batch changed
    and no temporary file; a rename that fails (a folder where a file should go) leaves the files renamed before it,
    each complete.
    """
    paths = [Path(p) for p in paths]
    if len(paths) != len(writes):
        raise ValueError(f"{len(paths)} paths for {len(writes)} writes; expected one write per path.")
    folders = list(dict.fromkeys(p.parent for p in paths))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    syncfs = _syncfs()
    staged: list[str] = []  # every temporary file made, for the clean-up
    lock, failed = threading.Lock(), threading.Event()

    def stage(path: Path, write: Callable[[BinaryIO], None]) -> str | None:
        if failed.is_set():  # another file failed: the batch is abandoned
            return None
        tmp, fd = _temporary_beside(path)
        with lock:
            staged.append(tmp)
        try:
            with open(fd, "wb") as f:
                write(f)
                f.flush()
                if syncfs is None:
                    os.fsync(fd)
        except BaseException as exc:
            failed.set()
            _raise_naming(exc, path)
        return tmp

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(threads, len(paths)))) as pool:
            futures = [pool.submit(stage, p, w) for p, w in zip(paths, writes, strict=True)]
        temporaries = [f.result() for f in futures]  # the pool has finished: the first failure, in order
        if syncfs is not None:
            for folder in {folder.stat().st_dev: folder for folder in folders}.values():  # one per file system
                syncfs(folder)
        for tmp, path in zip(temporaries, paths, strict=True):
            try:
                os.replace(tmp, path)
            except BaseException as exc:
                _raise_naming(exc, path)
    except BaseException:
        for tmp in staged:  # those renamed are gone already
            _remove(tmp)
        raise
    return paths


def _temporary_beside(path: Path) -> tuple[str, int]:
    """A new temporary file in ``path``'s folder, open for writing: ``(its path, the descriptor)``."""
    tmp = os.path.join(path.parent, f".{path.name}.{os.urandom(6).hex()}.tmp")  # not mkstemp: its files are 0600
    return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any new file


def _remove(tmp: str) -> None:
    if os.path.exists(tmp):
        os.unlink(tmp)


def _raise_naming(exc: BaseException, path: Path) -> None:
    """Raise ``exc``; a full or read-only disk as an OSError naming the file it was writing."""
    code = _os_error_code(exc)
    if code is not None:
        raise OSError(code, f"{os.strerror(code)} while writing", str(path)) from exc
    raise exc


@functools.cache
def _syncfs() -> Callable[[Path], None] | None:
    """``syncfs(folder)``: flush the file system holding ``folder`` (Linux), or None where libc has no syncfs."""
    import ctypes

    from ._libc import c_library

    call = getattr(c_library(), "syncfs", None)  # no C library (None), or one without syncfs
    if call is None:
        return None

    def syncfs(folder: Path) -> None:
        fd = os.open(folder, os.O_RDONLY)
        try:
            if call(fd) != 0:
                code = ctypes.get_errno()
                raise OSError(code, f"{os.strerror(code)} while syncing", str(folder))
        finally:
            os.close(fd)

    return syncfs


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
