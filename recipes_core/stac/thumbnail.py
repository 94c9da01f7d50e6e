"""A PNG thumbnail of a dataset: the first time step of its main variable, with a colour bar.

Only one 2-D slice is read (the first index of every non-horizontal dimension), so a thumbnail
of a terabyte store costs one chunk. The image keeps the data's geography: with 1-D coordinates
the axes are longitude/latitude (or x/y) in their units and a descending latitude is drawn with
north up (``origin="upper"``), never upside down.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from recipes_core.stac.axes import Axes
from recipes_core.stac.extents import to_iso

WIDTH_IN, HEIGHT_IN, DPI = 6.4, 3.6, 100


def _slice(ds: xr.Dataset, name: str, axes: Axes) -> tuple[xr.DataArray, str]:
    """The 2-D field to draw and a caption naming the indices taken along other dims."""
    var = ds[name]
    horizontal = [d for d in (axes.y, axes.x) if d in var.dims]
    if len(horizontal) < 2:
        horizontal = [str(d) for d in var.dims[-2:]]
    others = {str(d): 0 for d in var.dims if d not in horizontal}
    field = var.isel(others).transpose(*horizontal)
    captions = []
    for dim in others:
        if dim in ds.coords:
            value = ds[dim].values[0]
            shown = to_iso(value) if dim == axes.t else str(value)
            captions.append(f"{dim}={shown}")
    return field, ", ".join(captions)


def _extent(field: xr.DataArray, lat: xr.DataArray | None = None) -> tuple[list[float] | None,
                                                                            str]:
    """imshow's extent (cell edges) and origin, so that north is up.

    With 1-D numeric coordinates the picture is in their units, and row 0 goes at the top when
    y descends (latitudes 88..-88). Without them (a curvilinear grid), the picture is in index
    space and a 2-D latitude says which way is north.
    """
    ydim, xdim = (str(d) for d in field.dims)
    # Only real coordinates: xarray makes up 0..n-1 for a dimension without one.
    real = dict(field.coords.items())
    coords = [real.get(d) for d in (xdim, ydim)]
    if all(c is not None and c.ndim == 1 and c.size >= 2 and c.dtype.kind in "iuf"
           for c in coords):
        x, y = (np.asarray(c.values, dtype=float) for c in coords)  # type: ignore[union-attr]
        dx, dy = (x[-1] - x[0]) / (x.size - 1), (y[-1] - y[0]) / (y.size - 1)
        origin = "upper" if dy < 0 else "lower"
        edges = (y[0] - dy / 2, y[-1] + dy / 2)
        return [x[0] - dx / 2, x[-1] + dx / 2, min(edges), max(edges)], origin
    if lat is not None and lat.dims == field.dims:
        rows = np.asarray(lat.values, dtype=float)
        return None, "upper" if np.nanmean(rows[0]) > np.nanmean(rows[-1]) else "lower"
    return None, "upper"  # image convention: row 0 at the top


def thumbnail_figure(ds: xr.Dataset, name: str, axes: Axes) -> Any:
    """The thumbnail as a matplotlib Figure: the map, and a colour bar labelled with the
    variable's name and units.

    A plain Figure on the Agg canvas, not pyplot: no backend to pick (a notebook's stays as it
    was), no global figure registry to clean up, and pyplot's import is not paid for.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    field, caption = _slice(ds, name, axes)
    values = np.asarray(field.values, dtype=float)
    lat = ds[axes.lat] if axes.lat and ds[axes.lat].ndim == 2 else None
    extent, origin = _extent(field, lat)
    units = str(ds[name].attrs.get("units", "")).strip()
    long_name = str(ds[name].attrs.get("long_name", name))

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    finite = values[np.isfinite(values)]
    vmin, vmax = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    image = ax.imshow(
        np.ma.masked_invalid(values),
        origin=origin,
        extent=extent,
        aspect="auto" if extent is None else "equal",
        cmap="viridis",
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
    )
    ax.set_facecolor("#d9d9d9")  # missing values (land, for an ocean field) in grey
    colorbar = fig.colorbar(image, ax=ax, shrink=0.9, extend="both")
    colorbar.set_label(f"{name} [{units}]" if units else name)
    ydim, xdim = (str(d) for d in field.dims)
    ax.set_xlabel(xdim)
    ax.set_ylabel(ydim)
    ax.set_title(f"{long_name}\n{caption}" if caption else long_name, fontsize=9)
    return fig


def render_thumbnail(ds: xr.Dataset, name: str, axes: Axes, path: str | os.PathLike[str]) -> Path:
    """Draw ``name`` into ``path`` (PNG) and return the path."""
    fig = thumbnail_figure(ds, name, axes)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return Path(path)
