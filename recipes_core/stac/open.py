"""Open a catalogued dataset in one line: ``recipes_core.open_dataset("T/catalog.json", id)``.

It reads the catalogue with pystac and opens the Collection's Zarr asset with exactly the
arguments the asset advertises (``xarray:open_kwargs``, ``xarray:storage_options``), so it opens
what any STAC client would, and a caller's keyword arguments override them.

Hrefs in the catalogue are relative (so it can be copied or served from anywhere); the
Collections returned here have absolute asset hrefs (pystac's ``make_asset_hrefs_absolute``),
so ``asset.href`` opens from any working directory, and so does ``xr.open_dataset(asset)`` with
xpystac. A catalogue on an object store (``s3://``, ``gs://``) is read through fsspec.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import fsspec
import pystac
import xarray as xr
from pystac.stac_io import DefaultStacIO

from recipes_core.stac.assets import ZARR_ASSET, ZARR_MEDIA_TYPE
from recipes_core.stac.errors import CatalogError
from recipes_core.storage.files import is_remote

CATALOG_FILE = "catalog.json"


def catalog_path(path: str | os.PathLike[str]) -> str:
    """A catalogue file from a file or a target-root folder (which holds ``catalog.json``)."""
    text = os.fspath(path)
    if "://" in text:
        return text
    candidate = Path(text)
    if candidate.is_dir():
        candidate = candidate / CATALOG_FILE
    if not candidate.exists():
        raise CatalogError(
            "no STAC catalogue here",
            where=str(candidate),
            fix="pass the catalog.json of a target root (or the folder that holds it); a bake "
            "writes it when it completes.",
        )
    return str(candidate.resolve())


class FsspecStacIO(DefaultStacIO):
    """pystac's I/O, reading and writing object-store URLs (``s3://``, ``gs://``) through fsspec
    with the given storage options; http(s) and local paths as pystac does."""

    def __init__(self, storage_options: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.storage_options = dict(storage_options or {})

    def read_text_from_href(self, href: str) -> str:
        if not _fsspec_url(href):
            return super().read_text_from_href(href)
        with fsspec.open(href, "r", encoding="utf-8", **self.storage_options) as f:
            return str(f.read())

    def write_text_to_href(self, href: str, txt: str) -> None:
        if not _fsspec_url(href):
            return super().write_text_to_href(href, txt)
        with fsspec.open(href, "w", encoding="utf-8", **self.storage_options) as f:
            f.write(txt)


def _fsspec_url(href: str) -> bool:
    return is_remote(href) and not href.startswith(("http://", "https://"))


def open_catalog(path: str | os.PathLike[str],
                 storage_options: dict[str, Any] | None = None) -> pystac.Catalog:
    """The catalogue at ``path`` (a file, a target-root folder or a URL); ``storage_options``
    reach a catalogue on an object store."""
    href = catalog_path(path)
    try:
        return pystac.Catalog.from_file(href, stac_io=FsspecStacIO(storage_options))
    except Exception as error:
        raise CatalogError(
            f"the catalogue cannot be read ({type(error).__name__}: {error})",
            where=href,
            fix="run `arco catalog validate` on it to see what is wrong.",
        ) from None


def find_collection(catalog: pystac.Catalog, dataset_id: str) -> pystac.Collection:
    """The dataset's Collection, with absolute asset hrefs (see the module's note)."""
    child = catalog.get_child(dataset_id)
    if not isinstance(child, pystac.Collection):
        known = sorted(c.id for c in catalog.get_children())
        raise CatalogError(
            f"no dataset '{dataset_id}' in the catalogue",
            where=catalog.get_self_href(),
            fix=f"use one of: {', '.join(known)}." if known else "the catalogue is empty.",
        )
    child.make_asset_hrefs_absolute()
    return child


def zarr_asset(collection: pystac.Collection) -> pystac.Asset:
    """The Collection's Zarr store: the ``zarr`` asset, else any asset typed as Zarr data."""
    asset = collection.assets.get(ZARR_ASSET)
    if asset is None:
        asset = next(
            (a for a in collection.assets.values()
             if a.media_type == ZARR_MEDIA_TYPE and "data" in (a.roles or [])),
            None,
        )
    if asset is None:
        raise CatalogError(
            "the dataset has no Zarr asset",
            where=collection.get_self_href(),
            fix="re-bake the dataset to republish its Collection.",
        )
    return asset


def open_kwargs(asset: pystac.Asset) -> dict[str, Any]:
    kwargs = dict(asset.extra_fields.get("xarray:open_kwargs") or {"engine": "zarr"})
    storage_options = asset.extra_fields.get("xarray:storage_options")
    if storage_options:
        kwargs["storage_options"] = storage_options
    return kwargs


def open_dataset(
    catalog: str | os.PathLike[str], dataset_id: str, *,
    catalog_storage_options: dict[str, Any] | None = None, **kwargs: Any
) -> xr.Dataset:
    """The dataset ``dataset_id`` of a catalogue, lazily opened with xarray.

    ``catalog_storage_options`` reach a catalogue on an object store; the store itself is
    opened with the asset's ``xarray:storage_options`` unless ``storage_options`` is given.
    """
    collection = find_collection(open_catalog(catalog, catalog_storage_options), dataset_id)
    asset = zarr_asset(collection)
    href = asset.get_absolute_href() or asset.href
    return xr.open_dataset(href, **{**open_kwargs(asset), **kwargs})
