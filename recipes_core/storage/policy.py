"""Which sources a bake may read, decided before any I/O (DESIGN §6, promises 6 and 7).

The policy belongs to the operator (CLI flags, runner profile), never to the recipe. The checks
here are deliberately strict and run in three places: on every expanded source URL before a
bake starts (no I/O), on each host after DNS resolution, and again on every redirect target and
on the address each connection actually reached (:func:`check_peer`), so neither a redirect nor
a DNS answer that changes between lookups can lead a fetch into a private network.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from recipes_core.errors import SourceError, UnsafeRecipeError
from recipes_core.plan.pattern import is_chained_url, url_scheme
from recipes_core.redact import redact_url

__all__ = [
    "REMOTE_SCHEMES",
    "AccessPolicy",
    "check_host",
    "check_peer",
    "check_url",
    "ip_literal",
    "is_forbidden_address",
    "local_path",
    "redact_url",
]

REMOTE_SCHEMES = ("https", "http", "s3", "gs", "gcs", "az", "abfs")
HTTP_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# One label of a DNS name after IDNA encoding: letters, digits, '-' and '_' (seen in real bucket
# hosts), at most 63 characters. Checked label by label, so no regex backtracking on long input.
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
# NAT64 (RFC 6052) embeds an IPv4 address in its last 32 bits.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


@dataclass(frozen=True)
class AccessPolicy:
    """What the operator allows. The defaults are the safe ones for untrusted recipes.

    ``allowed_hosts`` lists ``host:port`` (or bare ``host``, any port) entries that are exempt
    from the private-address refusal, for an operator's own mirror on a private network (and
    for tests' loopback servers) without opening every private address.

    ``allow_http`` is off: only https (and s3/gs/az) may be read unless the operator allows
    plain http (``--allow-http``, or ``access.allow_http: true`` in the runner profile) for a
    server they trust, since plain http bytes can be altered on the way.

    ``max_connections_per_host`` bounds concurrent HTTP requests to one host across the threads
    and processes of one machine that share a staging cache (see
    :mod:`recipes_core.storage.slots`); workers on other machines have their own.
    """

    allow_local: bool = False
    allow_http: bool = False
    allow_private_hosts: bool = False
    allowed_hosts: tuple[str, ...] = ()
    timeout: float = 60.0  # seconds one socket read may stall before the fetch is retried
    connect_timeout: float = 10.0
    max_retries: int = 4
    max_retry_seconds: float = 120.0  # total bound on one source's attempts and waits
    backoff_base: float = 0.5  # first retry waits about this long, then doubling, with jitter
    backoff_max: float = 30.0
    max_connections_per_host: int = 4
    _allowed: frozenset[tuple[str, int | None]] = field(
        default=frozenset(), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        hosts = (self.allowed_hosts,) if isinstance(self.allowed_hosts, str) else self.allowed_hosts
        object.__setattr__(self, "allowed_hosts", tuple(hosts))
        object.__setattr__(self, "_allowed", frozenset(_host_entry(h) for h in hosts))
        if self.max_connections_per_host < 1:
            raise ValueError("max_connections_per_host must be at least 1")

    def host_allowed(self, host: str, port: int | None) -> bool:
        """Whether ``host:port`` is on the operator's allow-list of private hosts."""
        host = _bare(host)
        return (host, port) in self._allowed or (host, None) in self._allowed


def _bare(host: str) -> str:
    return host.strip("[]").lower().rstrip(".")


def _host_entry(entry: str) -> tuple[str, int | None]:
    parts = urlsplit("//" + entry.strip())
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"allowed_hosts entry {entry!r} has an invalid port") from None
    if not parts.hostname:
        raise ValueError(f"allowed_hosts entry {entry!r} is not host or host:port")
    return _bare(parts.hostname), port


# ---- addresses ---------------------------------------------------------------------------------


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host string denotes by itself, or None for a DNS name.

    Besides dotted quads and IPv6 this follows ``inet_aton``: ``2130706433``, ``0x7f.1``,
    ``0177.0.0.1`` and ``127.1`` all mean 127.0.0.1 to the C library, so they must to us too.
    """
    text = _bare(host).split("%", 1)[0]  # an IPv6 zone id (fe80::1%eth0) names no other host
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = []
    for part in parts:
        try:
            if part[:2] in ("0x", "0X"):
                values.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                values.append(int(part, 8))
            else:
                values.append(int(part, 10) if part.isdigit() else -1)
        except ValueError:
            return None
        if values[-1] < 0:
            return None
    # inet_aton: a.b.c.d, a.b.(16 bits), a.(24 bits), (32 bits).
    *head, last = values
    if any(v > 255 for v in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    number = last
    for i, value in enumerate(head):
        number |= value << (8 * (3 - i))
    return ipaddress.IPv4Address(number)


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one tunnels to (mapped, compatible, 6to4, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip))
    return None


def is_forbidden_address(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, private (RFC 1918, ULA), link-local, CGNAT, multicast, reserved or unspecified."""
    try:
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
    except ValueError:
        return True  # not an address at all: refuse rather than guess
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            return is_forbidden_address(inner)
        if ip.is_site_local:
            return True
    # is_global is False for RFC 1918, ULA, CGNAT (100.64/10), loopback, link-local, reserved
    # and documentation ranges; multicast counts as global in ipaddress but is never a server.
    return not ip.is_global or ip.is_multicast or ip.is_unspecified


