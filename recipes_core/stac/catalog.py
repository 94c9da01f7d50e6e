"""Publish a finished bake: the recipe copy, provenance, thumbnail, Collection, root Catalog, page.

Layout of a target root after publishing (DESIGN §5)::

    <root>/catalog.json                   root Catalog: one child link per dataset
    <root>/index.html                     the browsable page (see :mod:`.page`)
    <root>/<id>/collection.json           the dataset's current Collection (its latest bake)
    <root>/<id>/thumbnail.png
    <root>/<id>/v<N>/<id>.zarr            the store
    <root>/<id>/v<N>/collection.json      the Collection as published for version N (kept)
    <root>/<id>/v<N>/recipe.yaml          the recipe (``via`` link)
    <root>/<id>/v<N>/provenance.json      W3C PROV-JSON (``provenance`` asset)
    <root>/<id>/v<N>/thumbnail.png

:func:`publish` is the last step of a bake and runs only after the store is complete, so the
catalogue never points at a half-written store (DESIGN §6, promise 4). On an object-store
target (``s3://``, ``gs://``) the same files are built in a local mirror and uploaded (see
:mod:`.remote`); hrefs are relative either way. Earlier versions stay
findable through the version extension: each Collection has ``version`` and a
``predecessor-version`` link to the previous version's frozen Collection, and each frozen one a
``latest-version`` link back to the current one. Re-publishing a dataset replaces its child link
in the root catalog, so it is never listed twice; other datasets in the root are not touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pystac
import yaml
from pystac.extensions.version import VersionExtension

from recipes_core.plan.plan import Plan
from recipes_core.redact import redact_recipe
from recipes_core.stac.collection import StoreView, VersionFiles, build_collection, describe_store
from recipes_core.stac.datacube import main_variable
from recipes_core.stac.errors import CatalogError
from recipes_core.stac.open import CATALOG_FILE
from recipes_core.stac.page import write_page
from recipes_core.stac.provenance import BakeFacts, processing_summary, write_provenance
from recipes_core.storage.files import is_remote

log = logging.getLogger(__name__)

COLLECTION_FILE = "collection.json"
CATALOG_ID = "arco-catalog"
CATALOG_TITLE = "Analysis-ready datasets"
CATALOG_DESCRIPTION = (
    "Analysis-ready, cloud-optimised Zarr stores baked from declarative recipes by arco-recipes."
)


@dataclass(frozen=True)
class Published:
    """Where the published files are: local paths, or URLs on an object-store target."""

    catalog: Path | str
    collection: Path | str
    version_collection: Path | str
    page: Path | str
    provenance: Path | str
    thumbnail: Path | str | None


def write_recipe_copy(plan: Plan, version_dir: Path) -> Path:
    """The recipe as compiled, beside the data, so a bake can be read and repeated later."""
    path = version_dir / "recipe.yaml"
    body = yaml.safe_dump(
        redact_recipe(plan.recipe.model_dump(mode="json", by_alias=True, exclude_defaults=False)),
        sort_keys=False,
        allow_unicode=True,
    )
    header = (
        f"# The recipe of {plan.id} v{version_dir.name.lstrip('v')}, as arco compiled it.\n"
        "# Relative source paths resolved against the original recipe file's folder.\n"
    )
    path.write_text(header + body, encoding="utf-8")
    return path


@contextlib.contextmanager
def catalog_lock(root: Path) -> Iterator[None]:
    """One publisher at a time per target root: the root catalog is read, changed, rewritten."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".catalog.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def open_or_create_catalog(root: Path) -> pystac.Catalog:
    path = root / CATALOG_FILE
    if path.exists():
        try:
            catalog = pystac.Catalog.from_file(str(path))
        except Exception as error:
            raise CatalogError(
                f"the root catalog cannot be read ({type(error).__name__}: {error})",
                where=str(path),
                fix="repair or delete it; the next bake of each dataset re-adds its entry.",
            ) from None
    else:
        catalog = pystac.Catalog(id=CATALOG_ID, title=CATALOG_TITLE,
                                 description=CATALOG_DESCRIPTION)
    catalog.set_self_href(str(path))
    catalog.catalog_type = pystac.CatalogType.SELF_CONTAINED
    return catalog


def _version_collection(dataset_dir: Path, version: int) -> Path:
    return dataset_dir / f"v{version}" / COLLECTION_FILE


def previous_version(dataset_dir: Path, version: int) -> int | None:
    """The latest complete, published version before ``version``, if any."""
    from recipes_core.bake import VERSION_DIR, read_state

    found = []
    for entry in dataset_dir.iterdir() if dataset_dir.is_dir() else ():
        match = VERSION_DIR.match(entry.name)
        if not match or int(match.group(1)) >= version:
            continue
        state = read_state(str(entry))
        if state and state.get("status") == "complete" and (entry / COLLECTION_FILE).exists():
            found.append(int(match.group(1)))
    return max(found, default=None)


def _draw_thumbnail(view: StoreView, plan: Plan, version_dir: Path) -> tuple[Path | None,
                                                                            str | None, str | None]:
    """(path, variable, note): a thumbnail is a nicety, so failing to draw one is a note."""
    from recipes_core.stac.thumbnail import render_thumbnail

    variable = main_variable(view.ds, plan.recipe.catalog.thumbnail_variable)
    if variable is None:
        return None, None, "no numeric data variable with two or more dimensions to draw"
    try:
        path = render_thumbnail(view.ds, variable, view.axes, version_dir / "thumbnail.png")
    except Exception as error:  # a drawing problem must not unpublish complete data
        log.warning("could not draw the thumbnail of %s: %s", plan.id, error)
        return None, None, f"the thumbnail could not be drawn ({type(error).__name__}: {error})"
    return path, variable, None


