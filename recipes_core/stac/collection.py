"""One dataset's STAC Collection, built from its baked store and its recipe.

:func:`describe_store` reads what the catalogue says about a store once (coordinates and
metadata only, never the data); :func:`build_collection` turns that and the recipe into a
``pystac.Collection`` whose hrefs are relative to wherever it will be saved, so the same
description is written both as the dataset's current Collection and as the frozen copy kept in
its version directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pystac
import xarray as xr
import zarr
from pystac.utils import str_to_datetime

from recipes_core.model import Recipe
from recipes_core.stac.assets import (
    Processing,
    add_license_links,
    add_provenance_asset,
    add_recipe_link,
    add_thumbnail_asset,
    add_zarr_asset,
    providers,
    stac_license,
)
from recipes_core.stac.axes import Axes, find_axes
from recipes_core.stac.datacube import apply_datacube
from recipes_core.stac.extents import SpatialExtent, spatial_extent, temporal_extent
from recipes_core.stac.jsonvalue import json_value

NOTES_FIELD = "arco:notes"


@dataclass(frozen=True, eq=False)
class StoreView:
    """A lazily opened store and what the catalogue computes from it."""

    ds: xr.Dataset
    axes: Axes
    spatial: SpatialExtent
    temporal: tuple[str | None, str | None]
    zarr_format: int


def describe_store(store: str | os.PathLike[str]) -> StoreView:
    """Open ``store`` (a path or an fsspec URL) lazily and compute its extents. Reads
    coordinates, never the data."""
    ds = xr.open_dataset(store, engine="zarr", consolidated=True, chunks=None)
    axes = find_axes(ds)
    zarr_format = zarr.open_group(store, mode="r").metadata.zarr_format
    return StoreView(
        ds=ds,
        axes=axes,
        spatial=spatial_extent(ds, axes),
        temporal=temporal_extent(ds, axes),
        zarr_format=int(zarr_format),
    )


@dataclass(frozen=True)
class VersionFiles:
    """Absolute paths of one bake's published files (``thumbnail`` is None when not drawn)."""

    store: Path
    provenance: Path
    recipe: Path
    thumbnail: Path | None = None
    thumbnail_variable: str | None = None
    notes: tuple[str, ...] = field(default=())
    storage_options: dict[str, Any] | None = None  # the Zarr asset's xarray:storage_options


def _href(path: Path, base_dir: Path) -> str:
    return Path(os.path.relpath(path, base_dir)).as_posix()


def build_collection(
    view: StoreView,
    recipe: Recipe,
    files: VersionFiles,
    processing: Processing,
    *,
    base_dir: Path,
) -> pystac.Collection:
    """The Collection of one baked version, with hrefs relative to ``base_dir``."""
    start, end = view.temporal
    extent = pystac.Extent(
        spatial=pystac.SpatialExtent([list(view.spatial.bbox)]),
        temporal=pystac.TemporalExtent(
            [[str_to_datetime(start) if start else None, str_to_datetime(end) if end else None]]
        ),
    )
    collection = pystac.Collection(
        id=recipe.id,
        title=recipe.title,
        description=recipe.description,
        extent=extent,
        license=stac_license(recipe),
        keywords=list(recipe.keywords) or None,
        providers=providers(recipe) or None,
        extra_fields=json_value(dict(recipe.catalog.extra_fields)),
    )
    add_license_links(collection, recipe)
    apply_datacube(collection, view.ds, view.axes, view.spatial)
    asset = add_zarr_asset(
        collection,
        _href(files.store, base_dir),
        zarr_format=view.zarr_format,
        title=f"{recipe.title} (Zarr v{view.zarr_format})",
        storage_options=files.storage_options,
    )
    processing.apply_to(asset)
    add_provenance_asset(collection, _href(files.provenance, base_dir), processing)
    if files.thumbnail is not None and files.thumbnail_variable:
        add_thumbnail_asset(collection, _href(files.thumbnail, base_dir), files.thumbnail_variable)
    add_recipe_link(collection, _href(files.recipe, base_dir))
    notes = [n for n in (view.spatial.note, *files.notes) if n]
    if notes:
        # Said in the catalogue itself, so a reader knows which parts are a fallback.
        collection.extra_fields[NOTES_FIELD] = notes
    return collection
