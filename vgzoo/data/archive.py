"""Safe extraction of downloaded archives (zip, tar, tar.gz) into a folder that appears only when complete.

Archives come from the network, so every member is checked before anything is written: absolute paths, ``..``
components, symbolic and hard links, and device files or FIFOs are refused (zip-slip and tar-slip), and the whole
archive is refused with them. Links are refused outright rather than resolved: checking where a chain of links
leads relies on ``realpath``, which stops resolving past PATH_MAX (CVE-2025-4517 on the Python releases before
3.11.13/3.12.11, whose ``data`` filter it defeats), and a dataset archive has no need for them.

Bombs: what an archive unpacks to is capped, in total (``VGZOO_EXTRACT_MAX_BYTES``) and as a multiple of the
archive's own size (``VGZOO_EXTRACT_MAX_RATIO``). The sizes the members declare are added up while the member list
is read, so a bomb is refused before anything is written, and the bytes are counted again as they are written, so a
member that unpacks to more than it declared is stopped at the cap.

Members are unpacked into a temporary folder beside the target, the caller locates and validates the dataset inside
it, and only then is it renamed into place; a truncated or corrupt archive, a refused member or a failed validation
removes the temporary folder, so no half-extracted dataset is ever left where a complete one is expected.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from ..download import umask_mode
from ..errors import DataError

__all__ = ["MAX_BYTES_ENV", "MAX_RATIO_ENV", "UnsafeArchiveError", "extract_archive", "unpack"]

_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 1 << 20

#: Environment variable capping the bytes one archive may unpack to (``0``: no cap).
MAX_BYTES_ENV = "VGZOO_EXTRACT_MAX_BYTES"
#: Environment variable capping what one archive may unpack to, as a multiple of its own size (``0``: no cap).
MAX_RATIO_ENV = "VGZOO_EXTRACT_MAX_RATIO"
#: The default caps: the reference sets hold JPEGs, which barely compress, so they unpack to about their archive's
#: size; a bomb unpacks to a thousand times its size and more.
DEFAULT_MAX_BYTES = 32 << 30
DEFAULT_MAX_RATIO = 100.0


class UnsafeArchiveError(DataError):
    """An archive member that would write outside the target folder, or a link or device file that is refused."""


def _refuse(archive: Path, name: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"archive {str(archive)!r} was refused: member {name!r} {why}. Nothing was extracted. A dataset archive "
        "holds only plain files and folders below its root; delete the archive and fetch it from a trusted source"
    )


def _check_name(archive: Path, name: str) -> PurePosixPath:
    text = name.replace("\\", "/")
    path = PurePosixPath(text)
    if text.startswith("/") or _DRIVE.match(text):
        raise _refuse(archive, name, "has an absolute path")
    if ".." in path.parts:
        raise _refuse(archive, name, "climbs out of the target folder with '..'")
    return path


def _check_tar(archive: Path, member: tarfile.TarInfo) -> None:
    _check_name(archive, member.name)
    if member.isdev():
        raise _refuse(archive, member.name, "is a device file or FIFO")
    if member.issym():
        raise _refuse(archive, member.name, f"is a symbolic link (to {member.linkname!r}); links in archives are "
                      "not unpacked")
    if member.islnk():
        raise _refuse(archive, member.name, f"is a hard link (to {member.linkname!r}); links in archives are "
                      "not unpacked")
    if not (member.isfile() or member.isdir()):
        raise _refuse(archive, member.name, "is neither a file nor a folder")


def _check_zip(archive: Path, info: zipfile.ZipInfo) -> None:
    _check_name(archive, info.filename)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise _refuse(archive, info.filename, "is a symbolic link (links in zip archives are not unpacked)")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        raise _refuse(archive, info.filename, "is a device file, FIFO or socket")


def _corrupt(archive: Path, exc: BaseException) -> DataError:
    return DataError(
        f"archive {str(archive)!r} is truncated or corrupt ({type(exc).__name__}: {exc}); nothing was kept. "
        "Delete it and fetch it again (vgzoo data fetch NAME --force)"
    )


def _cap(env: str, default: float) -> float:
    text = os.environ.get(env, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 0:
        raise DataError(f"{env}={text!r}: expected a number >= 0 (0 lifts the cap), e.g. {env}={default:g}")
    return value or math.inf


class _Budget:
    """What one archive may still unpack to: the smaller of the byte cap and the ratio cap times its size."""

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self.size = archive.stat().st_size
        self.max_bytes = _cap(MAX_BYTES_ENV, DEFAULT_MAX_BYTES)
        self.max_ratio = _cap(MAX_RATIO_ENV, DEFAULT_MAX_RATIO)
        self.limit = min(self.max_bytes, self.max_ratio * self.size)
        self.declared = 0
        self.written = 0

    def declare(self, name: str, size: int) -> None:
        """Count a member's declared size, before anything is written."""
        self.declared += size
        if self.declared > self.limit:
            raise self._refusal(name, self.declared, "declare")

    def take(self, name: str, size: int) -> None:
        """Count bytes as they are written."""
        self.written += size
        if self.written > self.limit:
            raise self._refusal(name, self.written, "unpack")

    def _refusal(self, name: str, total: int, verb: str) -> UnsafeArchiveError:
        if self.max_bytes <= self.max_ratio * self.size:
            cap = f"the cap of {self.max_bytes:.0f} bytes ({MAX_BYTES_ENV})"
        else:
            cap = (f"{self.max_ratio:g} times the archive's {self.size} bytes ({MAX_RATIO_ENV}); a compression "
                   "bomb looks like this")
        return UnsafeArchiveError(
            f"archive {str(self.archive)!r} was refused: its members up to {name!r} {verb} {total} bytes, over "
            f"{cap}. Nothing was kept. If you trust this archive, raise the cap ({MAX_BYTES_ENV}=BYTES, "
            f"{MAX_RATIO_ENV}=RATIO; 0 lifts it) and fetch again"
        )


