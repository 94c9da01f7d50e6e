"""A real HTTP server on loopback that fails on purpose, to test staging's recovery.

:class:`FaultServer` is an :class:`~recipes_core.testing.ArchiveServer` with rules: "the next
N GETs of a path ending in ``demo_20200102.nc`` get *this fault*", after which the file is
served normally. Faults are real network behaviour, not mocks: a status line with
``Retry-After``, a redirect, a connection reset (RST) in the middle of the body, a body cut short
of its ``Content-Length``, a stall longer than the client's read timeout, a slow answer::

    with FaultServer(archive) as server:
        server.add("demo_20200102.nc", Status(503), times=2)
        server.add("demo_20200103.nc", ResetMidBody(after=1000))
        ...  # bake from server.url; the bake must recover or fail loudly
        assert server.count("demo_20200102.nc") == 3

:meth:`FaultServer.change_file` replaces a file's bytes with a new ETag and Last-Modified, as
an upstream provider re-publishing a file does.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import pathlib
import socket
import struct
import threading
import time
from dataclasses import dataclass

from recipes_core.testing.http_server import ArchiveServer

__all__ = [
    "Delay",
    "Fault",
    "FaultServer",
    "Redirect",
    "ResetMidBody",
    "StallMidBody",
    "Status",
    "TruncateBody",
]

Handler = http.server.BaseHTTPRequestHandler


class Fault:
    """One way to answer a request badly. ``apply`` returns True if it answered in full."""

    def apply(self, handler: Handler, path: pathlib.Path | None, *, head_only: bool) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class Status(Fault):
    """An error status (503, 429, 403, 404...), with an optional ``Retry-After`` header."""

    code: int
    retry_after: str | None = None

    def apply(self, handler: Handler, path: pathlib.Path | None, *, head_only: bool) -> bool:
        body = f"injected {self.code}\n".encode()
        handler.send_response(self.code)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(body)))
        if self.retry_after is not None:
            handler.send_header("Retry-After", self.retry_after)
        handler.end_headers()
        if not head_only:
            handler.wfile.write(body)
        return True


@dataclass(frozen=True)
class Redirect(Fault):
    """A redirect to ``location`` (absolute, or relative to the request)."""

    location: str
    code: int = 302

    def apply(self, handler: Handler, path: pathlib.Path | None, *, head_only: bool) -> bool:
        handler.send_response(self.code)
        handler.send_header("Location", self.location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        return True


@dataclass(frozen=True)
class Delay(Fault):
    """Wait ``seconds`` before answering normally (a slow but healthy server)."""

    seconds: float

    def apply(self, handler: Handler, path: pathlib.Path | None, *, head_only: bool) -> bool:
        time.sleep(self.seconds)
        return False


@dataclass(frozen=True)
class _PartialBody(Fault):
    """Send the headers of the whole file, then only its first ``after`` bytes."""

    after: int = 1024

    def apply(self, handler: Handler, path: pathlib.Path | None, *, head_only: bool) -> bool:
        if path is None:
            return False
        data = path.read_bytes()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if head_only:
            return True
        handler.wfile.write(data[: self.after])
        handler.wfile.flush()
        self.cut(handler)
        handler.close_connection = True
        return True

    def cut(self, handler: Handler) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class ResetMidBody(_PartialBody):
    """Reset the connection (TCP RST) after ``after`` bytes of the body."""

    def cut(self, handler: Handler) -> None:
        conn: socket.socket = handler.connection
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            conn.close()


@dataclass(frozen=True)
class TruncateBody(_PartialBody):
    """Close the connection cleanly after ``after`` bytes: a body short of Content-Length."""

    def cut(self, handler: Handler) -> None:
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_WR)


@dataclass(frozen=True)
class StallMidBody(_PartialBody):
    """Send ``after`` bytes, then go silent for ``seconds`` (past the client's read timeout)."""

    seconds: float = 2.0

    def cut(self, handler: Handler) -> None:
        time.sleep(self.seconds)
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_WR)


@dataclass
class _Rule:
    suffix: str
    fault: Fault
    remaining: int | None  # None: forever
    methods: tuple[str, ...]


class FaultServer(ArchiveServer):
    """An :class:`ArchiveServer` whose requests can be made to fail by rules (see module doc)."""

    def __init__(self, directory: str | os.PathLike[str], **kwargs: object) -> None:
        super().__init__(directory, **kwargs)  # type: ignore[arg-type]
        self._rules: list[_Rule] = []
        self._rules_lock = threading.Lock()

    def add(
        self,
        path_suffix: str,
        fault: Fault,
        *,
        times: int | None = 1,
        methods: tuple[str, ...] = ("GET",),
    ) -> FaultServer:
        """Answer the next ``times`` matching requests (None: all of them) with ``fault``."""
        with self._rules_lock:
            self._rules.append(_Rule(path_suffix, fault, times, tuple(m.upper() for m in methods)))
        return self

    def clear(self) -> None:
        with self._rules_lock:
            self._rules.clear()

    def intercept(
        self, handler: Handler, url_path: str, path: pathlib.Path | None, *, head_only: bool
    ) -> bool:
        with self._rules_lock:
            rule = next(
                (
                    r
                    for r in self._rules
                    if url_path.endswith(r.suffix)
                    and handler.command in r.methods
                    and (r.remaining is None or r.remaining > 0)
                ),
                None,
            )
            if rule is None:
                return False
            if rule.remaining is not None:
                rule.remaining -= 1
        return rule.fault.apply(handler, path, head_only=head_only)

    def change_file(self, relative_path: str, data: bytes) -> None:
        """Publish new bytes at a path: new content, new ETag and Last-Modified."""
        target = self.root / relative_path
        old = target.stat().st_mtime_ns if target.exists() else time.time_ns()
        tmp = target.with_name(target.name + ".new")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        # Some filesystems keep coarse times; a clear step makes the validators change for sure.
        stamp = max(old + 2_000_000_000, time.time_ns())
        os.utime(target, ns=(stamp, stamp))
