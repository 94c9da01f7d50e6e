"""Stage sources into a local, content-addressed cache (DESIGN §4, step 2).

A download goes to a temporary file, is checked (size against Content-Length, sha256 against any
pin) and only then renamed into ``objects/<sha256>``. Every fetch appends a line to
``manifest.jsonl``: the staging history. A changed upstream file becomes a new object beside the
old one, never an overwrite, so an earlier bake stays reproducible.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import requests

from recipes_core.errors import ChecksumError, SourceError, SourceMissingError
from recipes_core.plan.pattern import url_scheme
from recipes_core.storage.policy import AccessPolicy, check_url, local_path, redact_url

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
BLOCK = 1 << 20


@dataclass(frozen=True)
class StagedSource:
    """A source ready to open: a local path, and what we know about its bytes."""

    url: str
    path: str
    size: int
    sha256: str
    etag: str | None = None
    last_modified: str | None = None
    fetched_at: str | None = None
    cached: bool = False

    def record(self) -> dict[str, Any]:
        out = asdict(self)
        out["url"] = redact_url(self.url)
        return out


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha256_file(path: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


class Stager:
    """Fetches sources into ``cache_dir`` under an access policy. One per worker."""

    def __init__(self, cache_dir: str, policy: AccessPolicy | None = None) -> None:
        self.cache_dir = os.path.abspath(cache_dir)
        self.policy = policy or AccessPolicy()
        self._session: requests.Session | None = None

    # ---- the cache ----------------------------------------------------------------------
    @property
    def manifest_path(self) -> str:
        return os.path.join(self.cache_dir, "manifest.jsonl")

    def object_path(self, sha256: str) -> str:
        return os.path.join(self.cache_dir, "objects", sha256[:2], sha256)

    def history(self, url: str | None = None) -> list[dict[str, Any]]:
        """Every manifest record (for one URL, if given), oldest first."""
        try:
            with open(self.manifest_path, encoding="utf-8") as f:
                records = [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []
        if url is not None:
            records = [r for r in records if r.get("url") == redact_url(url)]
        return records

    def _remember(self, staged: StagedSource) -> None:
        os.makedirs(self.cache_dir, exist_ok=True)
        line = json.dumps(staged.record(), sort_keys=True) + "\n"
        # One short O_APPEND write per record keeps lines whole across concurrent workers.
        fd = os.open(self.manifest_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    # ---- staging ------------------------------------------------------------------------
    def stage(self, url: str, expected_sha256: str | None = None) -> StagedSource:
        check_url(url, self.policy)
        scheme = url_scheme(url)
        if not scheme or scheme == "file":
            return self._stage_local(url, expected_sha256)
        if scheme in ("http", "https"):
            return self._stage_http(url, expected_sha256)
        return self._stage_fsspec(url, expected_sha256)

    def _verify_pin(self, url: str, sha256: str, expected: str | None) -> None:
        if expected is not None and sha256 != expected:
            raise ChecksumError(
                f"sha256 mismatch: the recipe pins {expected} but the source is {sha256}",
                where=redact_url(url),
                fix="if the upstream file changed on purpose, update the pin in the recipe; "
                "otherwise report it to the data provider.",
            )

    def _stage_local(self, url: str, expected: str | None) -> StagedSource:
        path = local_path(url)
        if not os.path.isfile(path):
            raise SourceMissingError(
                "no such file", where=path, fix="check source.pattern and the dims' keys."
            )
        sha256, size = _sha256_file(path)
        self._verify_pin(url, sha256, expected)
        stat = os.stat(path)
        return StagedSource(
            url=url,
            path=os.path.abspath(path),
            size=size,
            sha256=sha256,
            last_modified=datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(),
            fetched_at=_now(),
        )

    def _session_get(self) -> requests.Session:
        if self._session is None:
            self._session = requests.Session()
            self._session.headers["User-Agent"] = "arco-recipes/0.1 (+bake)"
        return self._session

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request with redirects followed by hand (each hop re-checked) and bounded retries."""
        deadline = time.monotonic() + self.policy.max_retry_seconds
        attempt = 0
        while True:
            current = url
            try:
                for _hop in range(6):
                    response = self._session_get().request(
                        method,
                        current,
                        allow_redirects=False,
                        timeout=(min(10.0, self.policy.timeout), self.policy.timeout),
                        **kwargs,
                    )
                    if response.is_redirect and "location" in response.headers:
                        current = urljoin(current, response.headers["location"])
                        response.close()
                        check_url(current, self.policy)
                        continue
                    break
                else:
                    raise SourceError(
                        "too many redirects",
                        where=redact_url(url),
                        fix="point the recipe at the final URL.",
                    )
            except (requests.ConnectionError, requests.Timeout) as err:
                response = None
                reason = f"{type(err).__name__}"
            else:
                if response.status_code not in RETRY_STATUS:
                    return response
                reason = f"HTTP {response.status_code}"
            attempt += 1
            wait = min(30.0, 0.25 * 2**attempt) * (0.5 + random.random() / 2)
            if response is not None and response.headers.get("Retry-After", "").isdigit():
                wait = float(response.headers["Retry-After"])
            if attempt > self.policy.max_retries or time.monotonic() + wait > deadline:
                raise SourceError(
                    f"giving up after {attempt} attempts ({reason})",
                    where=redact_url(url),
                    fix="the server is failing or unreachable; try again later.",
                )
            if response is not None:
                response.close()
            time.sleep(wait)

    def _cached(self, url: str) -> StagedSource | None:
        """A cached copy, if the server says the file has not changed since we fetched it."""
        records = self.history(url)
        if not records:
            return None
        last = records[-1]
        path = self.object_path(last["sha256"])
        if not os.path.isfile(path):
            return None
        try:
            head = self._request("HEAD", url)
        except SourceError:
            return None
        if head.status_code != 200:
            return None
        same_etag = last.get("etag") and head.headers.get("ETag") == last["etag"]
        same_stamp = (
            last.get("last_modified")
            and head.headers.get("Last-Modified") == last["last_modified"]
            and head.headers.get("Content-Length") == str(last["size"])
        )
        if not (same_etag or same_stamp):
            return None
        return StagedSource(
            url=url,
            path=path,
            size=last["size"],
            sha256=last["sha256"],
            etag=last.get("etag"),
            last_modified=last.get("last_modified"),
            fetched_at=last.get("fetched_at"),
            cached=True,
        )

    def _stage_http(self, url: str, expected: str | None) -> StagedSource:
        cached = self._cached(url)
        if cached is not None:
            self._verify_pin(url, cached.sha256, expected)
            return cached
        response = self._request("GET", url, stream=True)
        with response:
            if response.status_code == 404 or response.status_code == 410:
                raise SourceMissingError(
                    f"HTTP {response.status_code}: the source does not exist",
                    where=redact_url(url),
                    fix="check source.pattern and the dims' keys.",
                )
            if response.status_code != 200:
                raise SourceError(
                    f"HTTP {response.status_code} {response.reason}",
                    where=redact_url(url),
                    fix="check that the URL is public and correct.",
                )
            tmp_dir = os.path.join(self.cache_dir, "tmp")
            os.makedirs(tmp_dir, exist_ok=True)
            tmp = os.path.join(tmp_dir, uuid.uuid4().hex)
            digest = hashlib.sha256()
            size = 0
            try:
                with open(tmp, "wb") as f:
                    for block in response.iter_content(BLOCK):
                        digest.update(block)
                        size += len(block)
                        f.write(block)
            except (requests.RequestException, OSError) as err:
                _remove(tmp)
                raise SourceError(
                    f"the download broke off after {size} bytes ({type(err).__name__})",
                    where=redact_url(url),
                    fix="try again; the server reset the connection.",
                ) from None
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) != size:
                _remove(tmp)
                raise ChecksumError(
                    f"truncated download: got {size} bytes, the server announced {declared}",
                    where=redact_url(url),
                    fix="try again; nothing was baked from it.",
                )
            sha256 = digest.hexdigest()
            try:
                self._verify_pin(url, sha256, expected)
            except ChecksumError:
                _remove(tmp)
                raise
            final = self.object_path(sha256)
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(tmp, final)
            staged = StagedSource(
                url=url,
                path=final,
                size=size,
                sha256=sha256,
                etag=response.headers.get("ETag"),
                last_modified=response.headers.get("Last-Modified"),
                fetched_at=_now(),
            )
        self._remember(staged)
        return staged

    def _stage_fsspec(self, url: str, expected: str | None) -> StagedSource:
        import fsspec

        tmp_dir = os.path.join(self.cache_dir, "tmp")
        os.makedirs(tmp_dir, exist_ok=True)
        try:
            with (
                fsspec.open(url, "rb") as src,
                tempfile.NamedTemporaryFile(dir=tmp_dir, delete=False) as dst,
            ):
                shutil.copyfileobj(src, dst, BLOCK)
                tmp = dst.name
        except FileNotFoundError:
            raise SourceMissingError(
                "the source does not exist", where=redact_url(url), fix="check source.pattern."
            ) from None
        except Exception as err:
            raise SourceError(
                f"could not read the source: {type(err).__name__}: {err}",
                where=redact_url(url),
                fix="check the URL and the runner's credentials.",
            ) from None
        sha256, size = _sha256_file(tmp)
        try:
            self._verify_pin(url, sha256, expected)
        except ChecksumError:
            _remove(tmp)
            raise
        final = self.object_path(sha256)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(tmp, final)
        staged = StagedSource(url=url, path=final, size=size, sha256=sha256, fetched_at=_now())
        self._remember(staged)
        return staged


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
