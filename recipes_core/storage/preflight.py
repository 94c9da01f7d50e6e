"""Preflight: does every source exist? Asked before a bake does any work (``--preflight``).

Each source gets a HEAD (or a ``stat`` for local files), a few at a time from a small thread
pool and never more per host than the policy allows. All answers are collected first, so one
error lists *every* missing URL, instead of a bake failing on the first and again on the next.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from recipes_core.errors import ArcoError, SourceError, SourceMissingError, UnsafeRecipeError
from recipes_core.plan.pattern import url_scheme
from recipes_core.plan.plan import Plan
from recipes_core.redact import redact_text, redact_url
from recipes_core.storage.http import HttpClient
from recipes_core.storage.policy import AccessPolicy, check_url, local_path

__all__ = ["PreflightReport", "preflight", "require_sources"]

DEFAULT_WORKERS = 8


@dataclass
class PreflightReport:
    checked: int = 0
    missing: list[str] = field(default_factory=list)  # redacted URLs, in source order
    failed: list[str] = field(default_factory=list)  # "url: why", redacted
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.failed)

    def error(self) -> ArcoError:
        """One error that lists every missing and every unreachable source."""
        lines = []
        if self.missing:
            lines.append(f"{len(self.missing)} of {self.checked} sources are missing:")
            lines += [f"  - {url}" for url in self.missing]
        if self.failed:
            lines.append(f"{len(self.failed)} of {self.checked} sources could not be checked:")
            lines += [f"  - {text}" for text in self.failed]
        cls = SourceMissingError if not self.failed else SourceError
        return cls(
            "preflight failed; nothing was baked.\n" + "\n".join(lines),
            fix="check source.pattern and the dims' keys (or bake fewer keys with --prune).",
        )


def _exists(client: HttpClient, url: str, policy: AccessPolicy) -> bool:
    check_url(url, policy)
    scheme = url_scheme(url)
    if not scheme or scheme == "file":
        return os.path.exists(local_path(url))  # a file, or a Zarr store's folder
    if scheme in ("http", "https"):
        return client.exists(url)
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
        return bool(fs.exists(path))
    except Exception as err:
        raise SourceError(
            f"could not check the source: {type(err).__name__}: {redact_text(str(err), url)}",
            where=redact_url(url),
        ) from None


def preflight(
    plan: Plan, policy: AccessPolicy, *, workers: int = DEFAULT_WORKERS
) -> PreflightReport:
    """Check that every source of ``plan`` exists; report, never raise for a missing one."""
    started = time.monotonic()
    urls = [url for _key, url in plan.pattern.items()]
    for url in urls:  # the policy first, for all of them: no request to a refused URL
        check_url(url, policy, resolve=False)
    client = HttpClient(policy)
    report = PreflightReport(checked=len(urls))

    def probe(url: str) -> tuple[str, bool | str]:
        try:
            return url, _exists(client, url, policy)
        except UnsafeRecipeError:
            raise  # a refusal stops everything, as it would stop the bake
        except ArcoError as err:
            return url, f"{err.message}"

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="preflight") as pool:
        for url, answer in pool.map(probe, urls):
            if answer is False:
                report.missing.append(redact_url(url))
            elif answer is not True:
                report.failed.append(f"{redact_url(url)}: {answer}")
    report.seconds = time.monotonic() - started
    return report


def require_sources(
    plan: Plan, policy: AccessPolicy, *, workers: int = DEFAULT_WORKERS
) -> PreflightReport:
    """:func:`preflight`, raising one error that lists every problem if there is any."""
    report = preflight(plan, policy, workers=workers)
    if not report.ok:
        raise report.error()
    return report