def _refuse_private(host: str, url: str, detail: str) -> UnsafeRecipeError:
    return UnsafeRecipeError(
        f"the host {host} {detail}; bakes never read from loopback, link-local or private "
        "addresses",
        where=redact_url(url),
        fix="use a public https URL. An operator can allow a trusted private mirror with "
        "--allow-private-hosts or the allowed_hosts list of the runner profile.",
    )


def check_host(host: str, url: str, policy: AccessPolicy, port: int | None = None) -> None:
    """Resolve ``host`` and refuse it if any address is private. Does DNS I/O."""
    if policy.allow_private_hosts or policy.host_allowed(host, port):
        return
    try:
        infos = socket.getaddrinfo(_bare(host), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise SourceError(
            f"the host {host} cannot be resolved ({getattr(exc, 'strerror', None) or exc})",
            where=redact_url(url),
            fix="check the host name in source.pattern and the machine's DNS.",
        ) from None
    private = sorted({str(info[4][0]) for info in infos if is_forbidden_address(info[4][0])})
    if private:
        raise _refuse_private(host, url, f"resolves to {', '.join(private)}")


def check_peer(host: str, port: int | None, address: str, policy: AccessPolicy) -> None:
    """Refuse a connection that reached a private address (after whatever DNS said)."""
    if policy.allow_private_hosts or policy.host_allowed(host, port):
        return
    if is_forbidden_address(address):
        shown = f"[{host}]" if ":" in host else host
        raise _refuse_private(
            host, f"{shown}:{port}", f"was reached at {address} when connecting"
        )


# ---- URLs --------------------------------------------------------------------------------------


def check_url(url: str, policy: AccessPolicy, *, resolve: bool = True) -> None:
    """Refuse a source URL the policy does not allow. Opens no socket unless ``resolve``."""
    if not isinstance(url, str) or not url:
        raise UnsafeRecipeError("a source URL is empty", fix="write a full https URL.")
    if is_chained_url(url):
        raise UnsafeRecipeError(
            "chained fsspec URLs (like simplecache::, zip:: or reference::) are not allowed",
            where=redact_url(url),
            fix="name the file directly with an https URL.",
        )
    if _CONTROL.search(url) or "\\" in url:
        raise UnsafeRecipeError(
            "the source URL contains a space, a control character or a backslash",
            where=redact_url(url.replace("\x00", "\\0")),
            fix="percent-encode spaces (%20) and use '/' as the path separator.",
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
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what raises on a bad one
    except ValueError as exc:
        raise UnsafeRecipeError(
            f"the source URL cannot be parsed ({exc})",
            where=redact_url(url),
            fix="write a full URL such as https://host/path/file.nc.",
        ) from None
    if "@" in parts.netloc:
        raise UnsafeRecipeError(
            "the URL carries credentials (user:password@)",
            where=redact_url(url),
            fix="remove them from the recipe; credentials belong in the runner's environment.",
        )
    if scheme in HTTP_SCHEMES:
        # The checks that need no I/O first (a private literal, then plain http), DNS last.
        _check_http_host(url, scheme, policy, resolve=False)
        if scheme == "http" and not policy.allow_http:
            raise UnsafeRecipeError(
                "plain http is not allowed here",
                where=redact_url(url),
                fix="use https. An operator who trusts this server can allow plain http with "
                "--allow-http or access.allow_http: true in the runner profile.",
            )
        if resolve:
            _check_http_host(url, scheme, policy, resolve=True)


def _check_http_host(url: str, scheme: str, policy: AccessPolicy, *, resolve: bool) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or _DEFAULT_PORTS[scheme]
    if not host:
        raise UnsafeRecipeError(
            "the URL has no host",
            where=redact_url(url),
            fix="write a full URL such as https://host/path/file.nc.",
        )
    if policy.allow_private_hosts or policy.host_allowed(host, port):
        return
    literal = ip_literal(host)
    if literal is not None:
        if is_forbidden_address(literal):
            # Spell out what an odd IPv4 form (0x7f.1, 2130706433) means to the C library.
            odd = isinstance(literal, ipaddress.IPv4Address) and str(literal) != _bare(host)
            shown = f"{host} (that is {literal})" if odd else host
            raise _refuse_private(shown, url, "is a loopback, link-local or private address")
        return
    name = _bare(host)
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        raise _refuse_private(host, url, "is a loopback name")
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_name = ""
    labels = ascii_name.removesuffix(".").split(".")
    if len(ascii_name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise UnsafeRecipeError(
            f"the host {host!r} is not a valid host name",
            where=redact_url(url),
            fix="write the host name plainly (no percent-encoding or unusual characters).",
        )
    if resolve:
        check_host(host, url, policy, port)


def local_path(url: str) -> str:
    """The filesystem path of a local source URL."""
    return url[len("file://") :] if url.startswith("file://") else os.fspath(url)
