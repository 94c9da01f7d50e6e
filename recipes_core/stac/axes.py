"""Which variables of a dataset are longitude, latitude, time and the vertical, by CF rules.

The catalogue needs to know where the data sits in space and time, whatever the producer named
things: ``lat``/``latitude``/``nav_lat``, 1-D dimension coordinates or 2-D auxiliary ones on a
projected grid, ``time`` or ``t``. We follow the CF conventions (``standard_name``, ``units``,
``axis``, ``positive``) first and fall back on the usual names, because real archives carry
either one or the other.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import xarray as xr

LAT_UNITS = {"degrees_north", "degree_north", "degree_n", "degrees_n", "degreen", "degreesn"}
LON_UNITS = {"degrees_east", "degree_east", "degree_e", "degrees_e", "degreee", "degreese"}
LAT_NAMES = {"lat", "latitude", "nav_lat", "lats", "xlat"}
LON_NAMES = {"lon", "longitude", "nav_lon", "lons", "long", "xlong"}
X_STANDARD_NAMES = {"projection_x_coordinate", "grid_longitude", "projection_x_angular_coordinate"}
Y_STANDARD_NAMES = {"projection_y_coordinate", "grid_latitude", "projection_y_angular_coordinate"}
VERTICAL_STANDARD_NAMES = {
    "air_pressure",
    "altitude",
    "depth",
    "height",
    "height_above_mean_sea_level",
    "model_level_number",
    "atmosphere_hybrid_sigma_pressure_coordinate",
    "atmosphere_sigma_coordinate",
    "ocean_sigma_coordinate",
}


@dataclass(frozen=True)
class Axes:
    """Names of the roles each variable or dimension plays; ``None`` when the data has none.

    ``x``/``y``/``t``/``z`` are dimension names; ``lon``/``lat``/``time`` are the variables
    holding longitudes, latitudes and times (1-D dimension coordinates, 2-D auxiliary
    coordinates, or a scalar time); ``grid_mapping`` is the CF grid-mapping variable.
    """

    x: str | None = None
    y: str | None = None
    t: str | None = None
    z: str | None = None
    lon: str | None = None
    lat: str | None = None
    time: str | None = None
    grid_mapping: str | None = None

    @property
    def horizontal(self) -> tuple[str, str] | None:
        return (self.y, self.x) if self.x and self.y else None


def _attr(var: xr.Variable, name: str) -> str:
    return str(var.attrs.get(name, "")).strip().lower()


def _bounds_names(ds: xr.Dataset) -> set[str]:
    """Cell-bounds variables: never mistaken for the coordinates they bound."""
    return {str(v.attrs["bounds"]) for v in ds.variables.values() if "bounds" in v.attrs}


def is_time(var: xr.Variable) -> bool:
    if np.issubdtype(var.dtype, np.datetime64):
        return True
    if var.dtype == object and var.size and hasattr(var.values.flat[0], "calendar"):
        return True  # cftime dates
    return _attr(var, "axis") == "t" or _attr(var, "standard_name") == "time"


def _is_lat(name: str, var: xr.Variable) -> bool:
    return (
        _attr(var, "standard_name") == "latitude"
        or _attr(var, "units") in LAT_UNITS
        or (name.lower() in LAT_NAMES and not _attr(var, "units").startswith("rad"))
    )


def _is_lon(name: str, var: xr.Variable) -> bool:
    return (
        _attr(var, "standard_name") == "longitude"
        or _attr(var, "units") in LON_UNITS
        or (name.lower() in LON_NAMES and not _attr(var, "units").startswith("rad"))
    )


def _is_vertical(var: xr.Variable) -> bool:
    return (
        _attr(var, "axis") == "z"
        or "positive" in var.attrs
        or _attr(var, "standard_name") in VERTICAL_STANDARD_NAMES
    )


def _first(names: list[str]) -> str | None:
    return names[0] if names else None


def _grid_mapping(ds: xr.Dataset) -> str | None:
    for var in ds.data_vars.values():
        name = var.attrs.get("grid_mapping") or var.encoding.get("grid_mapping")
        # CF allows "crs: x y" forms; the variable name is the first word.
        if name and str(name).split(":")[0].split()[0] in ds.variables:
            return str(name).split(":")[0].split()[0]
    return None


def find_axes(ds: xr.Dataset) -> Axes:
    """Identify the spatial, temporal and vertical roles of ``ds``'s variables."""
    skip = _bounds_names(ds)
    candidates: list[tuple[str, xr.Variable]] = [
        (str(n), v) for n, v in _ordered(ds) if str(n) not in skip
    ]
    dim_coords = [(n, v) for n, v in candidates if v.dims == (n,)]
    lats = [n for n, v in candidates if v.ndim in (1, 2) and _is_lat(n, v)]
    lons = [n for n, v in candidates if v.ndim in (1, 2) and _is_lon(n, v)]
    # Prefer 1-D dimension coordinates; 2-D auxiliary ones describe a projected grid.
    lat = _first([n for n in lats if ds[n].dims == (n,)]) or _first(lats)
    lon = _first([n for n in lons if ds[n].dims == (n,)]) or _first(lons)

    x = lon if lon and ds[lon].dims == (lon,) else None
    y = lat if lat and ds[lat].dims == (lat,) else None
    if x is None:
        x = _first(
            [n for n, v in dim_coords
             if _attr(v, "axis") == "x" or _attr(v, "standard_name") in X_STANDARD_NAMES]
        )
    if y is None:
        y = _first(
            [n for n, v in dim_coords
             if _attr(v, "axis") == "y" or _attr(v, "standard_name") in Y_STANDARD_NAMES]
        )
    if lat and lon and ds[lat].ndim == 2 and ds[lat].dims == ds[lon].dims:
        y = y or str(ds[lat].dims[0])
        x = x or str(ds[lat].dims[1])

    times = [n for n, v in candidates if v.ndim <= 1 and is_time(v)]
    t = _first([n for n in times if ds[n].dims == (n,)])
    time = t or _first([n for n in times if ds[n].ndim == 0])
    z = _first([n for n, v in dim_coords if n not in (x, y, t) and _is_vertical(v)])
    return Axes(x=x, y=y, t=t, z=z, lon=lon, lat=lat, time=time, grid_mapping=_grid_mapping(ds))


def _ordered(ds: xr.Dataset) -> list[tuple[Hashable, xr.Variable]]:
    """Coordinates before data variables: a coordinate is the likelier carrier of a role."""
    coords = [(n, ds.variables[n]) for n in ds.coords]
    data = [(n, ds.variables[n]) for n in ds.data_vars]
    return coords + data
