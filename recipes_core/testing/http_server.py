"""A real HTTP file server on loopback, for tests and the demo.

Recipes fetch sources over HTTP(S) through fsspec, so tests need a server that behaves like a
static file host: ``Content-Length``, ``ETag`` and ``Last-Modified`` on every response (caching
and change detection key on them), ``Range`` requests answered with ``206`` (fsspec's HTTP file
and h5py read netCDF-4 files in byte ranges), ``HEAD`` (fsspec asks for the size first) and
keep-alive connections (aiohttp reuses them).

:class:`ArchiveServer` serves one directory from a background thread. It refuses anything that
could escape that directory (``..`` segments, percent-encoded dots, symlinks pointing outside),
never lists directories, logs nothing to stderr, and records every request so tests can assert
how often a file was fetched.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.server
import mimetypes
import os
import pathlib
import re
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from types import TracebackType
from typing import Any

__all__ = ["ArchiveServer"]

_CHUNK = 64 * 1024
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class _Unsatisfiable(Exception):
    """The Range header asks only for bytes past the end of the file (answered with 416)."""


class _Server(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its :class:`ArchiveServer` and tracks open connections."""

    daemon_threads = True
    # Re-binding a just-freed port must not fail with "address in use" in quick test re-runs.
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: ArchiveServer) -> None:
        self.owner = owner
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        # Instance attribute, read by TCPServer.__init__ when it creates the socket.
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can stall for
        # seconds in containers without DNS; the name is unused here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = port

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up mid-body all the time (fsspec cancels reads); that is not worth a
        # traceback on stderr. Anything else is a bug in the handler and should stay visible.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Cut keep-alive connections so their handler threads end promptly on stop()."""
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Static files only: GET/HEAD, Range, validators; no listings, no escapes, no logging."""

    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, which aiohttp expects from a real server
    server_version = "ArchiveServer/1.0"
    sys_version = ""
    # An idle keep-alive connection must not pin a handler thread forever.
    timeout = 30
    # Headers and body go out in separate writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms) on every request, which makes ranged reads crawl.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet on purpose: tests read their own request log via ArchiveServer.requests.
        return

    # -- methods ------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._serve(head_only=False)

    def do_HEAD(self) -> None:
        self._serve(head_only=True)

    def _refuse_method(self) -> None:
        self.server.owner._record(self.command, self._url_path())
        # The request body is never read, so the connection cannot be reused safely.
        self.close_connection = True
        self._send_text(405, "method not allowed\n", extra={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse_method

    # -- helpers ------------------------------------------------------------------------------

    def _url_path(self) -> str:
        """The decoded path of the request target, without query or fragment."""
        # Split by hand: urlsplit would read a target like "//name" as a host, not a path.
        raw = self.path.split("?", 1)[0].split("#", 1)[0]
        return urllib.parse.unquote(raw)

    def _resolve(self, url_path: str) -> tuple[pathlib.Path | None, int]:
        """Map a decoded URL path to a file under the root, or ``(None, status)``."""
        # Reject rather than normalise: a client that sends ".." (raw or percent-encoded) or a
        # backslash is probing, and silently serving some other file would hide test bugs.
        if "\x00" in url_path or "\\" in url_path:
            return None, 403
        parts = [p for p in url_path.split("/") if p]
        if any(p in (".", "..") for p in parts):
            return None, 403
        if not parts:
            return None, 404  # the root is a directory, and directories are never listed
        root = self.server.owner.root
        candidate = root.joinpath(*parts)
        try:
            real = pathlib.Path(os.path.realpath(candidate))
        except OSError:
            return None, 404
        # A symlink inside the root may still point outside it.
        if real != root and root not in real.parents:
            return None, 403
        if not real.is_file():
            return None, 404
        return real, 200

    def _send_text(
        self,
        status: int,
        body: str,
        *,
        head_only: bool = False,
        extra: dict[str, str] | None = None,
    ) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head_only:
            self.wfile.write(data)

    @staticmethod
    def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
        """``(first, last)`` inclusive, or ``None`` to send the whole file.

        Multi-range and malformed headers are ignored (RFC 9110 allows serving the full body);
        a range that starts past the end raises :class:`_Unsatisfiable`.
        """
        if not header:
            return None
        match = _RANGE_RE.match(header.strip())
        if match is None:
            return None
        first_s, last_s = match.groups()
        if not first_s and not last_s:
            return None
        if not first_s:  # suffix range: the last N bytes
            n = int(last_s)
            if n == 0 or size == 0:
                raise _Unsatisfiable
            return max(size - n, 0), size - 1
        first = int(first_s)
        if first >= size:
            raise _Unsatisfiable
        last = min(int(last_s), size - 1) if last_s else size - 1
        if last < first:  # syntactically invalid (e.g. bytes=9-3): ignore the header
            return None
        return first, last

    def _serve(self, *, head_only: bool) -> None:
        url_path = self._url_path()
        owner = self.server.owner
        owner._record(self.command, url_path)
        with owner._in_flight():
            self._serve_path(url_path, head_only=head_only)

    def _serve_path(self, url_path: str, *, head_only: bool) -> None:
        path, status = self._resolve(url_path)
        # Subclasses (recipes_core.testing.faults) may answer instead, to inject failures.
        if self.server.owner.intercept(self, url_path, path, head_only=head_only):
            return
        if path is None:
            reason = "forbidden\n" if status == 403 else "not found\n"
            self._send_text(status, reason, head_only=head_only)
            return
        try:
            handle = path.open("rb")
        except OSError:
            self._send_text(404, "not found\n", head_only=head_only)
            return
        with handle:
            # fstat on the open handle: size, ETag and the bytes sent all describe one version.
            stat = os.fstat(handle.fileno())
            size = stat.st_size
            etag = f'"{size:x}-{stat.st_mtime_ns:x}"'
            validators = {
                "ETag": etag,
                "Last-Modified": email.utils.formatdate(stat.st_mtime, usegmt=True),
                "Accept-Ranges": "bytes",
            }
            if_none_match = self.headers.get("If-None-Match")
            if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
                self.send_response(304)
                for key, value in validators.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return

            try:
                wanted = self._parse_range(self.headers.get("Range"), size)
            except _Unsatisfiable:
                self._send_text(
                    416,
                    "range not satisfiable\n",
                    head_only=head_only,
                    extra={"Content-Range": f"bytes */{size}", **validators},
                )
                return
            if wanted is not None:
                first, last = wanted
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            else:
                first, last = 0, size - 1
                self.send_response(200)
            length = last - first + 1
            content_type = mimetypes.guess_type(path.name)[0]
            if path.suffix == ".nc":
                content_type = "application/x-netcdf"
            self.send_header("Content-Type", content_type or "application/octet-stream")
            self.send_header("Content-Length", str(length))
            for key, value in validators.items():
                self.send_header(key, value)
            self.end_headers()
            if head_only or length <= 0:
                return
            handle.seek(first)
            remaining = length
            while remaining:
                chunk = handle.read(min(_CHUNK, remaining))
                if not chunk:  # file shrank under us; the client will see a short body
                    self.close_connection = True
                    return
                self.wfile.write(chunk)
                remaining -= len(chunk)


class ArchiveServer:
    """Serves a directory over HTTP on 127.0.0.1 from a background thread (ThreadingHTTPServer).

    ``port=0`` (the default) lets the OS pick a free port; read it back from :attr:`url` after
    :meth:`start`. Use as a context manager::

        with ArchiveServer(tmp_path) as server:
            fsspec.open(f"{server.url}/demo_20200101.nc").open().read()
        assert server.count("demo_20200101.nc") >= 1

    ``requests`` is the log of ``(method, path)`` pairs, ``path`` being the percent-decoded URL
    path without the query string, appended under a lock by the handler threads. It is kept
    across :meth:`stop` so tests can assert after the server is gone; clear it with
    ``server.requests.clear()``. :meth:`times` gives the ``time.monotonic()`` at which requests
    arrived, for tests of waits such as ``Retry-After``.
    ``peak_concurrent`` is the most GET/HEAD requests ever being answered at the same moment
    (from any client process), for tests of connection limits.
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        root = pathlib.Path(os.path.realpath(directory))
        if not root.is_dir():
            raise NotADirectoryError(f"ArchiveServer needs an existing directory, got {directory}")
        self.root = root
        self.host = host
        self.port = port
        self.requests: list[tuple[str, str]] = []
        self._times: list[tuple[float, str, str]] = []
        self.concurrent = 0
        self.peak_concurrent = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``"http://127.0.0.1:43127"``."""
        if self._server is None:
            raise RuntimeError("ArchiveServer is not running; call start() first")
        host, port = self._server.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        return f"http://{host}:{port}"

    def url_for(self, relative_path: str | os.PathLike[str]) -> str:
        """Full URL of a file given its path relative to the served directory."""
        rel = pathlib.PurePosixPath(*pathlib.Path(relative_path).parts)
        return f"{self.url}/{urllib.parse.quote(str(rel))}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> ArchiveServer:
        """Bind the socket and start serving in a daemon thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("ArchiveServer is already running")
        server = _Server((self.host, self.port), self)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll interval
            name=f"ArchiveServer:{server.server_address[1]}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and live connections, join the thread.

        Safe to call more than once, and on a server that never started.
        """
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()  # returns once serve_forever has left its loop
        server.server_close()  # closes the listening socket: the port refuses from now on
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> ArchiveServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"ArchiveServer({str(self.root)!r}, {where})"

    # -- hooks ----------------------------------------------------------------------------------

    def intercept(
        self,
        handler: http.server.BaseHTTPRequestHandler,
        url_path: str,
        path: pathlib.Path | None,
        *,
        head_only: bool,
    ) -> bool:
        """Called for every GET/HEAD before it is served; return True if it was answered.

        ``path`` is the file the request maps to (None if there is none). The plain server
        never intercepts; :class:`recipes_core.testing.faults.FaultServer` does.
        """
        return False

    # -- request log ----------------------------------------------------------------------------

    def _record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))
            self._times.append((time.monotonic(), method, path))

    @contextlib.contextmanager
    def _in_flight(self) -> Iterator[None]:
        with self._lock:
            self.concurrent += 1
            self.peak_concurrent = max(self.peak_concurrent, self.concurrent)
        try:
            yield
        finally:
            with self._lock:
                self.concurrent -= 1

    def times(self, path_suffix: str, method: str | None = "GET") -> list[float]:
        """Arrival times (``time.monotonic()``) of the logged requests :meth:`count` counts."""
        with self._lock:
            log = list(self._times)
        return [
            t for t, m, p in log
            if p.endswith(path_suffix) and (method is None or m == method.upper())
        ]

    def count(self, path_suffix: str, method: str | None = "GET") -> int:
        """How many logged requests had a path ending in ``path_suffix`` and this ``method``.

        ``method=None`` counts every method.
        """
        with self._lock:
            log = list(self.requests)
        return sum(
            1 for m, p in log if p.endswith(path_suffix) and (method is None or m == method.upper())
        )
