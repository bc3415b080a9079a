"""A loopback HTTP server for the tests of networked code (downloads, datasets, published weights).

The code under test keeps its real network path (pooch, requests, sockets); only the host changes, through
``VGZOO_MIRROR``. Serve files with :meth:`LoopbackServer.add`, and failures with :meth:`LoopbackServer.truncate`
(a body shorter than its Content-Length, then the connection closes), :meth:`LoopbackServer.stall` (headers, then
silence), :meth:`LoopbackServer.trickle` (one byte every few seconds) and :meth:`LoopbackServer.fail` (an HTTP
error status); any other path answers 404.

    from _http import LoopbackServer, http_server   # the fixture, for a test module

    def test_x(http_server, monkeypatch):
        http_server.add("/cyclegan/datasets/x.zip", data)
        monkeypatch.setenv("VGZOO_MIRROR", http_server.url)
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class LoopbackServer:
    """An HTTP server on 127.0.0.1 at a free port, serving in-memory files from a thread."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncated: dict[str, tuple[bytes, int]] = {}
        self.stalled: set[str] = set()
        self.trickled: dict[str, tuple[bytes, float]] = {}
        self.failing: dict[str, int] = {}
        self.delays: dict[str, float] = {}
        self.requests: list[str] = []
        self.stopping = threading.Event()  # ends the handlers that stall or trickle
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                path = self.path.split("?", 1)[0]
                server.requests.append(path)
                if path in server.truncated:
                    data, claimed = server.truncated[path]
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(claimed))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    if body:
                        self.wfile.write(data)
                        self.wfile.flush()
                    self.close_connection = True
                    return
                if path in server.failing:
                    self.send_error(server.failing[path])
                    return
                if path in server.stalled or path in server.trickled:
                    data, every = server.trickled.get(path, (b"", 0.0))
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(data) or 1 << 20))
                    self.end_headers()
                    self.wfile.flush()
                    try:
                        for i in range(len(data)):
                            if server.stopping.wait(every):
                                break
                            self.wfile.write(data[i:i + 1])
                            self.wfile.flush()
                        server.stopping.wait()  # then silence until the server stops
                    except OSError:  # the client gave up and closed the connection
                        pass
                    self.close_connection = True
                    return
                if path not in server.files:
                    self.send_error(404, "Not Found")
                    return
                data = server.files[path]
                if server.stopping.wait(server.delays.get(path, 0.0)):
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``, to use as ``VGZOO_MIRROR``."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, path: str, data: bytes, delay: float = 0.0) -> str:
        """Serve ``data`` at ``path`` (e.g. ``/pix2pix/datasets/facades.tar.gz``), answering each request after
        ``delay`` seconds (so that concurrent clients overlap); returns its full URL."""
        self.files[path] = bytes(data)
        self.delays[path] = delay
        return self.url + path

    def truncate(self, path: str, data: bytes, keep: int) -> str:
        """Serve the first ``keep`` bytes of ``data`` at ``path`` while announcing ``len(data)``, then hang up."""
        self.truncated[path] = (bytes(data[:keep]), len(data))
        return self.url + path

    def stall(self, path: str) -> str:
        """Answer ``path`` with a status line and headers announcing 1 MiB, then send nothing."""
        self.stalled.add(path)
        return self.url + path

    def trickle(self, path: str, data: bytes, every: float) -> str:
        """Send ``data`` at ``path`` one byte every ``every`` seconds (never silent for long, always slow)."""
        self.trickled[path] = (bytes(data), every)
        return self.url + path

    def fail(self, path: str, status: int) -> str:
        """Answer ``path`` with the HTTP error ``status`` (500, 503...)."""
        self.failing[path] = status
        return self.url + path

    def start(self) -> LoopbackServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers (a hung endpoint)."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.held: list = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def __enter__(self) -> SilentServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.sock.close()
        for conn in self.held:
            conn.close()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_server():
    """A running :class:`LoopbackServer`, stopped after the test."""
    with LoopbackServer() as server:
        yield server
