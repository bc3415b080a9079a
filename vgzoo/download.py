"""The one download layer of vgzoo: files from URLs into a local cache, streamed with requests (see _download).

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

Limits, so that no request hangs (the Hub's requests get the same ones, see :func:`vgzoo._hub.hub_limits`):

``VGZOO_CONNECT_TIMEOUT`` (seconds, default 10)
    how long to wait for a server to accept the connection.
``VGZOO_READ_TIMEOUT`` (seconds, default 60)
    how long a server may stay silent (no byte at all) before the request fails.
``VGZOO_LOW_SPEED_LIMIT`` (bytes per second, default 1024) and ``VGZOO_LOW_SPEED_TIME`` (seconds, default 60)
    a transfer slower than the limit on average over the last ``VGZOO_LOW_SPEED_TIME`` seconds fails (a server
    that trickles a byte now and then never trips a read timeout). ``VGZOO_LOW_SPEED_LIMIT=0`` turns it off.

Integrity: the upstream projects publish no checksums for these files, so there is nothing to check a first download
against. What :func:`fetch` does instead is trust on first use: the SHA-256 of what arrived is written beside the
file (``NAME.sha256``, in ``sha256sum`` format) and checked every time the cached file is reused, so a file damaged or
replaced in the cache is caught. A download is streamed to a temporary file beside the target and renamed into place
only once complete, so no partial file ever sits at the final path; an HTTP error, a refused connection or a body
shorter than its ``Content-Length`` raises :class:`~vgzoo.errors.DownloadError` and leaves nothing in the cache.
An interrupted download restarts from the beginning on the next call.

Concurrency and interruptions: a download holds a file lock (``VGZOO_CACHE/.locks/RELPATH.lock``), so a second process
fetching the same file waits and then reuses the first one's result. SIGTERM during a download removes its
temporary file, as Ctrl-C does; a ``.part`` file left by a killed process (SIGKILL, power loss) is removed by the
next fetch of that file, which holds the lock and so knows nobody else is writing it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

from .errors import DownloadError, OfflineError

__all__ = [
    "CACHE_ENV",
    "MIRROR_ENV",
    "OFFLINE_ENV",
    "NetworkLimits",
    "cache_dir",
    "cache_lock",
    "cache_path",
    "fetch",
    "is_offline",
    "mirrored",
    "network_limits",
    "removed_on_sigterm",
    "record_sha256",
    "recorded_sha256",
    "sha256_file",
]

CACHE_ENV = "VGZOO_CACHE"
MIRROR_ENV = "VGZOO_MIRROR"
OFFLINE_ENV = "VGZOO_OFFLINE"
HASH_SUFFIX = ".sha256"
_CHUNK = 1 << 20
_LIMITS = {  # environment variable: (field, default, what it is)
    "VGZOO_CONNECT_TIMEOUT": ("connect_timeout", 10.0, "seconds"),
    "VGZOO_READ_TIMEOUT": ("read_timeout", 60.0, "seconds"),
    "VGZOO_LOW_SPEED_LIMIT": ("low_speed_limit", 1024.0, "bytes per second"),
    "VGZOO_LOW_SPEED_TIME": ("low_speed_time", 60.0, "seconds"),
}


@dataclass(frozen=True)
class NetworkLimits:
    """The limits every request of vgzoo runs under (see the module docstring for the variables that set them)."""

    connect_timeout: float
    read_timeout: float
    low_speed_limit: float
    low_speed_time: float


def network_limits() -> NetworkLimits:
    """The current limits, read from the environment at each call.

    Raises:
        DownloadError: a variable that is not a number, or a timeout that is not positive.
    """
    values = {}
    for var, (field, default, unit) in _LIMITS.items():
        text = os.environ.get(var, "").strip()
        try:
            value = float(text) if text else default
        except ValueError:
            value = float("nan")
        allowed = "non-negative" if field == "low_speed_limit" else "positive"
        if not (value >= 0 if allowed == "non-negative" else value > 0):  # NaN fails both
            raise DownloadError(f"{var}={text!r} is not valid; expected a {allowed} number of {unit} "
                                f"(default {default:g})")
        values[field] = value
    return NetworkLimits(**values)


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


def record_sha256(path: Path, digest: str | None = None) -> None:
    """Record ``path``'s SHA-256 beside it (``NAME.sha256``), so a later change to the file is caught."""
    from ._atomic import atomic_write

    line = f"{digest or sha256_file(path)}  {path.name}\n"
    atomic_write(_hash_file(path), lambda tmp: Path(tmp).write_text(line, encoding="utf-8"))


def _check_cached(path: Path, url: str) -> Path:
    """Check a cached file against the SHA-256 recorded when it arrived; record one if it was put there by hand."""
    digest = sha256_file(path)
    recorded = recorded_sha256(path)
    if recorded is None:
        record_sha256(path, digest)
    elif recorded != digest:
        raise DownloadError(
            f"cached file {str(path)!r} has SHA-256 {digest}, but {recorded} was recorded when it was fetched from "
            f"{url}; the file was damaged or replaced. Delete it (and {_hash_file(path).name}) to fetch it again, "
            "or pass force=True (CLI: --force)"
        )
    return path