def _replace_child(catalog: pystac.Catalog, collection: pystac.Collection, href: Path) -> None:
    """Put ``collection`` in place of any child at the same href, keeping children sorted.

    Children are matched by where they live, not by opening them, so one unreadable sibling
    cannot stop another dataset from publishing.
    """
    target = str(href.resolve())
    catalog.links = [
        link for link in catalog.links
        if not (link.rel == pystac.RelType.CHILD
                and str(Path(link.get_absolute_href() or "").resolve()) == target)
    ]
    catalog.add_child(collection, title=collection.title)
    collection.set_self_href(str(href))
    children = sorted(
        (link for link in catalog.links if link.rel == pystac.RelType.CHILD),
        key=lambda link: link.get_absolute_href() or "",
    )
    catalog.links = [link for link in catalog.links if link.rel != pystac.RelType.CHILD]
    catalog.links.extend(children)


def publish(
    plan: Plan,
    target_root: str | os.PathLike[str],
    version: int,
    version_dir: str | os.PathLike[str],
    store: str | os.PathLike[str],
    state: dict[str, Any],
    pipeline_args: Sequence[str] = (),
    storage_options: dict[str, Any] | None = None,
) -> Published:
    """Publish a complete bake into the target root's catalogue. The last step of a bake.

    ``storage_options`` (the runner profile's ``catalog_storage_options``) become the Zarr
    asset's ``xarray:storage_options`` when the target is on an object store; local stores
    need none, so the field is left out there.
    """
    if state.get("status") != "complete":
        raise CatalogError(
            f"refusing to publish a bake whose status is {state.get('status')!r}",
            where=os.path.join(os.fspath(version_dir), "bake.json"),
            fix="publish only after the bake completed; re-run the bake to complete it.",
        )
    if is_remote(os.fspath(target_root)):
        from recipes_core.stac.remote import publish_remote

        return publish_remote(plan, os.fspath(target_root), version, os.fspath(version_dir),
                              os.fspath(store), state, pipeline_args, storage_options)
    return publish_local(plan, Path(target_root), version, Path(version_dir), Path(store),
                         state, pipeline_args)


def publish_local(
    plan: Plan,
    root: Path,
    version: int,
    version_dir: Path,
    store: Path,
    state: dict[str, Any],
    pipeline_args: Sequence[str] = (),
    *,
    open_store: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Published:
    """Publish into a local root. ``open_store`` is where the store is read when it is not at
    ``store`` (which then only places hrefs: a local mirror of an object-store target)."""
    root = root.resolve()
    version_dir = version_dir.resolve()
    dataset_dir = version_dir.parent
    store = store.resolve()
    recipe_copy = write_recipe_copy(plan, version_dir)
    provenance, document = write_provenance(
        BakeFacts(plan, version, version_dir, store, dict(state), tuple(pipeline_args),
                  recipe_copy)
    )
    view = describe_store(open_store or store)
    try:
        level = view.ds.attrs.get("processing_level") or plan.recipe.catalog.extra_fields.get(
            "processing:level")
        processing = processing_summary(document, str(level) if level else None)
        thumbnail, variable, note = _draw_thumbnail(view, plan, version_dir)
        files = VersionFiles(store=store, provenance=provenance, recipe=recipe_copy,
                             thumbnail=thumbnail, thumbnail_variable=variable,
                             notes=(note,) if note else (), storage_options=storage_options)
        # The same description twice: frozen in the version folder, and as the current one.
        frozen_path = _version_collection(dataset_dir, version)
        frozen = build_collection(view, plan.recipe, files, processing,
                                  base_dir=frozen_path.parent)
        frozen.set_self_href(str(frozen_path))
        collection_path = dataset_dir / COLLECTION_FILE
        current_thumbnail = dataset_dir / "thumbnail.png" if thumbnail else None
        current = build_collection(view, plan.recipe,
                                   replace(files, thumbnail=current_thumbnail), processing,
                                   base_dir=dataset_dir)
    finally:
        view.ds.close()

    with catalog_lock(root):
        if thumbnail is not None and current_thumbnail is not None:
            shutil.copyfile(thumbnail, current_thumbnail)
        catalog = open_or_create_catalog(root)
        _replace_child(catalog, current, collection_path)
        _link_versions(current, frozen, version, dataset_dir)
        frozen.save_object(include_self_link=False)
        current.save_object(include_self_link=False)
        catalog.save_object(include_self_link=False)
        page = write_page(root)
    return Published(catalog=root / CATALOG_FILE, collection=collection_path,
                     version_collection=frozen_path, page=page, provenance=provenance,
                     thumbnail=current_thumbnail)


def _link_versions(current: pystac.Collection, frozen: pystac.Collection, version: int,
                   dataset_dir: Path) -> None:
    """``version`` on both; ``latest-version`` from the frozen copy to the current Collection;
    ``predecessor-version`` from both to the previous version's frozen Collection."""
    previous = previous_version(dataset_dir, version)
    predecessor = None
    if previous is not None:
        predecessor = pystac.Collection.from_file(str(_version_collection(dataset_dir, previous)))
    for collection in (current, frozen):
        ext = VersionExtension.ext(collection, add_if_missing=True)
        ext.version = str(version)
        if predecessor is not None:
            ext.predecessor = predecessor
    VersionExtension.ext(frozen).latest = current
    frozen.set_root(current.get_root())
