"""Stage sources into the local, content-addressed cache (DESIGN §4, step 2).

A download goes to a temporary file, is checked (size against Content-Length, sha256 against any
pin) and only then renamed into ``objects/<sha256>``; a failed or rejected download leaves
nothing behind. Every fetch appends a record to the manifest: the staging history (see
:mod:`recipes_core.storage.cache`). A changed upstream file becomes a new object beside the old
one, never an overwrite, so an earlier bake stays reproducible.

A cached copy is reused only when the server's ETag (or Last-Modified and size) still match the
newest record for the URL, and only after its bytes are re-hashed: a damaged cache is never
baked from. Object-store sources (s3, gs, az) are checked the same way against the object's
metadata (``fs.info``): the bytes read must have the size it announces, its ETag (or
``md5Hash``) is recorded, and a cached copy is reused while ETag and size still match.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from recipes_core.errors import ChecksumError, SourceError, SourceMissingError
from recipes_core.plan.pattern import url_scheme
from recipes_core.redact import redact_text
from recipes_core.storage.cache import (
    BLOCK,
    StagingCache,
    cache_key,
    now_text,
    sha256_file,
    sha256_tree,
)
from recipes_core.storage.http import HttpClient
from recipes_core.storage.policy import AccessPolicy, check_url, local_path, redact_url

__all__ = ["StagedSource", "Stager"]


PENDING_SHA256 = ""  # a local file staged without its hash: a write task fills it in


@dataclass(frozen=True)
class StagedSource:
    """A source ready to open: a local path, and what we know about its bytes.

    ``url`` is the URL as it may be shown (credentials and query values redacted): everything
    after staging reads the local ``path``, so the secret-bearing original is not carried on.
    """

    url: str
    path: str
    size: int
    sha256: str
    etag: str | None = None
    last_modified: str | None = None
    fetched_at: str | None = None
    cached: bool = False
    cache_key: str | None = None

    def record(self) -> dict[str, Any]:
        # Every field is a plain value: a shallow copy, ~10x faster than asdict's deep one
        # (a 100,000-source bake records them all in sources.json).
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["url"] = redact_url(self.url)
        return out

    def manifest_record(self) -> dict[str, Any]:
        """The line the staging history keeps for this fetch."""
        return {
            "event": "fetch",
            "url": redact_url(self.url),
            "cache_key": self.cache_key,
            "size": self.size,
            "sha256": self.sha256,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "fetched_at": self.fetched_at,
        }


class Stager:
    """Fetches sources into ``cache_dir`` under an access policy. One per worker."""

    def __init__(self, cache_dir: str, policy: AccessPolicy | None = None) -> None:
        self.cache = StagingCache(cache_dir)
        self.cache_dir = self.cache.root
        self.policy = policy or AccessPolicy()
        # Lock files in the cache make the per-host limit hold for every process staging here.
        self.http = HttpClient(self.policy, lock_dir=os.path.join(self.cache.root, "locks"))

    # ---- the cache (kept here for callers that knew the Stager first) ---------------------
    @property
    def manifest_path(self) -> str:
        return self.cache.manifest_path

    def object_path(self, sha256: str) -> str:
        return self.cache.object_path(sha256)

    def history(self, url: str | None = None) -> list[dict[str, Any]]:
        """Every fetch record (for one URL, if given), oldest first."""
        if url is None:
            return self.cache.fetches()
        return self.cache.history(cache_key(url))

    # ---- staging ------------------------------------------------------------------------
    def stage(
        self, url: str, expected_sha256: str | None = None, *, max_bytes: int | None = None,
        hash_local: bool = True,
    ) -> StagedSource:
        """Fetch ``url`` (or reuse its cached copy) and check it against ``expected_sha256``.

        With ``hash_local=False`` a local file that no pin covers is only checked to exist, and
        its ``sha256`` is left empty for the write task that reads it to fill in (see
        :mod:`recipes_core.source_hashes`).
        """
        check_url(url, self.policy)
        scheme = url_scheme(url)
        if not scheme or scheme == "file":
            return self._stage_local(url, expected_sha256,
                                     hash_now=hash_local or expected_sha256 is not None)
        if scheme in ("http", "https"):
            return self._stage_http(url, expected_sha256, max_bytes)
        return self._stage_fsspec(url, expected_sha256)

    def _verify_pin(self, url: str, sha256: str, expected: str | None) -> None:
        if expected is not None and sha256 != expected.lower():
            raise ChecksumError(
                f"sha256 mismatch: the recipe pins {expected.lower()} but the source is {sha256}",
                where=redact_url(url),
                fix="if the upstream file changed on purpose, update the pin in the recipe; "
                "otherwise report it to the data provider. Nothing was baked from it.",
            )

    def _stage_local(self, url: str, expected: str | None, hash_now: bool = True,
                     ) -> StagedSource:
        path = local_path(url)
        if os.path.isdir(path):  # a Zarr store is a folder: hash its whole tree
            sha256, size = sha256_tree(path)
        elif os.path.isfile(path) and not hash_now:
            sha256, size = PENDING_SHA256, os.path.getsize(path)
        elif os.path.isfile(path):
            sha256, size = sha256_file(path)
        else:
            raise SourceMissingError(
                "no such file", where=path, fix="check source.pattern and the dims' keys."
            )
        self._verify_pin(url, sha256, expected)
        stat = os.stat(path)
        return StagedSource(
            url=url,
            path=os.path.abspath(path),
            size=size,
            sha256=sha256,
            last_modified=datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(),
            fetched_at=now_text(),
        )

    def _last_fetch(self, key: str, expected: str | None) -> dict[str, Any] | None:
        """The newest fetch record of a cache key, if its object is on disk and fits the pin."""
        records = self.cache.history(key)
        if not records:
            return None
        last = records[-1]
        path = self.cache.object_path(str(last.get("sha256")))
        if not os.path.isfile(path) or (expected and last.get("sha256") != expected.lower()):
            return None
        return last

    def _reuse(self, url: str, key: str, last: dict[str, Any]) -> StagedSource | None:
        """The cached object of ``last``, once its bytes re-hash to what the record says."""
        path = self.cache.object_path(str(last.get("sha256")))
        sha256, size = sha256_file(path)
        if sha256 != last.get("sha256") or size != last.get("size"):
            return None  # damaged on disk: fetch again (the rename then repairs the object)
        return StagedSource(
            url=redact_url(url),
            path=path,
            size=size,
            sha256=sha256,
            etag=last.get("etag"),
            last_modified=last.get("last_modified"),
            fetched_at=last.get("fetched_at"),
            cached=True,
            cache_key=key,
        )

    def _cached(self, url: str, key: str, expected: str | None) -> StagedSource | None:
        """The cached copy, if the server says the file has not changed since we fetched it."""
        last = self._last_fetch(key, expected)
        if last is None:
            return None
        status, headers = self.http.head(url)
        if status != 200:
            return None
        etag = headers.get("ETag")
        same_etag = bool(last.get("etag")) and etag == last["etag"]
        same_stamp = (
            bool(last.get("last_modified"))
            and headers.get("Last-Modified") == last["last_modified"]
            and headers.get("Content-Length") == str(last.get("size"))
        )
        if not (same_etag or same_stamp):
            return None
        return self._reuse(url, key, last)

    def _stage_http(self, url: str, expected: str | None, max_bytes: int | None) -> StagedSource:
        key = cache_key(url)
        cached = self._cached(url, key, expected)
        if cached is not None:
            return cached
        tmp = self.cache.temp_path()
        download = self.http.download(url, tmp, max_bytes=max_bytes)  # removes tmp on failure
        return self._commit(url, tmp, download.sha256, download.size, expected,
                            etag=download.etag, last_modified=download.last_modified)

    def _commit(self, url: str, tmp: str, sha256: str, size: int, expected: str | None,
                **meta: str | None) -> StagedSource:
        """Check the pin, move the download into place and record it in the history."""
        try:
            self._verify_pin(url, sha256, expected)
            final = self.cache.commit(tmp, sha256)
        except BaseException:
            _remove(tmp)
            raise
        staged = StagedSource(url=redact_url(url), path=final, size=size, sha256=sha256,
                              fetched_at=now_text(), cache_key=cache_key(url), **meta)
        self.cache.append(staged.manifest_record())
        return staged

    def _stage_fsspec(self, url: str, expected: str | None) -> StagedSource:
        import fsspec

        try:
            fs, path = fsspec.core.url_to_fs(url)
            fs.invalidate_cache(path)  # a listing cached earlier must not hide a change
            info = fs.info(path)
        except Exception as err:
            raise _read_error(url, err) from None
        announced = info.get("size")
        etag = object_etag(info)
        key = cache_key(url)
        last = self._last_fetch(key, expected)
        if (last is not None and etag is not None and last.get("etag") == etag
                and last.get("size") == announced):
            cached = self._reuse(url, key, last)
            if cached is not None:
                return cached
        tmp = self.cache.temp_path()
        try:
            with fs.open(path, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, BLOCK)
            sha256, size = sha256_file(tmp)
        except BaseException as err:
            _remove(tmp)
            if isinstance(err, Exception):
                raise _read_error(url, err) from None
            raise
        if isinstance(announced, int) and size != announced:
            _remove(tmp)
            raise ChecksumError(
                f"short or changed read: got {size} bytes, the object store announces "
                f"{announced}",
                where=redact_url(url),
                fix="the object may have been replaced while it was read; bake again. Nothing "
                "was baked from these bytes.",
            )
        return self._commit(url, tmp, sha256, size, expected, etag=etag,
                            last_modified=_stamp(info))


def object_etag(info: dict[str, Any]) -> str | None:
    """An object's version tag from fsspec metadata: S3's ETag, Azure's etag, GCS's md5Hash."""
    for name in ("ETag", "etag", "md5Hash"):
        value = info.get(name)
        if value:
            return str(value)
    return None


def _stamp(info: dict[str, Any]) -> str | None:
    for name in ("LastModified", "last_modified", "updated", "mtime"):
        value = info.get(name)
        if value:
            return value.isoformat() if isinstance(value, datetime) else str(value)
    return None


def _read_error(url: str, err: Exception) -> SourceError:
    if isinstance(err, FileNotFoundError):
        return SourceMissingError(
            "the source does not exist", where=redact_url(url), fix="check source.pattern."
        )
    return SourceError(
        f"could not read the source: {type(err).__name__}: {redact_text(str(err), url)}",
        where=redact_url(url),
        fix="check the URL and the runner's credentials.",
    )


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
