"""Open a catalogued dataset in one line: ``recipes_core.open_dataset("T/catalog.json", id)``.

It reads the catalogue with pystac and opens the Collection's Zarr asset with exactly the
arguments the asset advertises (``xarray:open_kwargs``, ``xarray:storage_options``), so it opens
what any STAC client would, and a caller's keyword arguments override them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pystac
import xarray as xr

from recipes_core.stac.assets import ZARR_ASSET, ZARR_MEDIA_TYPE
from recipes_core.stac.errors import CatalogError

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


def open_catalog(path: str | os.PathLike[str]) -> pystac.Catalog:
    href = catalog_path(path)
    try:
        return pystac.Catalog.from_file(href)
    except Exception as error:
        raise CatalogError(
            f"the catalogue cannot be read ({type(error).__name__}: {error})",
            where=href,
            fix="run `arco catalog validate` on it to see what is wrong.",
        ) from None


def find_collection(catalog: pystac.Catalog, dataset_id: str) -> pystac.Collection:
    child = catalog.get_child(dataset_id)
    if not isinstance(child, pystac.Collection):
        known = sorted(c.id for c in catalog.get_children())
        raise CatalogError(
            f"no dataset '{dataset_id}' in the catalogue",
            where=catalog.get_self_href(),
            fix=f"use one of: {', '.join(known)}." if known else "the catalogue is empty.",
        )
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
    catalog: str | os.PathLike[str], dataset_id: str, **kwargs: Any
) -> xr.Dataset:
    """The dataset ``dataset_id`` of a catalogue, lazily opened with xarray."""
    collection = find_collection(open_catalog(catalog), dataset_id)
    asset = zarr_asset(collection)
    href = asset.get_absolute_href() or asset.href
    return xr.open_dataset(href, **{**open_kwargs(asset), **kwargs})
