"""vgzoo.download: the one download layer, tested against a loopback HTTP server through VGZOO_MIRROR."""

from __future__ import annotations

import hashlib

import pytest
from _http import http_server  # noqa: F401  (the fixture)

from vgzoo.download import cache_path, fetch, mirrored, recorded_sha256
from vgzoo.errors import DownloadError, OfflineError, VgzooError

URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/horse2zebra.pth"
PATH = "/cyclegan/pretrained_models/horse2zebra.pth"
DATA = bytes(range(256)) * 5000  # 1.28 MB: several chunks


@pytest.fixture
def env(tmp_path, monkeypatch, http_server):  # noqa: F811
    monkeypatch.setenv("VGZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VGZOO_MIRROR", http_server.url)
    monkeypatch.delenv("VGZOO_OFFLINE", raising=False)
    return http_server


def files_in(folder):
    """The files under ``folder``, lock files (``.locks/``, empty and harmless) aside."""
    if not folder.exists():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and ".locks" not in p.relative_to(folder).parts)


def test_mirror_replaces_scheme_and_host(monkeypatch):
    monkeypatch.delenv("VGZOO_MIRROR", raising=False)
    assert mirrored(URL) == URL
    monkeypatch.setenv("VGZOO_MIRROR", "https://mirror.example:8443")
    assert mirrored(URL) == "https://mirror.example:8443/cyclegan/pretrained_models/horse2zebra.pth"
    monkeypatch.setenv("VGZOO_MIRROR", "http://10.0.0.5/m/")
    assert mirrored(URL + "?x=1") == "http://10.0.0.5/m/cyclegan/pretrained_models/horse2zebra.pth?x=1"
    monkeypatch.setenv("VGZOO_MIRROR", "not a url")
    with pytest.raises(DownloadError, match="VGZOO_MIRROR"):
        mirrored(URL)


def test_default_cache_root_and_no_escape(monkeypatch, tmp_path):
    monkeypatch.delenv("VGZOO_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_path("a/b.pth") == tmp_path / ".cache" / "vgzoo" / "a" / "b.pth"
    for bad in ("/etc/passwd", "../x", "a/../../x", ""):
        with pytest.raises(ValueError):
            cache_path(bad)


def test_fetch_streams_records_sha256_and_reuses_the_cache(env, tmp_path, capsys):
    env.add(PATH, DATA)
    path = fetch(URL, "weights/h2z.pth")
    assert path == tmp_path / "cache" / "weights" / "h2z.pth"
    assert path.read_bytes() == DATA
    digest = hashlib.sha256(DATA).hexdigest()
    assert recorded_sha256(path) == digest
    assert (path.parent / "h2z.pth.sha256").read_text() == f"{digest}  h2z.pth\n"  # sha256sum -c reads it
    assert files_in(tmp_path / "cache") == ["weights/h2z.pth", "weights/h2z.pth.sha256"]  # no temporary left
    assert "h2z.pth" in capsys.readouterr().err  # the progress bar
    assert fetch(URL, "weights/h2z.pth", progress=False) == path
    assert env.requests == [PATH]  # reused, not fetched again


def test_a_changed_cached_file_is_refused_until_forced(env):
    env.add(PATH, DATA)
    path = fetch(URL, "w.pth", progress=False)
    path.write_bytes(DATA[:-1] + b"\x00")
    with pytest.raises(DownloadError, match="recorded when it was fetched") as info:
        fetch(URL, "w.pth", progress=False)
    assert str(path) in str(info.value)
    assert fetch(URL, "w.pth", progress=False, force=True).read_bytes() == DATA


@pytest.mark.parametrize("failure", ["404", "truncated", "refused"])
def test_failures_raise_a_clear_error_and_leave_nothing(env, tmp_path, monkeypatch, failure):
    if failure == "404":
        expected = "HTTP 404"
    elif failure == "truncated":
        env.truncate(PATH, DATA, keep=len(DATA) // 3)
        expected = "ended before the whole file arrived"
    else:
        monkeypatch.setenv("VGZOO_MIRROR", "http://127.0.0.1:9")  # the discard port: nothing listens
        expected = "cannot connect"
    with pytest.raises(DownloadError, match=expected) as info:
        fetch(URL, "weights/w.pth", progress=False)
    assert isinstance(info.value, VgzooError) and isinstance(info.value, OSError)
    assert "nothing was written" in str(info.value)
    assert files_in(tmp_path / "cache") == []


def test_offline_uses_the_cache_and_names_url_and_path_when_missing(env, tmp_path, monkeypatch):
    env.add(PATH, DATA)
    path = fetch(URL, "w.pth", progress=False)
    monkeypatch.setenv("VGZOO_OFFLINE", "1")
    assert fetch(URL, "w.pth", progress=False).read_bytes() == DATA
    with pytest.raises(OfflineError) as info:
        fetch(URL, "other/x.pth", progress=False)
    message = str(info.value)
    assert URL in message and str(tmp_path / "cache" / "other" / "x.pth") in message
    assert isinstance(info.value, FileNotFoundError)
    assert env.requests == [PATH]  # offline never touched the network
    # a file put there by hand is used, and its hash recorded from then on
    by_hand = cache_path("other/x.pth")
    by_hand.parent.mkdir(parents=True)
    by_hand.write_bytes(b"by hand")
    assert fetch(URL, "other/x.pth", progress=False) == by_hand
    assert recorded_sha256(by_hand) == hashlib.sha256(b"by hand").hexdigest()
    assert path.is_file()


def test_an_expected_sha256_is_enforced_on_arrival_and_on_reuse(env, tmp_path):
    env.add(PATH, DATA)
    good = hashlib.sha256(DATA).hexdigest()
    with pytest.raises(DownloadError, match="it was not kept"):
        fetch(URL, "w.pth", progress=False, sha256="0" * 64)
    assert files_in(tmp_path / "cache") == []
    path = fetch(URL, "w.pth", progress=False, sha256=good.upper())
    assert path.read_bytes() == DATA
    with pytest.raises(DownloadError, match="expected 1111"):
        fetch(URL, "w.pth", progress=False, sha256="1" * 64)
