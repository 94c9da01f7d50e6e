"""Make URLs and messages safe to show: no credentials, no query values (DESIGN §6, promise 7).

Pure standard library on purpose: the plan (which must stay free of storage and network code)
and the CLI use it as well as the staging layer. Nothing here may raise on odd input, because
it runs inside error handlers.
"""

from __future__ import annotations

import logging
import re

__all__ = [
    "RedactingFilter",
    "install_log_redaction",
    "redact_recipe",
    "redact_text",
    "redact_url",
]

# The same rule as ``recipes_core.plan.pattern.url_scheme`` (not imported: the plan imports us).
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# Anything URL-like inside free text (an exception message from a library, say).
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# A query value anywhere, also in a bare request target ("GET /a.nc?token=x HTTP/1.1").
_QUERY_VALUE = re.compile(r"([?&][^=&\s'\"#?]+=)[^&\s'\"#]+")
# Libraries that log request lines or URLs at DEBUG/INFO level.
_CHATTY_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.util.retry",
    "requests",
    "fsspec",
    "fsspec.http",
    "aiohttp.client",
)


def redact_url(url: str) -> str:
    """A URL safe to log: no user or password, every query value replaced by ``***``.

    Plain paths come back unchanged. The host keeps its brackets (IPv6) and its port, the path
    is kept, the fragment is dropped. Never raises.
    """
    if not isinstance(url, str):
        return "<not a URL>"
    match = _SCHEME.match(url)
    if not match:
        return url
    scheme = match.group(1).lower()
    rest = url[match.end() :]
    rest = rest.split("#", 1)[0]
    # The authority ends at the first '/', '?' (or '\\', which some clients treat as '/').
    cut = len(rest)
    for sep in "/?\\":
        pos = rest.find(sep)
        if pos != -1:
            cut = min(cut, pos)
    authority, tail = rest[:cut], rest[cut:]
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    path, _, query = tail.partition("?")
    if query:
        parts = [f"{kv.split('=', 1)[0]}=***" if "=" in kv else kv for kv in query.split("&")]
        path += "?" + "&".join(parts)
    return f"{scheme}://{authority}{path}"


def redact_text(text: str, *urls: str) -> str:
    """``text`` with the given URLs, and anything else that looks like a URL, redacted.

    For messages built by libraries (fsspec, botocore, requests) that may quote a URL with its
    token in the query string.
    """
    for url in urls:
        if url:
            text = text.replace(url, redact_url(url))
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def redact_recipe(data: dict) -> dict:
    """A recipe's plain data with every URL-bearing field redacted (for copies kept on disk)."""
    out = dict(data)
    source = out.get("source")
    if isinstance(source, dict):
        source = dict(source)
        if isinstance(source.get("pattern"), str):
            source["pattern"] = redact_url(source["pattern"])
        if isinstance(source.get("sha256_manifest"), str):
            source["sha256_manifest"] = redact_url(source["sha256_manifest"])
        if isinstance(source.get("sha256"), dict):
            source["sha256"] = {redact_url(k): v for k, v in source["sha256"].items()}
        out["source"] = source
    return out


class RedactingFilter(logging.Filter):
    """Rewrites a log record's message with URLs and query values redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's problem, not ours
            return True
        cleaned = _QUERY_VALUE.sub(r"\1***", redact_text(message))
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def install_log_redaction() -> None:
    """Put a :class:`RedactingFilter` on the loggers of the HTTP libraries (idempotent).

    Their DEBUG lines quote request targets with query strings, which ``--debug`` would print.
    """
    for name in _CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