def _describe(exc: Exception, url: str, limits: NetworkLimits) -> str:
    """What went wrong, in words: a server that answered with an error, that could not be reached, that went
    silent, or that hung up early (requests reports a read timeout while streaming as a ConnectionError)."""
    import requests
    import urllib3

    read_timeout = isinstance(exc, requests.ReadTimeout | urllib3.exceptions.ReadTimeoutError) or (
        isinstance(exc, requests.ConnectionError) and isinstance(exc.args[0] if exc.args else None,
                                                                 urllib3.exceptions.ReadTimeoutError))
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"the server answered HTTP {exc.response.status_code} {exc.response.reason} for {url}"
    if read_timeout:
        return (f"{url} stopped sending data: nothing arrived for {limits.read_timeout:g} s (VGZOO_READ_TIMEOUT)")
    if isinstance(exc, requests.ConnectTimeout):
        return (f"cannot connect to {url}: no answer to the connection within {limits.connect_timeout:g} s "
                "(VGZOO_CONNECT_TIMEOUT)")
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError
                  | urllib3.exceptions.ProtocolError):
        return f"the connection to {url} ended before the whole file arrived (truncated body: {exc})"
    if isinstance(exc, requests.ConnectionError):
        return f"cannot connect to {url} ({exc})"
    return f"downloading {url} failed ({type(exc).__name__}: {exc})"


class _SpeedWatch:
    """Fails a transfer whose average speed over the last ``low_speed_time`` seconds is under ``low_speed_limit``
    (curl's --speed-limit/--speed-time)."""

    def __init__(self, limits: NetworkLimits, url: str) -> None:
        self.limits, self.url = limits, url
        self.total = 0
        self.samples: deque[tuple[float, int]] = deque([(time.monotonic(), 0)])

    def add(self, n: int) -> None:
        now = time.monotonic()
        self.total += n
        self.samples.append((now, self.total))
        window = self.limits.low_speed_time
        while len(self.samples) > 1 and self.samples[1][0] <= now - window:
            self.samples.popleft()  # keep the newest sample at least `window` old as the reference
        since, then = self.samples[0]
        if self.limits.low_speed_limit and now - since >= window:
            rate = (self.total - then) / (now - since)
            if rate < self.limits.low_speed_limit:
                raise DownloadError(
                    f"{self.url} is too slow: {rate:.0f} bytes/s over the last {now - since:.0f} s, under the limit "
                    f"of {self.limits.low_speed_limit:g} bytes/s (VGZOO_LOW_SPEED_LIMIT over VGZOO_LOW_SPEED_TIME="
                    f"{window:g} s); nothing was written to the cache. Try again later, use a mirror "
                    "(VGZOO_MIRROR), or lower the limit"
                )


LOCKS_DIR = ".locks"


