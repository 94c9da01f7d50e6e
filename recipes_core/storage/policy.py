"""Which sources a bake may read, decided before any I/O (DESIGN §6, promises 6 and 7).

The policy belongs to the operator (CLI flags, runner profile), never to the recipe.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from recipes_core.errors import UnsafeRecipeError
from recipes_core.plan.pattern import url_scheme

REMOTE_SCHEMES = ("https", "http", "s3", "gs", "gcs", "az", "abfs")


@dataclass(frozen=True)
class AccessPolicy:
    """What the operator allows. The defaults are the safe ones for untrusted recipes."""

    allow_local: bool = False
    allow_http: bool = True  # plain http is common for public archives; --untrusted forbids it
    allow_private_hosts: bool = False
    timeout: float = 60.0
    max_retries: int = 4
    max_retry_seconds: float = 120.0


def redact_url(url: str) -> str:
    """A URL safe to log: no credentials, no query values (they often carry tokens)."""
    if not url_scheme(url):
        return url
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username or parts.password:
        netloc = "***@" + netloc
    query = (
        "&".join(f"{kv.split('=', 1)[0]}=***" if "=" in kv else kv for kv in parts.query.split("&"))
        if parts.query
        else ""
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


def check_host(host: str, url: str, policy: AccessPolicy) -> None:
    """Refuse hosts that resolve to loopback, link-local or private addresses."""
    if policy.allow_private_hosts:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        return  # an unresolvable host fails later with a clear fetch error
    private = sorted(a for a in addresses if _is_private(a))
    if private:
        raise UnsafeRecipeError(
            f"the host {host} resolves to a private, loopback or link-local address "
            f"({', '.join(private)}); bakes never read from private networks",
            where=redact_url(url),
            fix="use a public https URL. An operator can allow private hosts for a trusted "
            "recipe with --allow-private-hosts.",
        )


def check_url(url: str, policy: AccessPolicy, *, resolve: bool = True) -> None:
    """Refuse a source URL the policy does not allow. Opens no socket unless ``resolve``."""
    if "::" in url.split("/", 1)[0] or (url_scheme(url) and "::" in url):
        raise UnsafeRecipeError(
            "chained fsspec URLs (like simplecache:: or zip::) are not allowed",
            where=redact_url(url),
            fix="name the file directly with an https URL.",
        )
    scheme = url_scheme(url)
    if not scheme or scheme == "file":
        if not policy.allow_local:
            raise UnsafeRecipeError(
                "local paths are not allowed as sources",
                where=redact_url(url),
                fix="publish the files at an https URL; operators baking their own files can "
                "pass --allow-local.",
            )
        return
    if scheme not in REMOTE_SCHEMES:
        raise UnsafeRecipeError(
            f"the scheme '{scheme}' is not allowed",
            where=redact_url(url),
            fix="use https (or s3, gs, az for object stores).",
        )
    if scheme == "http" and not policy.allow_http:
        raise UnsafeRecipeError(
            "plain http is not allowed here", where=redact_url(url), fix="use https."
        )
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise UnsafeRecipeError(
            "the URL carries credentials",
            where=redact_url(url),
            fix="remove them from the recipe; credentials belong in the runner's environment.",
        )
    if scheme in ("http", "https"):
        host = parts.hostname or ""
        if not host:
            raise UnsafeRecipeError(
                "the URL has no host",
                where=redact_url(url),
                fix="write a full URL such as https://host/path/file.nc.",
            )
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None or host.lower() in ("localhost", "localhost.localdomain"):
            if not policy.allow_private_hosts and (literal is None or _is_private(str(literal))):
                raise UnsafeRecipeError(
                    f"the host {host} is a loopback, link-local or private address",
                    where=redact_url(url),
                    fix="use a public https URL; operators can pass --allow-private-hosts.",
                )
        elif resolve:
            check_host(host, url, policy)


def local_path(url: str) -> str:
    """The filesystem path of a local source URL."""
    return url[len("file://") :] if url.startswith("file://") else os.fspath(url)
