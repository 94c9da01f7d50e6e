"""Publishing into an object-store target (``s3://``, ``gs://``): a local mirror, then upload.

The catalogue code works on files, so it runs unchanged on a temporary local mirror of the
target root holding just what publishing reads: the root ``catalog.json``, every child
Collection (the page lists them all), and the dataset's version folders' ``bake.json``,
``collection.json`` and the ``sources.json`` provenance needs (this version's, and the one it
revises). The store itself is described by opening it where it is, through fsspec. Then every
file written is uploaded, version files first and the root catalogue last, so a reader never
finds a link to a file not yet there. Hrefs are relative, so the uploaded catalogue is the same
as a local one.

An object store has no lock: two bakes publishing into one root at the same moment could each
rewrite ``catalog.json`` without the other's entry; re-running either bake restores it.
"""

from __future__ import annotations

import json
import posixpath
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs

from recipes_core.plan.plan import Plan
from recipes_core.stac.catalog import COLLECTION_FILE, Published, publish_local
from recipes_core.stac.errors import CatalogError
from recipes_core.stac.open import CATALOG_FILE

VERSION = re.compile(r"^v(\d+)$")
THUMBNAIL = "thumbnail.png"


def _fetch(fs: AbstractFileSystem, root: str, mirror: Path, relative: str) -> bool:
    """Copy ``root/relative`` into the mirror, if it exists; whether it did."""
    relative = posixpath.normpath(relative)
    if relative.startswith(".."):
        return False  # a link out of the root: nothing publishing needs
    local = mirror / relative
    local.parent.mkdir(parents=True, exist_ok=True)
    try:
        fs.get_file(f"{root}/{relative}", str(local))
    except FileNotFoundError:
        return False
    return True


def _children(mirror: Path) -> list[str]:
    """The relative hrefs of the root catalogue's child Collections."""
    try:
        links = json.loads((mirror / CATALOG_FILE).read_text(encoding="utf-8")).get("links", [])
    except (OSError, ValueError, AttributeError):
        return []  # unreadable: open_or_create_catalog says so with the file named
    return [str(link["href"]) for link in links
            if isinstance(link, dict) and link.get("rel") == "child"
            and "://" not in str(link.get("href", "")) and link.get("href")]


def mirror_target(fs: AbstractFileSystem, root: str, mirror: Path, dataset: str,
                  version: int, revises: int | None) -> None:
    """Download what publishing into ``root`` reads (see the module's note)."""
    if _fetch(fs, root, mirror, CATALOG_FILE):
        for href in _children(mirror):
            _fetch(fs, root, mirror, href)
    _fetch(fs, root, mirror, f"{dataset}/{COLLECTION_FILE}")
    try:
        names = [posixpath.basename(p.rstrip("/")) for p in fs.ls(f"{root}/{dataset}",
                                                                   detail=False)]
    except FileNotFoundError:
        names = []
    for name in names:
        if VERSION.match(name):
            _fetch(fs, root, mirror, f"{dataset}/{name}/bake.json")
            _fetch(fs, root, mirror, f"{dataset}/{name}/{COLLECTION_FILE}")
    for number in {version, revises} - {None}:
        _fetch(fs, root, mirror, f"{dataset}/v{number}/sources.json")


def publish_remote(
    plan: Plan,
    target_root: str,
    version: int,
    version_dir: str,
    store: str,
    state: dict[str, Any],
    pipeline_args: Sequence[str] = (),
    storage_options: dict[str, Any] | None = None,
) -> Published:
    """Publish a complete bake whose target root is on an object store."""
    fs, root = url_to_fs(target_root)
    root = root.rstrip("/")
    _, version_path = url_to_fs(version_dir)
    relative = posixpath.relpath(version_path.rstrip("/"), root)  # <id>/v<N>
    if relative.startswith(".."):
        raise CatalogError("the version folder is not inside the target root",
                           where=version_dir, fix=f"bake into {target_root} again.")
    dataset = posixpath.dirname(relative)
    revises = state.get("revises") if isinstance(state.get("revises"), int) else None
    with tempfile.TemporaryDirectory(prefix="arco-catalog-") as tmp:
        mirror = Path(tmp) / "root"
        mirror.mkdir()
        mirror_target(fs, root, mirror, dataset, version, revises)
        local_version = mirror / relative
        local_version.mkdir(parents=True, exist_ok=True)
        published = publish_local(
            plan, mirror, version, local_version, local_version / posixpath.basename(store),
            state, pipeline_args, open_store=store, storage_options=storage_options or None)
        # Version files first, the dataset's Collection next, the root catalogue and page last.
        order = [f"{relative}/{name}" for name in ("recipe.yaml", "provenance.json", THUMBNAIL,
                                                   COLLECTION_FILE)]
        order += [f"{dataset}/{THUMBNAIL}", f"{dataset}/{COLLECTION_FILE}", CATALOG_FILE,
                  "index.html"]
        mirror = mirror.resolve()
        for name in order:
            if (mirror / name).is_file():
                fs.put_file(str(mirror / name), f"{root}/{name}")

    def url(path: Path | str | None) -> str | None:
        if path is None:
            return None
        return f"{target_root.rstrip('/')}/{Path(path).relative_to(mirror).as_posix()}"

    return Published(
        catalog=str(url(published.catalog)), collection=str(url(published.collection)),
        version_collection=str(url(published.version_collection)),
        page=str(url(published.page)), provenance=str(url(published.provenance)),
        thumbnail=url(published.thumbnail),
    )
