"""The one download layer of vgzoo: files from URLs into a local cache, with pooch doing the HTTP.

Every networked feature (the reference datasets, published reference weights) fetches through :func:`fetch`, so the
same three environment variables rule them all:

``VGZOO_CACHE``
    the cache root (default ``~/.cache/vgzoo``). A file fetched for ``relpath`` lives at ``VGZOO_CACHE/relpath``.
``VGZOO_MIRROR``
    a base URL that replaces the scheme and host of every URL, e.g. with ``VGZOO_MIRROR=http://10.0.0.5:8000/m``
    ``http://efrosgans.eecs.berkeley.edu/cyclegan/x.zip`` is fetched from ``http://10.0.0.5:8000/m/cyclegan/x.zip``
    (an internal mirror, or a loopback server in the tests).
``VGZOO_OFFLINE=1``
    never touch the network: a cached file is returned, a missing one raises :class:`~vgzoo.errors.OfflineError`
    naming the URL and the exact path where the file can be put by hand.

Integrity: the upstream projects publish no checksums for these files, so there is nothing to check a first download
against. What :func:`fetch` does instead is trust on first use: the SHA-256 of what arrived is written beside the
file (``NAME.sha256``, in ``sha256sum`` format) and checked every time the cached file is reused, so a file damaged or
replaced in the cache is caught. A download is streamed to a temporary file beside the target and renamed into place
only once complete, so no partial file ever sits at the final path; an HTTP error, a refused connection or a body
shorter than its ``Content-Length`` raises :class:`~vgzoo.errors.DownloadError` and leaves nothing in the cache.
An interrupted download restarts from the beginning on the next call.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

from .errors import DownloadError, OfflineError

__all__ = [
    "CACHE_ENV",
    "MIRROR_ENV",
    "OFFLINE_ENV",
    "cache_dir",
    "cache_path",
    "fetch",
    "is_offline",
    "mirrored",
    "recorded_sha256",
    "sha256_file",
]

CACHE_ENV = "VGZOO_CACHE"
MIRROR_ENV = "VGZOO_MIRROR"
OFFLINE_ENV = "VGZOO_OFFLINE"
HASH_SUFFIX = ".sha256"
_CHUNK = 1 << 20


def cache_dir() -> Path:
    """The cache root: ``$VGZOO_CACHE``, else ``~/.cache/vgzoo`` (not created here)."""
    root = os.environ.get(CACHE_ENV, "").strip()
    return Path(root).expanduser() if root else Path.home() / ".cache" / "vgzoo"


def is_offline() -> bool:
    """Whether ``VGZOO_OFFLINE`` forbids the network (any value but empty, ``0``, ``false``, ``no``)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def mirrored(url: str) -> str:
    """``url`` with its scheme and host replaced by ``$VGZOO_MIRROR`` (unchanged when the variable is unset).

    The mirror may carry a path prefix: ``http://h/m`` + ``http://x.org/a/b.zip`` gives ``http://h/m/a/b.zip``.
    """
    base = os.environ.get(MIRROR_ENV, "").strip()
    if not base:
        return url
    mirror = urlsplit(base)
    if not mirror.scheme or not mirror.netloc:
        raise DownloadError(
            f"{MIRROR_ENV}={base!r} is not a base URL; expected scheme and host, e.g. http://mirror.example:8000"
        )
    parts = urlsplit(url)
    path = mirror.path.rstrip("/") + "/" + parts.path.lstrip("/")
    return urlunsplit((mirror.scheme, mirror.netloc, path, parts.query, ""))


def cache_path(relpath: str | os.PathLike) -> Path:
    """Where ``relpath`` lives in the cache; ``relpath`` must stay inside it (no absolute path, no ``..``)."""
    rel = PurePosixPath(os.fspath(relpath).replace("\\", "/"))
    if rel.is_absolute() or not rel.parts or ".." in rel.parts:
        raise ValueError(f"cache path {os.fspath(relpath)!r} must be relative and stay inside the cache (no '..')")
    return cache_dir().joinpath(*rel.parts)