def _lock_file(path: Path) -> Path:
    """``VGZOO_CACHE/.locks/RELPATH.lock`` for a path in the cache (the lock files stay out of the folders users
    read), else ``.NAME.lock`` beside it."""
    root = cache_dir().absolute()
    try:
        rel = path.absolute().relative_to(root)
    except ValueError:
        lock = path.parent / f".{path.name}.lock"
    else:
        lock = root.joinpath(LOCKS_DIR, *rel.parts[:-1], rel.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    return lock


@contextlib.contextmanager
def cache_lock(path: str | os.PathLike, what: str | None = None) -> Iterator[None]:
    """Hold an OS file lock for ``path`` (``VGZOO_CACHE/.locks/RELPATH.lock``) while fetching, extracting or
    converting it.

    A second process that wants the same file waits here, says so once on stderr, and then finds the first one's
    result in place. The lock is released on any exit, a killed process included (the OS drops it).
    """
    import sys

    from filelock import FileLock, Timeout

    path = Path(path)
    lock = FileLock(_lock_file(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"waiting for another vgzoo process that is preparing {what or str(path)!r} "
              f"(lock {lock.lock_file})", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


class _Terminated(SystemExit):
    """SIGTERM turned into an exception, so that the ``finally`` blocks that remove temporary files run."""


@contextlib.contextmanager
def removed_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`SystemExit` (exit status 143) instead of ending the process at once,
    so the block's cleanup runs, as it does for Ctrl-C. Outside the main thread nothing changes (Python delivers
    signals to the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise _Terminated(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def umask_mode(mode: int) -> int:
    """``mode`` as the process's umask leaves it (what ``open``/``mkdir`` would give a new file or folder): for the
    temporary files and folders that ``tempfile`` creates 0600/0700 and that become the user's files."""
    umask = os.umask(0o022)
    os.umask(umask)
    return mode & ~umask


def _sweep_parts(target: Path) -> None:
    """Remove temporary downloads of ``target`` left by a killed process (the caller holds the file's lock)."""
    for leftover in target.parent.glob(f".{target.name}.*.part"):
        with contextlib.suppress(OSError):
            leftover.unlink()


def fetch(
    url: str,
    relpath: str | os.PathLike,
    *,
    progress: bool = True,
    force: bool = False,
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
        desc: the progress bar's label (default: the file name).
        sha256: the expected SHA-256, when the caller knows it (e.g. pinned after a first download): what arrives,
            and a cached file, must match it.

    Returns:
        The path of the complete file; its SHA-256 is recorded beside it (``NAME.sha256``).

    Raises:
        OfflineError: ``VGZOO_OFFLINE=1`` and the file is not cached; the message names the URL and the path to put
            the file at by hand.
        DownloadError: an HTTP error (404...), no connection, a server silent for longer than the read timeout or
            slower than the low-speed limit, a truncated body, or a cached file whose SHA-256 no longer matches the
            one recorded when it arrived. Nothing is left in the cache.
    """
    target = cache_path(relpath)
    expected = sha256.lower() if sha256 else None
    if target.is_file() and not force:
        return _reuse(target, url, expected)
    source = mirrored(url)
    if is_offline():
        via = f" (through {MIRROR_ENV}: {source})" if source != url else ""
        raise OfflineError(
            f"{OFFLINE_ENV} is set and {url}{via} is not in the cache; expected the file at {str(target)!r}. "
            f"Download it on a machine with network access and put it there by hand, or unset {OFFLINE_ENV}"
        )
    limits = network_limits()  # a bad setting is reported before anything is written
    with cache_lock(target, desc):
        if target.is_file() and not force:  # another process fetched it while this one waited
            return _reuse(target, url, expected)
        _sweep_parts(target)
        digest = _download(source, target, expected, limits, progress=progress, desc=desc)
        record_sha256(target, digest)
    return target


def _reuse(target: Path, url: str, expected: str | None) -> Path:
    _check_cached(target, url)
    if expected and recorded_sha256(target) != expected:
        raise DownloadError(
            f"cached file {str(target)!r} has SHA-256 {recorded_sha256(target)}, expected {expected} for {url}; "
            "delete it to fetch it again, or pass force=True (CLI: --force)"
        )
    return target


def _download(source: str, target: Path, expected: str | None, limits: NetworkLimits, *, progress: bool,
              desc: str | None) -> str:
    """Download ``source`` into a temporary file beside ``target``, check it, move it into place; its SHA-256.

    Nothing is left behind on any failure (an interrupted transfer and SIGTERM included).

    Hand-written over requests rather than pooch's HTTPDownloader: pooch reads in fixed-size blocks, each of which
    waits until it is full, so a server trickling a byte every few seconds is never noticed; reading what has
    arrived (``read1``) lets the low-speed limit see every byte.
    """
    import requests
    import urllib3
    from tqdm.auto import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    with removed_on_sigterm():
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        os.fchmod(fd, umask_mode(0o666))  # mkstemp's 0600 would outlive the rename
        os.close(fd)
        bar = tqdm(desc=desc or target.name, unit="B", unit_scale=True, unit_divisor=1024, disable=not progress,
                   leave=False)
        try:
            try:
                _stream(source, Path(tmp), bar, limits)
            except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                raise DownloadError(f"{_describe(exc, source, limits)}; nothing was written to the cache") from exc
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            digest = sha256_file(tmp)
            if expected and digest != expected:
                raise DownloadError(
                    f"{source} sent a file with SHA-256 {digest}, expected {expected}; it was not kept. The upstream "
                    "file changed or the transfer was damaged: try again, or check the expected checksum"
                )
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        finally:
            bar.close()
    return digest


def _stream(source: str, tmp: Path, bar, limits: NetworkLimits) -> None:
    """GET ``source`` into ``tmp`` under the connect/read timeouts and the low-speed limit."""
    import requests
    import urllib3

    with requests.get(source, stream=True, timeout=(limits.connect_timeout, limits.read_timeout)) as response:
        response.raise_for_status()
        length = int(response.headers.get("Content-Length") or 0)
        encoded = response.headers.get("Content-Encoding", "identity") != "identity"
        bar.total = None if encoded or not length else length
        bar.refresh()
        watch = _SpeedWatch(limits, source)
        try:
            with open(tmp, "wb") as f:
                while block := response.raw.read1(_CHUNK, decode_content=True):
                    f.write(block)
                    bar.update(len(block))
                    watch.add(len(block))
        except OSError as exc:
            if isinstance(exc, requests.RequestException | urllib3.exceptions.HTTPError) or exc.errno is None:
                raise
            raise OSError(exc.errno, f"{exc.strerror} while writing {source} to", str(tmp)) from exc
        if length and not encoded and watch.total < length:
            raise urllib3.exceptions.ProtocolError(f"{watch.total} of {length} bytes arrived")
