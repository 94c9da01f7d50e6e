"""The assets and links of a dataset's Collection: the Zarr store, thumbnail, provenance, recipe.

Every href is relative to the Collection's own file, so a catalogue can be copied or served from
anywhere (a self-contained catalogue). The Zarr asset is what a user opens; it says how to, in
the fields each tool reads:

* ``type: application/vnd.zarr`` without a ``version=`` parameter (xpystac 0.5 compares the
  media type as a plain string and gives up on anything else),
* roles ``data`` and ``zarr``,
* the zarr extension (``zarr:zarr_format``, ``zarr:consolidated``, ``zarr:node_type``),
* the xarray-assets extension (``xarray:open_kwargs``, and ``xarray:storage_options`` only when
  the store needs credentials or options to reach), so that
  ``xr.open_dataset(asset.href, **asset.extra_fields["xarray:open_kwargs"])`` works as is,
* and a ``rel: store`` link to the same place, for clients that read links rather than assets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pystac
from pystac.extensions.xarray_assets import XarrayAssetsExtension

from recipes_core.model import Recipe
from recipes_core.stac.extensions import ProcessingExtension, ZarrExtension

ZARR_MEDIA_TYPE = "application/vnd.zarr"
YAML_MEDIA_TYPE = "application/yaml"
ZARR_ASSET = "zarr"
THUMBNAIL_ASSET = "thumbnail"
PROVENANCE_ASSET = "provenance"


@dataclass(frozen=True)
class Processing:
    """The processing-extension summary of a bake (from its provenance record)."""

    software: dict[str, str]
    datetime: str
    lineage: str
    level: str | None = None

    def apply_to(self, target: pystac.Asset) -> None:
        ext = ProcessingExtension.ext(target, add_if_missing=True)
        ext.software = self.software
        ext.datetime = self.datetime
        ext.lineage = self.lineage
        ext.level = self.level


def add_zarr_asset(
    collection: pystac.Collection,
    href: str,
    *,
    zarr_format: int,
    title: str,
    storage_options: dict[str, Any] | None = None,
) -> pystac.Asset:
    asset = pystac.Asset(
        href=href,
        media_type=ZARR_MEDIA_TYPE,
        title=title,
        roles=["data", "zarr"],
        description="Consolidated Zarr store: open with xarray (engine='zarr').",
    )
    collection.add_asset(ZARR_ASSET, asset)
    zarr_ext = ZarrExtension.ext(asset, add_if_missing=True)
    zarr_ext.zarr_format = zarr_format
    zarr_ext.consolidated = True  # every bake consolidates its store before publishing
    zarr_ext.node_type = "group"
    xarray_ext = XarrayAssetsExtension.ext(asset, add_if_missing=True)
    # chunks={} opens lazily with dask along the store's own chunks.
    xarray_ext.open_kwargs = {"engine": "zarr", "consolidated": True, "chunks": {}}
    xarray_ext.storage_options = storage_options or None
    collection.add_link(
        pystac.Link(rel="store", target=href, media_type=ZARR_MEDIA_TYPE, title="Zarr store")
    )
    return asset


def add_thumbnail_asset(collection: pystac.Collection, href: str, variable: str) -> pystac.Asset:
    asset = pystac.Asset(
        href=href,
        media_type=pystac.MediaType.PNG,
        title=f"{variable}, first time step",
        roles=["thumbnail"],
    )
    collection.add_asset(THUMBNAIL_ASSET, asset)
    return asset


def add_provenance_asset(
    collection: pystac.Collection, href: str, processing: Processing
) -> pystac.Asset:
    asset = pystac.Asset(
        href=href,
        media_type=pystac.MediaType.JSON,
        title="Provenance of this bake (W3C PROV-JSON)",
        description="Sources with their checksums, the recipe and plan hashes, the software "
        "versions, the runner, and the start and end of the bake.",
        roles=["metadata", "provenance"],
    )
    collection.add_asset(PROVENANCE_ASSET, asset)
    processing.apply_to(asset)
    return asset


def add_recipe_link(collection: pystac.Collection, href: str) -> None:
    collection.add_link(
        pystac.Link(rel="via", target=href, media_type=YAML_MEDIA_TYPE,
                    title="The recipe that produced this store")
    )


def stac_license(recipe: Recipe) -> str:
    """STAC's ``license``: one SPDX identifier as is; an expression or a custom licence "other".

    STAC 1.1 allows a single identifier only (no spaces), so expressions such as
    ``MIT OR Apache-2.0`` are written as "other" with one link per licence.
    """
    text = recipe.license.strip()
    return text if " " not in text else "other"


def add_license_links(collection: pystac.Collection, recipe: Recipe) -> None:
    """Links to the licence text(s): SPDX pages, or the licensor's page for "other"."""
    ids = [t for t in recipe.license.split() if t not in ("AND", "OR", "WITH")]
    for spdx in ids:
        if spdx.lower() == "other":
            continue
        collection.add_link(
            pystac.Link(rel="license", target=f"https://spdx.org/licenses/{spdx}.html",
                        media_type=pystac.MediaType.HTML, title=f"{spdx} (SPDX)")
        )
    if ids and all(t.lower() == "other" for t in ids):
        licensors = [p for p in recipe.providers if "licensor" in p.roles and p.url] or [
            p for p in recipe.providers if p.url
        ]
        if licensors:
            collection.add_link(
                pystac.Link(rel="license", target=str(licensors[0].url),
                            media_type=pystac.MediaType.HTML,
                            title=f"Licence terms of {licensors[0].name}")
            )


def providers(recipe: Recipe) -> list[pystac.Provider]:
    return [
        pystac.Provider(
            name=p.name,
            roles=[pystac.ProviderRole(r) for r in p.roles] or None,
            url=str(p.url) if p.url else None,
            description=p.description,
        )
        for p in recipe.providers
    ]