def sha256_file(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _hash_file(path: Path) -> Path:
    return path.with_name(path.name + HASH_SUFFIX)


def recorded_sha256(path: str | os.PathLike) -> str | None:
    """The SHA-256 recorded beside a cached file on its first fetch, or ``None`` when none was recorded."""
    record = _hash_file(Path(path))
    if not record.is_file():
        return None
    text = record.read_text(encoding="utf-8").split()
    return text[0].lower() if text else None


def _record(path: Path, digest: str) -> None:
    from ._hub import atomic_write

    line = f"{digest}  {path.name}\n"
    atomic_write(_hash_file(path), lambda tmp: Path(tmp).write_text(line, encoding="utf-8"))


def _check_cached(path: Path, url: str) -> Path:
    """Check a cached file against the SHA-256 recorded when it arrived; record one if it was put there by hand."""
    digest = sha256_file(path)
    recorded = recorded_sha256(path)
    if recorded is None:
        _record(path, digest)
    elif recorded != digest:
        raise DownloadError(
            f"cached file {str(path)!r} has SHA-256 {digest}, but {recorded} was recorded when it was fetched from "
            f"{url}; the file was damaged or replaced. Delete it (and {_hash_file(path).name}) to fetch it again, "
            "or pass force=True (CLI: --force)"
        )
    return path


def _describe(exc: Exception, url: str) -> str:
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"the server answered HTTP {exc.response.status_code} {exc.response.reason} for {url}"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return f"the connection to {url} ended before the whole file arrived (truncated body: {exc})"
    if isinstance(exc, requests.Timeout):
        return f"{url} did not answer in time ({exc})"
    if isinstance(exc, requests.ConnectionError):
        return f"cannot connect to {url} ({exc})"
    return f"downloading {url} failed ({type(exc).__name__}: {exc})"


class _Bar:
    """A tqdm bar as pooch drives one (it sets ``total`` and tests the bar for truth, which tqdm refuses)."""

    def __init__(self, bar) -> None:
        self.bar = bar

    def __bool__(self) -> bool:
        return True

    @property
    def total(self):
        return self.bar.total

    @total.setter
    def total(self, value) -> None:
        self.bar.total = value or None  # an unknown length (0) shows a running count
        self.bar.refresh()

    def update(self, n: int) -> None:
        self.bar.update(n)

    def reset(self) -> None:
        self.bar.reset(total=self.bar.total)

    def close(self) -> None:
        self.bar.close()


def fetch(
    url: str,
    relpath: str | os.PathLike,
    *,
    progress: bool = True,
    force: bool = False,
    timeout: float = 60.0,
    desc: str | None = None,
    sha256: str | None = None,
) -> Path:
    """Return the cached file for ``url`` at ``VGZOO_CACHE/relpath``, downloading it first if it is not there.

    Args:
        url: the upstream URL (``VGZOO_MIRROR`` rewrites its scheme and host before it is fetched).
        relpath: where the file lives under the cache root, e.g. ``"datasets/pix2pix/facades.tar.gz"`` or
            ``"weights/cyclegan/horse2zebra.pth"``.
        progress: show a tqdm progress bar (bytes) on stderr.
        force: download again even when the file is cached (the user asked to overwrite it).
        timeout: seconds to wait for the server to connect or send data.
        desc: the progress bar's label (default: the file name).
        sha256: the expected SHA-256, when the caller knows it (e.g. pinned after a first download): what arrives,
            and a cached file, must match it.

    Returns:
        The path of the complete file; its SHA-256 is recorded beside it (``NAME.sha256``).

    Raises:
        OfflineError: ``VGZOO_OFFLINE=1`` and the file is not cached; the message names the URL and the path to put
            the file at by hand.
        DownloadError: an HTTP error (404...), no connection, a truncated body, or a cached file whose SHA-256 no
            longer matches the one recorded when it arrived. Nothing is left in the cache.
    """
    target = cache_path(relpath)
    expected = sha256.lower() if sha256 else None
    if target.is_file() and not force:
        _check_cached(target, url)
        if expected and recorded_sha256(target) != expected:
            raise DownloadError(
                f"cached file {str(target)!r} has SHA-256 {recorded_sha256(target)}, expected {expected} for {url}; "
                "delete it to fetch it again, or pass force=True (CLI: --force)"
            )
        return target
    source = mirrored(url)
    if is_offline():
        via = f" (through {MIRROR_ENV}: {source})" if source != url else ""
        raise OfflineError(
            f"{OFFLINE_ENV} is set and {url}{via} is not in the cache; expected the file at {str(target)!r}. "
            f"Download it on a machine with network access and put it there by hand, or unset {OFFLINE_ENV}"
        )
    digest = _download(source, target, expected, progress=progress, timeout=timeout, desc=desc)
    _record(target, digest)
    return target


def _download(source: str, target: Path, expected: str | None, *, progress: bool, timeout: float,
              desc: str | None) -> str:
    """Download ``source`` into a temporary file beside ``target``, check it, move it into place; its SHA-256.

    Nothing is left behind on any failure (an interrupted transfer included).
    """
    import pooch
    import requests
    from tqdm.auto import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    bar = tqdm(desc=desc or target.name, unit="B", unit_scale=True, unit_divisor=1024, disable=not progress,
               leave=False)
    try:
        downloader = pooch.HTTPDownloader(progressbar=_Bar(bar), chunk_size=_CHUNK, timeout=timeout)
        try:
            downloader(source, tmp, None)
        except requests.RequestException as exc:
            raise DownloadError(f"{_describe(exc, source)}; nothing was written to the cache") from exc
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        digest = sha256_file(tmp)
        if expected and digest != expected:
            raise DownloadError(
                f"{source} sent a file with SHA-256 {digest}, expected {expected}; it was not kept. The upstream file "
                "changed or the transfer was damaged: try again, or check the expected checksum"
            )
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        bar.close()
    return digest
