"""HTTP for staging: bounded, classified retries; redirects checked hop by hop; per-host limits.

* Only GET and HEAD are ever sent, and only they are retried: on 408, 425, 429 and 5xx (except
  501 and 505, which never heal), on connection resets, refused connections, timeouts and
  bodies that break off or come up short. Waits grow exponentially with jitter, honour
  ``Retry-After`` (seconds or an HTTP date), and the whole sequence for one URL stays within
  ``policy.max_retry_seconds`` and ``policy.max_retries``.
* 401, 403, 404 and 410 (and any other status) fail at once with a message naming the URL.
* Redirects are followed by hand: every hop is checked by the access policy *before* it is
  requested, so a public server cannot bounce a fetch into a private network.
* Every connection's peer address is checked after connecting and before a byte is sent, which
  also defeats DNS answers that change between our lookup and the connection's (rebinding).
* At most ``policy.max_connections_per_host`` requests run at once per host: in this process,
  and, given a ``lock_dir`` (the Stager passes ``<cache>/locks``), across every process of this
  machine staging into the same cache (:mod:`recipes_core.storage.slots`).
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import TypeVar
from urllib.parse import urljoin

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from recipes_core.errors import (
    ChecksumError,
    SourceError,
    SourceMissingError,
    UnsafeRecipeError,
)
from recipes_core.redact import install_log_redaction, redact_url
from recipes_core.storage.policy import AccessPolicy, check_peer, check_url
from recipes_core.storage.slots import host_slot

__all__ = ["Download", "HttpClient", "host_slot", "retry_after_seconds"]

BLOCK = 1 << 20
MAX_REDIRECTS = 5
install_log_redaction()  # urllib3 logs request targets, query strings included, at DEBUG
NEVER_HEALS = frozenset({501, 505})
MISSING = frozenset({404, 410})
DENIED = frozenset({401, 403})
USER_AGENT = "arco-recipes/0.1 (+bake)"
T = TypeVar("T")


def is_retryable_status(status: int) -> bool:
    return status in (408, 425, 429) or (500 <= status <= 599 and status not in NEVER_HEALS)


# ---- connections that check where they landed --------------------------------------------------


def _guarded_classes(policy: AccessPolicy) -> dict[str, type[HTTPConnectionPool]]:
    """Pool classes whose connections refuse a private peer address (see module docstring)."""

    def new_conn(self: HTTPConnection, base: Callable[[HTTPConnection], object]) -> object:
        sock = base(self)
        try:
            peer = sock.getpeername()[0]  # type: ignore[attr-defined]
            check_peer(self.host, self.port, peer, policy)
        except BaseException:
            sock.close()  # type: ignore[attr-defined]
            raise
        return sock

    class GuardedHTTPConnection(HTTPConnection):
        def _new_conn(self):  # type: ignore[no-untyped-def]
            return new_conn(self, HTTPConnection._new_conn)

    class GuardedHTTPSConnection(HTTPSConnection):
        def _new_conn(self):  # type: ignore[no-untyped-def]
            return new_conn(self, HTTPSConnection._new_conn)

    class GuardedHTTPPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    return {"http": GuardedHTTPPool, "https": GuardedHTTPSPool}


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, policy: AccessPolicy) -> None:
        self._classes = _guarded_classes(policy)
        super().__init__(pool_connections=4, pool_maxsize=max(4, policy.max_connections_per_host))

    def init_poolmanager(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().init_poolmanager(*args, **kwargs)
        # Proxied requests go through requests' ProxyManager, untouched: the proxy is the
        # operator's, and its address is not the recipe's business.
        self.poolmanager.pool_classes_by_scheme = self._classes


# ---- retries -------------------------------------------------------------------------------------


class _Retry(Exception):
    """One attempt failed in a way that may heal."""

    def __init__(self, reason: str, *, retry_after: float | None = None, truncated: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.truncated = truncated


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def _caused_by(err: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    stack: list[BaseException] = [err]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return True
        stack.extend(a for a in current.args if isinstance(a, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)
    return False


_TRANSIENT = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    ConnectionError,
    TimeoutError,
)


def _transient_reason(err: BaseException) -> str | None:
    """Why a transport error may heal, or None if it will not (TLS, DNS)."""
    if isinstance(err, requests.exceptions.SSLError) or _caused_by(
        err, urllib3.exceptions.NameResolutionError
    ):
        return None
    if _caused_by(err, TimeoutError) or isinstance(err, requests.Timeout):
        return "the server stopped sending (read timeout)"
    if _caused_by(err, ConnectionResetError):
        return "the connection was reset"
    if _caused_by(err, urllib3.exceptions.IncompleteRead):
        return "the body broke off"
    if _caused_by(err, ConnectionRefusedError):
        return "the connection was refused"
    return type(err).__name__


@dataclass(frozen=True)
class Download:
    """What one successful GET wrote to disk."""

    size: int
    sha256: str
    etag: str | None
    last_modified: str | None


class HttpClient:
    """GET and HEAD under one access policy. Thread-safe: one requests session per thread.

    ``lock_dir`` shares the per-host connection limit with the other processes that use the same
    folder (see :mod:`recipes_core.storage.slots`); without it the limit is this process's.
    """

    def __init__(self, policy: AccessPolicy, lock_dir: str | None = None) -> None:
        self.policy = policy
        self.lock_dir = lock_dir
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            # Store the bytes as published: a transparently gunzipped body would not match the
            # Content-Length or the checksum the provider published.
            session.headers["Accept-Encoding"] = "identity"
            adapter = _GuardedAdapter(self.policy)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    # ---- one request, redirects by hand -----------------------------------------------------
    @contextlib.contextmanager
    def _open(self, method: str, url: str, headers: dict[str, str] | None = None
              ) -> Iterator[requests.Response]:
        if method not in ("GET", "HEAD"):
            raise ValueError(f"staging only sends GET and HEAD, not {method}")
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            with host_slot(current, self.policy.max_connections_per_host, self.lock_dir):
                response = self._session().request(
                    method,
                    current,
                    headers=headers,
                    allow_redirects=False,
                    stream=True,
                    timeout=(self.policy.connect_timeout, self.policy.timeout),
                )
                try:
                    location = response.headers.get("Location")
                    if response.is_redirect and location:
                        following = urljoin(current, location)
                        try:  # before a single byte goes there
                            check_url(following, self.policy)
                        except UnsafeRecipeError as err:
                            raise UnsafeRecipeError(
                                f"{err.message} (the source {redact_url(url)} redirects there)",
                                where=err.where,
                                fix=err.fix,
                            ) from None
                        current = following
                        continue
                    yield response
                    return
                finally:
                    response.close()
        raise SourceError(
            f"more than {MAX_REDIRECTS} redirects",
            where=redact_url(url),
            fix="point the recipe at the final URL.",
        )

    def _status_error(self, url: str, response: requests.Response) -> Exception:
        """The error for a status we will not retry (or ``_Retry`` for one we will)."""
        status = response.status_code
        where = redact_url(url)
        if is_retryable_status(status):
            return _Retry(
                f"HTTP {status} {response.reason or ''}".strip(),
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status in MISSING:
            return SourceMissingError(
                f"HTTP {status}: the source does not exist",
                where=where,
                fix="check source.pattern and the dims' keys.",
            )
        if status in DENIED:
            return SourceError(
                f"HTTP {status} {response.reason or ''}: the server refuses access (not retried)",
                where=where,
                fix="the file must be public, or the runner needs credentials for this host.",
            )
        return SourceError(
            f"HTTP {status} {response.reason or ''}".strip(),
            where=where,
            fix="check that the URL is public and correct.",
        )

    # ---- retries ------------------------------------------------------------------------------
    def _with_retries(self, url: str, attempt_once: Callable[[], T]) -> T:
        policy = self.policy
        deadline = time.monotonic() + policy.max_retry_seconds
        attempt = 0
        while True:
            attempt += 1
            try:
                try:
                    return attempt_once()
                except _TRANSIENT as err:
                    reason = _transient_reason(err)
                    if reason is None:
                        raise self._fatal_transport(url, err) from None
                    raise _Retry(reason) from None
            except _Retry as retry:
                wait = retry.retry_after
                if wait is None:
                    ceiling = min(policy.backoff_max, policy.backoff_base * 2 ** (attempt - 1))
                    wait = ceiling * (0.5 + random.random() / 2)  # jitter: spread the herd
                remaining = deadline - time.monotonic()
                if attempt > policy.max_retries or wait > remaining:
                    raise self._give_up(url, attempt, retry, wait, remaining) from None
                time.sleep(wait)

    def _give_up(self, url: str, attempts: int, retry: _Retry, wait: float, remaining: float
                 ) -> SourceError:
        where = redact_url(url)
        if retry.retry_after is not None and retry.retry_after > remaining:
            message = (
                f"{retry.reason}: the server asks to retry after {retry.retry_after:.0f} s, "
                f"beyond the retry bound ({self.policy.max_retry_seconds:.0f} s in all)"
            )
        else:
            message = f"giving up after {attempts} attempts: {retry.reason}"
        if retry.truncated:
            return ChecksumError(
                message, where=where, fix="the server keeps sending short files; nothing "
                "was baked from them. Try again later or report it to the provider."
            )
        return SourceError(
            message, where=where, fix="the server is failing or unreachable; try again later."
        )

    def _fatal_transport(self, url: str, err: BaseException) -> SourceError:
        if _caused_by(err, urllib3.exceptions.NameResolutionError):
            text = "the host name cannot be resolved"
        elif isinstance(err, requests.exceptions.SSLError):
            text = "the TLS connection failed (certificate or protocol)"
        else:
            text = type(err).__name__
        return SourceError(text, where=redact_url(url), fix="check the URL's host.")

    # ---- public operations --------------------------------------------------------------------
    def head(self, url: str) -> tuple[int, dict[str, str]]:
        """Status and headers of ``url`` (retried like a GET; 404 is an answer, not an error)."""

        def once() -> tuple[int, dict[str, str]]:
            with self._open("HEAD", url) as response:
                if is_retryable_status(response.status_code):
                    raise self._status_error(url, response)
                return response.status_code, dict(response.headers)

        return self._with_retries(url, once)

    def exists(self, url: str) -> bool:
        """Whether the server has ``url``: HEAD, or a one-byte GET where HEAD is refused."""
        status, _ = self.head(url)
        # 403 too: presigned object-store URLs are signed for GET only, so HEAD is forbidden.
        if status in (403, 405, 501):

            def once() -> int:
                with self._open("GET", url, headers={"Range": "bytes=0-0"}) as response:
                    if is_retryable_status(response.status_code):
                        raise self._status_error(url, response)
                    return response.status_code

            status = self._with_retries(url, once)
        if status in MISSING:
            return False
        if status in (200, 206):
            return True
        raise self._status_error(url, _FakeResponse(status))

    def download(self, url: str, dest: str, *, max_bytes: int | None = None) -> Download:
        """GET ``url`` into the file ``dest`` (rewritten on each attempt, removed on failure)."""

        def once() -> Download:
            with self._open("GET", url) as response:
                if response.status_code != 200:
                    raise self._status_error(url, response)
                return self._receive(url, response, dest, max_bytes)

        try:
            return self._with_retries(url, once)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(dest)
            raise

    def _receive(self, url: str, response: requests.Response, dest: str,
                 max_bytes: int | None) -> Download:
        declared_text = response.headers.get("Content-Length", "")
        declared = int(declared_text) if declared_text.isdigit() else None
        if max_bytes is not None and declared is not None and declared > max_bytes:
            raise SourceError(
                f"the file is {declared} bytes, more than the {max_bytes} allowed here",
                where=redact_url(url),
            )
        digest = hashlib.sha256()
        size = 0
        with open(dest, "wb") as f:
            try:
                for block in response.iter_content(BLOCK):
                    digest.update(block)
                    size += len(block)
                    if max_bytes is not None and size > max_bytes:
                        raise SourceError(
                            f"the file is larger than the {max_bytes} bytes allowed here",
                            where=redact_url(url),
                        )
                    f.write(block)
            except _TRANSIENT as err:
                reason = _transient_reason(err) or type(err).__name__
                short = declared is not None and size < declared
                raise _Retry(
                    f"the download broke off after {size} bytes"
                    + (f" of {declared}" if declared is not None else "")
                    + f" ({reason})",
                    truncated=short and reason == "the body broke off",
                ) from None
        encoded = response.headers.get("Content-Encoding", "identity").lower() != "identity"
        if declared is not None and not encoded and size != declared:
            raise _Retry(
                f"truncated download: got {size} bytes, the server announced {declared}",
                truncated=True,
            )
        return Download(
            size=size,
            sha256=digest.hexdigest(),
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
        )


@dataclass
class _FakeResponse:
    """Enough of a response for :meth:`HttpClient._status_error` from a bare status."""

    status_code: int
    reason: str = ""
    headers: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self.headers = self.headers or {}