def _member_path(dest: Path, archive: Path, name: str) -> Path:
    return dest.joinpath(*_check_name(archive, name).parts)


def _write(source, path: Path, name: str, budget: _Budget) -> None:
    """Stream one member into a new plain file, counting its bytes against the budget as they arrive."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        for block in iter(lambda: source.read(_CHUNK), b""):
            budget.take(name, len(block))
            out.write(block)


def unpack(archive: str | os.PathLike, dest: str | os.PathLike, *, progress: bool = False) -> None:
    """Unpack a zip or tar(.gz/.bz2/.xz) archive into the existing folder ``dest`` after checking every member.

    Prefer :func:`extract_archive`, which also keeps a failed or refused extraction out of the final folder. Files
    and folders are created by this function, never by the archive modules, so only plain
    files and folders ever appear below ``dest``.

    Raises:
        UnsafeArchiveError: a refused member, or more bytes than the caps allow (see the module docstring).
        DataError: an archive that is truncated, corrupt or of an unknown format.
    """
    from tqdm.auto import tqdm

    archive, dest = Path(archive), Path(dest)
    budget = _Budget(archive)
    if zipfile.is_zipfile(archive):
        try:
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                for info in infos:
                    _check_zip(archive, info)
                    budget.declare(info.filename, info.file_size)
                for info in tqdm(infos, desc=f"unpack {archive.name}", unit="file", disable=not progress,
                                 leave=False):
                    path = _member_path(dest, archive, info.filename)
                    if info.is_dir():
                        path.mkdir(parents=True, exist_ok=True)
                        continue
                    with zf.open(info) as source:
                        _write(source, path, info.filename, budget)
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise _corrupt(archive, exc) from exc
        return
    try:
        is_tar = tarfile.is_tarfile(archive)
    except (OSError, EOFError, zlib.error):
        is_tar = False
    if not is_tar:
        raise _corrupt(archive, ValueError("neither a zip nor a tar archive"))
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = []
            for member in tf:  # reads the whole member list: a truncated archive fails here, before any write
                _check_tar(archive, member)
                budget.declare(member.name, member.size)
                members.append(member)
            for member in tqdm(members, desc=f"unpack {archive.name}", unit="file", disable=not progress,
                               leave=False):
                path = _member_path(dest, archive, member.name)
                if member.isdir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                source = tf.extractfile(member)
                _write(source, path, member.name, budget)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, tarfile.TarError) and exc.errno is not None:
            raise  # a real file-system error (disk full, permissions): report it as it is
        raise _corrupt(archive, exc) from exc


def extract_archive(
    archive: str | os.PathLike,
    target: str | os.PathLike,
    *,
    locate: Callable[[Path], Path] = lambda tmp: tmp,
    validate: Callable[[Path], None] | None = None,
    progress: bool = False,
    replace: bool = False,
) -> Path:
    """Extract ``archive`` so that ``target`` appears complete or not at all.

    The archive is unpacked into a temporary folder beside ``target``; ``locate(tmp)`` returns the folder inside it
    that becomes ``target`` (e.g. the archive's single top-level folder), ``validate(folder)`` may raise to reject
    it, and the folder is then renamed to ``target``. On any failure the temporary folder is removed.

    Args:
        replace: an existing ``target`` is replaced, but only by a complete and validated new folder: until then
            it stays as it was, and it stays on any failure.

    Returns:
        ``target``. When another process renamed a complete folder there first, that folder is kept and returned.

    Raises:
        UnsafeArchiveError, DataError: see :func:`unpack`; whatever ``validate`` raises.
        FileExistsError: ``target`` exists already and ``replace`` is false (this never overwrites it).
    """
    archive, target = Path(archive), Path(target)
    if target.exists() and not replace:
        raise FileExistsError(f"{str(target)!r} exists already; remove it to extract {archive.name} again")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".extracting", dir=target.parent))
    os.chmod(tmp, umask_mode(0o777))  # mkdtemp's 0700 would outlive the rename of an archive without a top folder
    try:
        unpack(archive, tmp, progress=progress)
        folder = locate(tmp)
        if validate is not None:
            validate(folder)
        if replace and target.exists():
            _swap_in(folder, target)
            return target
        try:
            os.rename(folder, target)
        except OSError:
            if not target.is_dir():  # not a concurrent extraction of the same archive that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _swap_in(folder: Path, target: Path) -> None:
    """Put the complete ``folder`` at ``target``, removing the old ``target`` only once the new one is there.

    Two renames on one file system: the old folder is moved aside first and moved back if the new one cannot take
    its place, so a failure at either step leaves the old folder where it was.
    """
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".replaced", dir=target.parent))
    old = aside / target.name
    os.rename(target, old)
    try:
        os.rename(folder, target)
    except BaseException:
        os.rename(old, target)
        os.rmdir(aside)
        raise
    shutil.rmtree(aside, ignore_errors=True)
