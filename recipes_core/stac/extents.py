"""Extents computed from the data: a WGS84 bounding box, a time interval, and regular steps.

Choices (they are what ``arco`` promises about a catalogue's extents):

* **Cells, not centres, in space.** Gridded values describe cells. When a coordinate names a
  CF ``bounds`` variable we use its outermost values; otherwise each edge extends half the
  neighbouring spacing beyond the outermost centre (CF's default reading of a coordinate as cell
  centres). ERSST's centres 88..-88 every 2 degrees thus give latitudes -89..89, as its own
  ``geospatial_lat_min/max`` attributes say. Latitudes are clipped to [-90, 90]. 2-D
  (curvilinear) coordinates without bounds use the extreme centres: their cells have no single
  spacing to extend by.
* **Longitudes in -180..180.** 0..360 longitudes are wrapped. The box spans the smallest arc that
  holds every cell edge, so a grid that covers the globe becomes [-180, 180] and a Pacific grid
  (say 100..260 east) becomes the antimeridian-crossing box [100, ..., -100, ...] that STAC
  prescribes (west > east).
* **Labels, not cells, in time.** The temporal extent runs from the first to the last time label
  (a monthly mean labelled 2020-08-01 ends the interval at 2020-08-01T00:00:00Z), because that
  is what a user selects on with ``ds.sel(time=...)``.
* **No position at all** (no latitude/longitude and no usable grid mapping) gives the whole
  world and a note, rather than a wrong box.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import xarray as xr

from recipes_core.stac.axes import Axes

WORLD = (-180.0, -90.0, 180.0, 90.0)


@dataclass(frozen=True)
class SpatialExtent:
    """A WGS84 box, the reference system of the x/y dimensions, and a note when we guessed."""

    bbox: tuple[float, float, float, float]
    reference_system: int | str | None = 4326
    note: str | None = None


# ---- space -----------------------------------------------------------------------------------
def cell_edges(values: np.ndarray) -> np.ndarray:
    """The two outer cell edges of 1-D centres: half the neighbouring spacing beyond each end."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return values[:1].copy()
    first = values[0] - (values[1] - values[0]) / 2
    last = values[-1] + (values[-1] - values[-2]) / 2
    return np.array([first, last])


def _outer_values(ds: xr.Dataset, name: str) -> np.ndarray:
    """Values that bound a coordinate's cells: its CF bounds, or its centres and edges."""
    var = ds[name]
    bounds = var.attrs.get("bounds") or var.encoding.get("bounds")
    if bounds and bounds in ds.variables:
        return np.asarray(ds[bounds].values, dtype=float).ravel()
    values = np.asarray(var.values, dtype=float)
    if values.ndim == 1:
        return np.concatenate([values, cell_edges(values)])
    return values.ravel()


def wrap_longitude(lon: np.ndarray) -> np.ndarray:
    """Longitudes into [-180, 180): 0..360 grids, and any other multiple turns, alike."""
    return (np.asarray(lon, dtype=float) + 180.0) % 360.0 - 180.0


def longitude_range(lons: np.ndarray) -> tuple[float, float]:
    """West and east of the smallest arc holding every longitude (west > east: antimeridian).

    The arc leaves out the largest gap between neighbouring longitudes. When no gap stands out
    (none wider than twice the typical spacing) the longitudes go all the way round.
    """
    unique = np.unique(wrap_longitude(lons[np.isfinite(lons)]))
    if unique.size == 0:
        return WORLD[0], WORLD[2]
    if unique.size == 1:
        return float(unique[0]), float(unique[0])
    gaps = np.diff(np.concatenate([unique, [unique[0] + 360.0]]))
    widest = int(np.argmax(gaps))
    if gaps[widest] <= 2 * np.median(gaps):
        return WORLD[0], WORLD[2]
    return float(unique[(widest + 1) % unique.size]), float(unique[widest])


def bbox_from_lonlat(lons: np.ndarray, lats: np.ndarray) -> tuple[float, float, float, float]:
    lats = np.asarray(lats, dtype=float)
    lats = lats[np.isfinite(lats)]
    if lats.size == 0:
        return WORLD
    west, east = longitude_range(np.asarray(lons, dtype=float))
    south = max(float(lats.min()), -90.0)
    north = min(float(lats.max()), 90.0)
    return (west, south, east, north)


