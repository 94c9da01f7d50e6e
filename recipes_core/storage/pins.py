"""Pinned checksums: inline ``source.sha256`` and a ``source.sha256_manifest`` file.

A manifest uses the ``sha256sum`` format, one ``<64 hex>  <name>`` line per file (``*name`` for
binary mode; blank lines and ``#`` comments are skipped). A name may be a file name, a relative
path or a full URL; a source is matched by its URL, then by the longest trailing part of its
path that a pin names (``2020/file.nc``, then ``file.nc``).

The manifest is loaded by the driver before any source is fetched. It is either an https URL
(checked by the access policy like a source) or a path relative to the recipe that must stay
inside the recipe's folder: no ``..``, no absolute path, no symlink out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from recipes_core.errors import RecipeError, UnsafeRecipeError
from recipes_core.plan.pattern import url_scheme
from recipes_core.redact import redact_url
from recipes_core.storage.paths import check_relative_part, is_inside

__all__ = ["MAX_MANIFEST_BYTES", "Pins", "check_manifest_location", "parse_manifest"]

MAX_MANIFEST_BYTES = 64 * 1024 * 1024  # ~700,000 lines: far more than any recipe expands to
_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


@dataclass(frozen=True, eq=False)
class Pins:
    """Expected sha256 by name. Plain data, so Beam can ship it to workers."""

    by_name: Mapping[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.by_name)

    def __len__(self) -> int:
        return len(self.by_name)

    def lookup(self, url: str) -> str | None:
        """The pinned sha256 of ``url``, or None if nothing pins it."""
        found = self.by_name.get(url)
        if found is not None:
            return found
        path = urlsplit(url).path if url_scheme(url) else url
        segments = [s for s in unquote(path).split("/") if s]
        for i in range(len(segments)):
            found = self.by_name.get("/".join(segments[i:]))
            if found is not None:
                return found
        return None

    @classmethod
    def combine(cls, inline: Mapping[str, str] | None, manifest: Mapping[str, str],
                manifest_name: str = "the checksum manifest") -> Pins:
        """Inline pins and a manifest's; a name pinned to two different sums is an error."""
        merged = dict(manifest)
        for name, digest in (inline or {}).items():
            key = _normalise_name(name)
            other = merged.get(key)
            if other is not None and other != digest.lower():
                raise RecipeError(
                    f"'{name}' is pinned twice with different checksums: {digest} in "
                    f"source.sha256 and {other} in {manifest_name}",
                    where="source.sha256",
                    fix="keep one pin per file.",
                )
            merged[key] = digest.lower()
        return cls(merged)


def _normalise_name(name: str) -> str:
    if url_scheme(name):
        return name
    while name.startswith("./"):
        name = name[2:]
    return name


def parse_manifest(text: str, where: str) -> dict[str, str]:
    """``{name: sha256}`` from ``sha256sum`` output; errors name the line."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise RecipeError(
                "this line is not '<sha256>  <file name>' (the format sha256sum writes)",
                where=f"{where}, line {number}",
                fix="regenerate the manifest with: sha256sum FILES > SHA256SUMS",
            )
        digest, name = match.group(1).lower(), _normalise_name(match.group(2).strip())
        if "\x00" in name:
            raise RecipeError("a file name contains NUL", where=f"{where}, line {number}")
        if pins.get(name, digest) != digest:
            raise RecipeError(
                f"'{name}' is listed twice with different checksums",
                where=f"{where}, line {number}",
                fix="keep one line per file.",
            )
        pins[name] = digest
    return pins


def check_manifest_location(ref: str, *, untrusted: bool = False) -> None:
    """Refuse a manifest location without any I/O (lint and the driver both call this).

    Allowed: a path relative to the recipe that stays in its folder, or an https URL (plain
    http only for trusted recipes; the access policy decides at bake time).
    """
    scheme = url_scheme(ref)
    if not scheme:
        check_relative_part(ref, what="checksum manifest path")
        return
    if scheme == "https" or (scheme == "http" and not untrusted):
        return
    raise UnsafeRecipeError(
        f"the checksum manifest must be an https URL or a file beside the recipe, not a "
        f"{scheme}:// location",
        where=redact_url(ref),
        fix="publish SHA256SUMS at an https URL, or put it in the recipe's folder and name it "
        "by its relative path.",
    )


def read_local_manifest(ref: str, recipe_dir: str | None) -> tuple[str, str]:
    """The text of a manifest beside the recipe, and the path it was read from."""
    check_relative_part(ref, what="checksum manifest path")
    if recipe_dir is None:
        raise RecipeError(
            "a relative source.sha256_manifest needs the recipe's folder, which is unknown here",
            where="source.sha256_manifest",
            fix="compile the recipe from its file (arco does), or give an https URL.",
        )
    root = os.path.realpath(recipe_dir)
    path = os.path.realpath(os.path.join(root, ref))
    if not is_inside(root, path):  # a symlink in the recipe's folder that points elsewhere
        raise UnsafeRecipeError(
            f"the checksum manifest {ref} resolves outside the recipe's folder",
            where="source.sha256_manifest",
            fix="put the manifest file itself (not a link) beside the recipe.",
        )
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise RecipeError(
            f"cannot read the checksum manifest: {exc.strerror or exc}",
            where=os.path.join(recipe_dir, ref),
            fix="check source.sha256_manifest: a path relative to the recipe file.",
        ) from None
    return _decode(data, path), path


def _decode(data: bytes, where: str) -> str:
    if len(data) > MAX_MANIFEST_BYTES:
        raise UnsafeRecipeError(
            f"the checksum manifest is larger than {MAX_MANIFEST_BYTES // 2**20} MB",
            where=where,
            fix="list only this recipe's files.",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RecipeError(
            "the checksum manifest is not UTF-8 text", where=where, fix="regenerate it."
        ) from None


def decode_manifest(data: bytes, where: str) -> str:
    """Size-check and decode a manifest fetched from a URL."""
    return _decode(data, where)
