"""Admit a plan's sources before a bake reads any of them (DESIGN §6, promise 6).

The driver calls :func:`admit_sources` once, before the pipeline starts and before anything is
written. In order, cheapest and I/O-free first: every expanded URL passes the access policy and
the checksum manifest's location is checked (no I/O); every distinct http(s) host is resolved
once and refused if it lands on a private address; the pinned checksums (inline and from
``source.sha256_manifest``) are loaded, so a bad manifest fails the bake up front.
"""

from __future__ import annotations

import tempfile
from urllib.parse import urlsplit

from recipes_core.plan.pattern import url_scheme
from recipes_core.plan.plan import Plan
from recipes_core.redact import redact_url
from recipes_core.storage.pins import (
    MAX_MANIFEST_BYTES,
    Pins,
    check_manifest_location,
    decode_manifest,
    parse_manifest,
    read_local_manifest,
)
from recipes_core.storage.policy import (
    HTTP_SCHEMES,
    AccessPolicy,
    check_host,
    check_url,
    ip_literal,
)

__all__ = ["admit_sources", "load_pins"]

# A pattern may put a placeholder in the host; past this many hosts, resolution is left to the
# per-fetch check (which every fetch makes anyway) rather than stalling the driver on DNS.
MAX_RESOLVED_HOSTS = 256


def admit_sources(plan: Plan, policy: AccessPolicy, cache_dir: str) -> Pins:
    """Check every source against ``policy`` and return the pins; raise before any fetch."""
    hosts: dict[tuple[str, int | None], str] = {}
    for _key, url in plan.pattern.items():
        check_url(url, policy, resolve=False)
        if url_scheme(url) in HTTP_SCHEMES and len(hosts) <= MAX_RESOLVED_HOSTS:
            parts = urlsplit(url)
            host = parts.hostname or ""
            if ip_literal(host) is None:
                hosts.setdefault((host, parts.port), url)
    manifest = plan.recipe.source.sha256_manifest
    if manifest:
        check_manifest_location(manifest)  # no I/O: refused before any name is looked up
    if len(hosts) <= MAX_RESOLVED_HOSTS:
        for (host, port), url in hosts.items():
            check_host(host, url, policy, port)
    return load_pins(plan, policy, cache_dir)


def load_pins(plan: Plan, policy: AccessPolicy, cache_dir: str) -> Pins:
    """Inline ``source.sha256`` pins merged with those of ``source.sha256_manifest``."""
    source = plan.recipe.source
    ref = source.sha256_manifest
    if not ref:
        return Pins.combine(source.sha256, {})
    check_manifest_location(ref)
    if url_scheme(ref):
        from recipes_core.storage.stage import Stager  # the network, only when needed

        where = redact_url(ref)
        if url_scheme(cache_dir) not in ("", "file"):
            # The driver stages locally; a remote engine's object-store cache is not for it.
            cache_dir = tempfile.mkdtemp(prefix="arco-pins-")
        staged = Stager(cache_dir, policy).stage(ref, max_bytes=MAX_MANIFEST_BYTES)
        with open(staged.path, "rb") as handle:
            text = decode_manifest(handle.read(MAX_MANIFEST_BYTES + 1), where)
    else:
        text, where = read_local_manifest(ref, plan.pattern.base_dir)
    return Pins.combine(source.sha256, parse_manifest(text, where), where)