def spatial_extent(ds: xr.Dataset, axes: Axes) -> SpatialExtent:
    """The WGS84 box of ``ds`` (see the module docstring for how cells are counted)."""
    if axes.lat and axes.lon:
        bbox = bbox_from_lonlat(_outer_values(ds, axes.lon), _outer_values(ds, axes.lat))
        geographic = axes.x == axes.lon and axes.y == axes.lat
        crs = 4326 if geographic else _grid_mapping_crs(ds, axes)
        return SpatialExtent(bbox=_rounded(bbox), reference_system=crs)
    if axes.x and axes.y and axes.grid_mapping:
        from recipes_core.stac.projection import ProjectionUnavailable, projected_lonlat

        xs, ys = _outer_values(ds, axes.x), _outer_values(ds, axes.y)
        try:
            lons, lats, crs = projected_lonlat(dict(ds[axes.grid_mapping].attrs), xs, ys,
                                               x_units=str(ds[axes.x].attrs.get("units", "")))
        except ProjectionUnavailable as why:
            return SpatialExtent(
                bbox=WORLD,
                reference_system=_grid_mapping_crs(ds, axes),
                note=f"the grid is projected ({axes.grid_mapping}) and has no latitude/longitude "
                f"coordinates; {why}: the catalogue lists the whole world",
            )
        return SpatialExtent(bbox=_rounded(bbox_from_lonlat(lons, lats)), reference_system=crs)
    return SpatialExtent(
        bbox=WORLD,
        reference_system=None,
        note="no latitude/longitude coordinates or grid mapping found: the catalogue lists the "
        "whole world",
    )


def _grid_mapping_crs(ds: xr.Dataset, axes: Axes) -> str | None:
    """The projection's WKT when the grid mapping carries one (``crs_wkt``/``spatial_ref``)."""
    if not axes.grid_mapping:
        return None
    attrs = ds[axes.grid_mapping].attrs
    wkt = attrs.get("crs_wkt") or attrs.get("spatial_ref")
    return str(wkt) if wkt else None


def _rounded(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    # float32 coordinates give 88.00000762939453; six decimals are ~10 cm.
    west, south, east, north = (round(float(v), 6) for v in bbox)
    return (west, south, east, north)


# ---- time ------------------------------------------------------------------------------------
def _as_datetime(value: Any) -> datetime:
    """A real datetime for a numpy, pandas or cftime date.

    Dates of model calendars that do not exist in the Gregorian one (30 February of a 360-day
    calendar) are clamped to the month's last real day: RFC 3339 has no way to write them.
    """
    if isinstance(value, np.datetime64):
        return value.astype("datetime64[us]").item()  # datetime keeps microseconds
    if isinstance(value, datetime):  # includes pandas; cftime dates are not datetimes
        return value
    day = min(value.day, calendar.monthrange(value.year, value.month)[1])
    return datetime(value.year, value.month, day, value.hour, value.minute, value.second,
                    getattr(value, "microsecond", 0))


def to_iso(value: Any) -> str:
    """RFC 3339 in UTC with a Z, as STAC wants: 2010-01-01T00:00:00Z."""
    moment = _as_datetime(value)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def temporal_extent(ds: xr.Dataset, axes: Axes) -> tuple[str | None, str | None]:
    if not axes.time:
        return None, None
    values = np.asarray(ds[axes.time].values).ravel()
    if values.size == 0:
        return None, None
    if np.issubdtype(values.dtype, np.datetime64):
        values = values[~np.isnat(values)]
        if values.size == 0:
            return None, None
    return to_iso(values.min()), to_iso(values.max())


def _duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"P{seconds // 86400}D"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "") + "T"
    text += (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    return text + (f"{secs}S" if secs else "")


def iso_step(values: np.ndarray) -> str | None:
    """The ISO 8601 duration between regular time steps (P1M, P1D, PT1H), or None if irregular.

    Months and years are calendar steps (January has 31 days, February 28), so they are
    recognised from the calendar fields, not from a fixed number of seconds.
    """
    values = np.asarray(values).ravel()
    if values.size < 2:
        return None
    moments = [_as_datetime(v) for v in values]
    deltas = np.diff(values)
    seconds = np.array([_seconds(d) for d in deltas])
    if np.all(seconds == seconds[0]) and seconds[0] > 0 and seconds[0] == int(seconds[0]):
        return _duration(int(seconds[0]))
    months = np.array([m.year * 12 + m.month for m in moments])
    steps = np.diff(months)
    same_position = len({(m.day, m.hour, m.minute, m.second) for m in moments}) == 1 or all(
        m.day == calendar.monthrange(m.year, m.month)[1] and (m.hour, m.minute) == (0, 0)
        for m in moments
    )
    if same_position and steps[0] > 0 and np.all(steps == steps[0]):
        k = int(steps[0])
        return f"P{k // 12}Y" if k % 12 == 0 else f"P{k}M"
    return None


def _seconds(delta: Any) -> float:
    if isinstance(delta, np.timedelta64):
        return float(delta / np.timedelta64(1, "s"))
    return float(delta.total_seconds())


def regular_step(values: np.ndarray) -> float | None:
    """The constant spacing of numeric coordinates (signed: descending latitudes give -2.0)."""
    values = np.asarray(values)
    if values.ndim != 1 or values.size < 2 or values.dtype.kind not in "iuf":
        return None
    diffs = np.diff(values.astype(float))
    step = float(diffs[0])
    if step == 0 or not np.allclose(diffs, step, rtol=1e-5, atol=0):
        return None
    return round(step, 9)
