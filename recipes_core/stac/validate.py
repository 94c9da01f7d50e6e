"""Validate a STAC catalogue offline, against the JSON schemas shipped in this package.

Every object reachable from the root (children, items, and the version links to earlier
Collections) is checked against the core schema of its ``stac_version`` and every schema in its
``stac_extensions``. Schemas resolve from ``recipes_core/stac/schemas`` only: a ``$ref`` or an
extension we do not ship is reported as a problem, never fetched. Documents are read as plain
JSON rather than through pystac, so a broken document is reported, not a traceback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable

from recipes_core.stac.open import catalog_path

# URL prefix -> folder under schemas/, mirroring the published URLs.
URL_ROOTS = {
    "https://schemas.stacspec.org/": "stac-spec/",
    "https://stac-extensions.github.io/": "",
    "https://proj.org/schemas/": "proj/",
    "https://geojson.org/schema/": "geojson/",
}
CORE = {
    "Catalog": "catalog-spec/json-schema/catalog.json",
    "Collection": "collection-spec/json-schema/collection.json",
    "Feature": "item-spec/json-schema/item.json",
}
FOLLOW = {"child", "item", "predecessor-version", "successor-version", "latest-version"}


def _schema_dir() -> Path:
    return Path(str(resources.files("recipes_core.stac") / "schemas"))


def schema_file(uri: str) -> Path | None:
    """The shipped file of a schema URL, or None when we do not ship it."""
    uri = uri.split("#", 1)[0]
    for prefix, folder in URL_ROOTS.items():
        if uri.startswith(prefix):
            path = _schema_dir() / (folder + uri[len(prefix):])
            return path if path.is_file() else None
    return None


def _retrieve(uri: str) -> Resource[Any]:
    path = schema_file(uri)
    if path is None:
        raise NoSuchResource(ref=uri)  # never the network
    return Resource.from_contents(json.loads(path.read_text(encoding="utf-8")))


REGISTRY: Registry[Any] = Registry(retrieve=_retrieve)  # type: ignore[call-arg]


@cache
def _validator(uri: str) -> jsonschema.protocols.Validator:
    schema = _retrieve(uri).contents
    cls = jsonschema.validators.validator_for(schema)
    # Validate against {"$ref": uri} so relative $refs resolve against the URL we looked the
    # schema up by: core v1.1.0's common.json declares a mistyped $id (".../commonjson").
    return cls({"$ref": uri}, registry=REGISTRY, format_checker=cls.FORMAT_CHECKER)


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    schema: str | None = None
    pointer: str = ""

    def __str__(self) -> str:
        where = f" at {self.pointer}" if self.pointer else ""
        against = f" [{self.schema}]" if self.schema else ""
        return f"{self.path}{where}: {self.message}{against}"


@dataclass
class Report:
    checked: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def schema_uris(document: dict[str, Any]) -> list[str]:
    kind = CORE.get(str(document.get("type")))
    uris = []
    if kind:
        uris.append(f"https://schemas.stacspec.org/v{document.get('stac_version')}/{kind}")
    return uris + [str(u) for u in document.get("stac_extensions") or []]


def validate_document(document: Any, path: str = "<document>") -> list[Problem]:
    """Every schema error of one STAC document (an empty list when it is valid)."""
    if not isinstance(document, dict) or document.get("type") not in CORE:
        return [Problem(path, "not a STAC Catalog, Collection or Item (no valid 'type' field)")]
    problems = []
    for uri in schema_uris(document):
        if schema_file(uri) is None:
            problems.append(Problem(path, "no offline copy of this schema; add it under "
                                          "recipes_core/stac/schemas to validate it", uri))
            continue
        try:
            errors = sorted(_validator(uri).iter_errors(document), key=lambda e: list(e.path))
        except Unresolvable as error:
            problems.append(Problem(path, f"schema reference cannot be resolved offline: "
                                          f"{error}", uri))
            continue
        for error in errors:
            pointer, message = _explain(error)
            problems.append(Problem(path, message, uri, pointer or "(top level)"))
    return problems


def _leaves(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    if not error.context:
        return [error]
    return [leaf for sub in error.context for leaf in _leaves(sub)]


def _relevant(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """The failures that explain a ``oneOf``/``anyOf`` error, as a person would pick them.

    Each branch of the choice is one allowed form. Forms meant for another ``type`` (an Item
    form for a Collection, a temporal form for a spatial dimension) are dropped, then the forms
    that got furthest into the document (the deepest failures) are kept.
    """
    if not error.context:
        return [error]
    discriminator = [*error.absolute_path, "type"]
    branches: dict[Any, list[jsonschema.ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)

    def other_type(subs: list[jsonschema.ValidationError]) -> bool:
        return any(list(leaf.absolute_path) == discriminator
                   and leaf.validator in ("const", "enum", "not")
                   for sub in subs for leaf in _leaves(sub))

    kept = [subs for subs in branches.values() if not other_type(subs)] or list(
        branches.values())
    candidates = [[leaf for sub in subs for leaf in _relevant(sub)] for subs in kept]
    depth = max(len(leaf.absolute_path) for leaves in candidates for leaf in leaves)
    return [leaf for leaves in candidates
            if max(len(leaf.absolute_path) for leaf in leaves) == depth for leaf in leaves]


def _explain(error: jsonschema.ValidationError) -> tuple[str, str]:
    """Where and what, for a person: the place all relevant failures share, and their reasons."""
    leaves = _relevant(error)
    paths = [list(leaf.absolute_path) for leaf in leaves]
    common: list[Any] = []
    for parts in zip(*paths, strict=False):
        if any(p != parts[0] for p in parts):
            break
        common.append(parts[0])
    reasons = list(dict.fromkeys(_short(leaf, len(common)) for leaf in leaves))
    if len(reasons) == 1:
        return "/".join(map(str, common)), reasons[0]
    shown = "; ".join(reasons[:4]) + ("; ..." if len(reasons) > 4 else "")
    return "/".join(map(str, common)), f"matches none of the allowed forms ({shown})"


def _short(error: jsonschema.ValidationError, skip: int) -> str:
    """The message, prefixed by the part of its path below the reported place."""
    where = "/".join(map(str, list(error.absolute_path)[skip:]))
    text = error.message if len(error.message) <= 200 else error.message[:197] + "..."
    return f"{where}: {text}" if where else text


def _links(document: dict[str, Any], path: Path) -> Iterator[tuple[str, Path]]:
    for link in document.get("links") or []:
        if not isinstance(link, dict) or link.get("rel") not in FOLLOW:
            continue
        href = str(link.get("href", ""))
        if "://" in href and not href.startswith("file://"):
            continue  # a remote link: not ours to fetch offline
        href = href.removeprefix("file://")
        yield str(link["rel"]), (path.parent / href).resolve()


def validate_catalog(root: str | os.PathLike[str]) -> Report:
    """Validate the catalogue at ``root`` (a catalog.json or its folder) and all it links to.

    Catalogue documents in the folder that no link reaches (the frozen Collection of a
    dataset's current version, say) are validated too.
    """
    report = Report()
    start = Path(catalog_path(root))
    seen: set[Path] = set()
    _walk([start], seen, report)
    unlinked = sorted(
        path.resolve() for name in ("catalog.json", "collection.json")
        for path in start.parent.rglob(name)
        if not any(part.endswith(".zarr") for part in path.parts)
    )
    _walk([p for p in unlinked if p not in seen], seen, report)
    return report


def _walk(queue: list[Path], seen: set[Path], report: Report) -> None:
    """Validate each document of ``queue`` and everything its links lead to."""
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        report.checked.append(str(path))
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            report.problems.append(Problem(str(path), f"cannot be read: {error}"))
            continue
        report.problems.extend(validate_document(document, str(path)))
        if not isinstance(document, dict):
            continue
        for rel, target in _links(document, path):
            if not target.exists():
                report.problems.append(Problem(str(path), f"'{rel}' link to {target}: no such "
                                                          "file"))
            elif target not in seen:
                queue.append(target)
