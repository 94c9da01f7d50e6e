"""Realistic synthetic netCDF archives, and the xarray answer a bake of them must equal.

Real archives are where recipes break, so the files written here copy the awkward parts of real
CF products on purpose:

* every file has its own time units (``days since <first day of that file> 00:00:00``), so a
  bake that concatenates raw encoded time values instead of decoded datetimes goes wrong;
* ``time`` is an unlimited dimension and the values are float64, as written by most models;
* latitude runs *descending* (85 .. -85) and longitude 0 .. 360, like many reanalysis products;
* data variables are float32 with a ``_FillValue`` (``1e20`` for ``tas``, ``-9999.0`` for ``pr``)
  and a static "land mask" of fill values, so fill handling and NaN propagation matter;
* zlib compression is on (netCDF-4 formats), so the bytes on disk are HDF5 chunks, not a flat
  array a naive reader could slice.

Values are a pure function of ``seed``, the variable name, the grid and the *absolute* date (days
since 1970-01-01), computed one day at a time. The same day therefore has bit-identical values
however the archive is split into files and whatever ``start`` is, which is what lets a test
compare a bake of a 5-steps-per-file archive with a bake of a 1-step-per-file one.
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import netCDF4
import numpy as np
import xarray as xr

__all__ = ["archive_oracle", "make_daily_archive", "make_regridded_copy"]

PathLike = str | os.PathLike[str]

_EPOCH = dt.date(1970, 1, 1)
_NETCDF4_FORMATS = frozenset({"NETCDF4", "NETCDF4_CLASSIC"})
_NETCDF3_FORMATS = frozenset({"NETCDF3_CLASSIC", "NETCDF3_64BIT", "NETCDF3_64BIT_OFFSET"})
_SPLIT_FILENAME = "{variable}_{time:%Y%m%d}.nc"


@dataclass(frozen=True)
class _VariableSpec:
    """CF metadata of one synthetic variable (``standard_name`` is omitted when ``None``)."""

    long_name: str
    units: str
    standard_name: str | None
    fill_value: float


# Known variables get the CF metadata of the real thing; any other name still works (see
# ``_spec_for``) so tests can ask for e.g. three variables without touching this table.
_KNOWN_VARIABLES: dict[str, _VariableSpec] = {
    "tas": _VariableSpec("Near-Surface Air Temperature", "K", "air_temperature", 1e20),
    "pr": _VariableSpec("Precipitation", "kg m-2 s-1", "precipitation_flux", -9999.0),
    "psl": _VariableSpec("Sea Level Pressure", "Pa", "air_pressure_at_mean_sea_level", 1e20),
}


def _spec_for(variable: str) -> _VariableSpec:
    return _KNOWN_VARIABLES.get(variable) or _VariableSpec(variable, "1", None, 1e20)


def _grid(ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """Descending latitudes 85..-85 and longitudes 0..360 (exclusive), as float64."""
    lat = np.linspace(85.0, -85.0, ny) if ny > 1 else np.array([0.0])
    lon = np.arange(nx, dtype=np.float64) * (360.0 / nx)
    return lat, lon


def _waves(variable: str, seed: int, lat: np.ndarray, lon: np.ndarray, day: int) -> np.ndarray:
    """A smooth field in [-1, 1]: a few travelling planetary waves, periodic in longitude.

    Integer zonal wavenumbers keep the field continuous across the dateline; the phase speed makes
    consecutive days correlated like real weather. ``crc32`` (not ``hash``) keeps the per-variable
    stream stable across interpreter runs.
    """
    rng = np.random.default_rng([seed, zlib.crc32(variable.encode())])
    n = 4
    k = rng.integers(1, 5, size=n)
    m = rng.integers(1, 4, size=n)
    amplitude = rng.uniform(0.5, 1.0, size=n)
    amplitude /= amplitude.sum()
    phase = rng.uniform(0.0, 2.0 * np.pi, size=n)
    speed = rng.uniform(-0.3, 0.3, size=n)
    lat_r = np.deg2rad(lat)[:, None]
    lon_r = np.deg2rad(lon)[None, :]
    field = np.zeros((lat.size, lon.size))
    for i in range(n):
        field += amplitude[i] * np.cos(k[i] * lon_r + m[i] * lat_r + phase[i] + speed[i] * day)
    return field


def _land_mask(seed: int, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Static boolean mask (True = no data), about a tenth of the grid in a few blobs."""
    rng = np.random.default_rng([seed, 0x1A2D])
    p1, p2 = rng.uniform(0.0, 2.0 * np.pi, size=2)
    lat_r = np.deg2rad(lat)[:, None]
    lon_r = np.deg2rad(lon)[None, :]
    blobs = np.cos(2.0 * lon_r + p1) * np.cos(2.0 * lat_r + p2) + 0.3 * np.sin(3.0 * lon_r + p2)
    return blobs > 0.75


def _daily_field(
    variable: str, seed: int, lat: np.ndarray, lon: np.ndarray, day: int
) -> np.ndarray:
    """Values of ``variable`` on absolute day ``day`` (days since 1970-01-01), float32 (ny, nx).

    Computed in float64 for one day at a time, so the result for a given day never depends on how
    many days are computed together (vectorised kernels may round differently by array shape).
    """
    wave = _waves(variable, seed, lat, lon, day)
    lat_r = np.deg2rad(lat)[:, None]
    # 1970-01-16 is near the northern-hemisphere minimum; 365.2425 keeps the season on calendar.
    season = np.cos(2.0 * np.pi * (day - 15) / 365.2425)
    if variable == "tas":
        # ~300 K at the equator, ~250 K near the poles, +-8 K seasonal cycle of opposite sign in
        # the two hemispheres, +-3 K weather.
        values = 258.0 + 42.0 * np.cos(lat_r) ** 1.2 - 8.0 * np.sin(lat_r) * season + 3.0 * wave
    elif variable == "pr":
        # Wet ITCZ around the equator, always positive, at most ~2e-4 kg m-2 s-1 (~17 mm/day).
        itcz = np.exp(-((np.rad2deg(lat_r) / 12.0) ** 2))
        values = 2e-5 * (1.0 + 2.0 * itcz) * np.exp(1.2 * wave)
    elif variable == "psl":
        values = 101325.0 + 1500.0 * wave - 400.0 * np.sin(lat_r) * season
    else:
        values = wave + 0.1 * season
    return np.broadcast_to(values, wave.shape).astype(np.float32)


def _parse_start(start: str | dt.date) -> dt.date:
    if isinstance(start, dt.datetime):
        raise ValueError(f"start must be a date, not a datetime: {start!r}")
    if isinstance(start, dt.date):
        return start
    try:
        return dt.date.fromisoformat(start)
    except ValueError as exc:
        raise ValueError(f"start must be an ISO date like '2020-01-01', got {start!r}") from exc


def _write_file(
    path: pathlib.Path,
    *,
    file_format: str,
    first_day: dt.date,
    steps: int,
    variables: Sequence[str],
    lat: np.ndarray,
    lon: np.ndarray,
    mask: np.ndarray,
    seed: int,
) -> None:
    compress = file_format in _NETCDF4_FORMATS
    first_abs = (first_day - _EPOCH).days
    with netCDF4.Dataset(path, "w", format=file_format) as nc:
        nc.setncatts(
            {
                "Conventions": "CF-1.8",
                "title": "Synthetic daily near-surface climate (recipes_core test archive)",
                "institution": "recipes_core test kit",
                "source": f"recipes_core.testing.make_daily_archive (synthetic, seed={seed})",
                # Fixed text, not a timestamp: rebuilding an archive must give identical metadata.
                "history": "created by recipes_core.testing.make_daily_archive",
                "frequency": "day",
            }
        )
        nc.createDimension("time", None)  # unlimited, like model output appended step by step
        nc.createDimension("lat", lat.size)
        nc.createDimension("lon", lon.size)

        time = nc.createVariable("time", "f8", ("time",))
        time.setncatts(
            {
                "standard_name": "time",
                "long_name": "time",
                "axis": "T",
                # The trap: every file counts from its own first day.
                "units": f"days since {first_day.isoformat()} 00:00:00",
                "calendar": "standard",
            }
        )
        time[:] = np.arange(steps, dtype=np.float64)

        lat_var = nc.createVariable("lat", "f8", ("lat",))
        lat_var.setncatts(
            {
                "standard_name": "latitude",
                "long_name": "latitude",
                "units": "degrees_north",
                "axis": "Y",
            }
        )
        lat_var[:] = lat
        lon_var = nc.createVariable("lon", "f8", ("lon",))
        lon_var.setncatts(
            {
                "standard_name": "longitude",
                "long_name": "longitude",
                "units": "degrees_east",
                "axis": "X",
            }
        )
        lon_var[:] = lon

        full_mask = np.broadcast_to(mask, (steps, *mask.shape))
        for name in variables:
            spec = _spec_for(name)
            kwargs: dict[str, Any] = (
                {"zlib": True, "complevel": 4, "shuffle": True} if compress else {}
            )
            var = nc.createVariable(
                name,
                "f4",
                ("time", "lat", "lon"),
                fill_value=np.float32(spec.fill_value),
                **kwargs,
            )
            attrs = {"long_name": spec.long_name, "units": spec.units}
            if spec.standard_name is not None:
                attrs["standard_name"] = spec.standard_name
            var.setncatts(attrs)
            data = np.stack(
                [_daily_field(name, seed, lat, lon, first_abs + i) for i in range(steps)]
            )
            # Masked cells are written as _FillValue by netCDF4-python.
            var[:] = np.ma.masked_array(data, mask=full_mask)


def make_daily_archive(
    directory: PathLike,
    *,
    start: str | dt.date = "2020-01-01",
    days: int = 60,
    steps_per_file: int = 1,
    variables: Sequence[str] = ("tas", "pr"),
    split_by_variable: bool = False,
    ny: int = 18,
    nx: int = 36,
    seed: int = 0,
    filename: str = "demo_{time:%Y%m%d}.nc",
    file_format: str = "NETCDF4",
) -> list[pathlib.Path]:
    """Write a daily CF-netCDF archive of ``days`` days starting at ``start`` into ``directory``.

    Files hold ``steps_per_file`` consecutive daily steps and are named by the date of their first
    step; when ``days`` is not a multiple of ``steps_per_file`` the *last file is shorter* (it
    holds the remaining ``days % steps_per_file`` steps). ``filename`` is formatted with
    ``time=<datetime of the first step>`` (and ``variable=`` the first variable, for patterns that
    want it). With ``split_by_variable=True`` each file holds a single variable and is named
    ``"{variable}_{YYYYMMDD}.nc"``; ``filename`` is then ignored.

    The grid is ``ny`` descending latitudes from 85 to -85 and ``nx`` longitudes from 0 (step
    ``360 / nx``). ``tas``, ``pr`` and ``psl`` get their real CF metadata; any other variable name
    gets a generic smooth field with ``units: "1"`` and no ``standard_name``. ``file_format`` is
    any netCDF4-python format; compression is only applied for the netCDF-4 (HDF5) formats.

    ``directory`` is created if missing. Returns the written paths in time order (and, when split
    by variable, in ``variables`` order within a date).
    """
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if steps_per_file < 1:
        raise ValueError(f"steps_per_file must be >= 1, got {steps_per_file}")
    if ny < 1 or nx < 1:
        raise ValueError(f"grid must be at least 1x1, got ny={ny}, nx={nx}")
    variables = list(variables)
    if not variables or len(set(variables)) != len(variables):
        raise ValueError(f"variables must be non-empty and unique, got {variables}")
    if file_format not in _NETCDF4_FORMATS | _NETCDF3_FORMATS:
        raise ValueError(
            f"unsupported file_format {file_format!r}; use one of "
            f"{sorted(_NETCDF4_FORMATS | _NETCDF3_FORMATS)}"
        )
    first = _parse_start(start)
    out_dir = pathlib.Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    lat, lon = _grid(ny, nx)
    mask = _land_mask(seed, lat, lon)

    # (path, variables in it) for every file, worked out before writing so that a filename
    # pattern that collides (e.g. one without the date) fails before anything is written.
    plan: list[tuple[pathlib.Path, dt.date, int, list[str]]] = []
    for offset in range(0, days, steps_per_file):
        file_first = first + dt.timedelta(days=offset)
        steps = min(steps_per_file, days - offset)
        stamp = dt.datetime.combine(file_first, dt.time())
        if split_by_variable:
            for name in variables:
                path = out_dir / _SPLIT_FILENAME.format(time=stamp, variable=name)
                plan.append((path, file_first, steps, [name]))
        else:
            path = out_dir / filename.format(time=stamp, variable=variables[0])
            plan.append((path, file_first, steps, variables))
    names = [p for p, *_ in plan]
    if len(set(names)) != len(names):
        raise ValueError(
            f"filename pattern {filename!r} gives the same name to several files; "
            "include the date, e.g. '{time:%Y%m%d}'"
        )

    for path, file_first, steps, file_vars in plan:
        _write_file(
            path,
            file_format=file_format,
            first_day=file_first,
            steps=steps,
            variables=file_vars,
            lat=lat,
            lon=lon,
            mask=mask,
            seed=seed,
        )
    return names


def _nearest(old: np.ndarray, new: np.ndarray, *, period: float | None = None) -> np.ndarray:
    """Index into ``old`` of the point nearest each ``new`` value (circular when ``period``)."""
    diff = np.abs(new[:, None] - old[None, :])
    if period is not None:
        diff = np.minimum(diff, period - diff)
    return np.argmin(diff, axis=1)


def make_regridded_copy(src: PathLike, dst: PathLike, *, ny: int, nx: int) -> pathlib.Path:
    """Copy the netCDF file ``src`` to ``dst`` on a different ``ny`` x ``nx`` grid.

    Everything else is kept: format, global and variable attributes, time units, ``_FillValue``,
    compression and dtypes. The new latitudes span the same range in the same direction as the
    source; longitudes start at the source's first longitude with step ``360 / nx`` (the source is
    assumed global). Data are nearest-neighbour samples of the source, fill cells included. Used
    for "one source is on a different grid" error tests. Returns ``Path(dst)``.
    """
    src_path, dst_path = pathlib.Path(src), pathlib.Path(dst)
    if ny < 1 or nx < 1:
        raise ValueError(f"grid must be at least 1x1, got ny={ny}, nx={nx}")
    if src_path.resolve() == dst_path.resolve():
        raise ValueError(f"dst must differ from src: {src_path}")
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        netCDF4.Dataset(src_path) as s,
        netCDF4.Dataset(dst_path, "w", format=s.data_model) as d,
    ):
        if "lat" not in s.variables or "lon" not in s.variables:
            raise ValueError(f"{src_path} has no 'lat'/'lon' coordinate variables to regrid")
        old_lat = np.asarray(s.variables["lat"][:], dtype=np.float64)
        old_lon = np.asarray(s.variables["lon"][:], dtype=np.float64)
        new_lat = np.linspace(old_lat[0], old_lat[-1], ny) if ny > 1 else old_lat[:1].copy()
        new_lon = old_lon[0] + np.arange(nx, dtype=np.float64) * (360.0 / nx)
        lat_idx = _nearest(old_lat, new_lat)
        lon_idx = _nearest(np.mod(old_lon, 360.0), np.mod(new_lon, 360.0), period=360.0)

        d.setncatts({k: s.getncattr(k) for k in s.ncattrs()})
        sizes = {"lat": ny, "lon": nx}
        for name, dim in s.dimensions.items():
            d.createDimension(name, None if dim.isunlimited() else sizes.get(name, len(dim)))

        for name, var in s.variables.items():
            filters = var.filters() or {}
            kwargs: dict[str, Any] = {}
            if filters.get("zlib"):
                kwargs = {
                    "zlib": True,
                    "complevel": filters.get("complevel", 4),
                    "shuffle": bool(filters.get("shuffle")),
                }
            fill = var.getncattr("_FillValue") if "_FillValue" in var.ncattrs() else None
            out = d.createVariable(name, var.dtype, var.dimensions, fill_value=fill, **kwargs)
            out.setncatts({k: var.getncattr(k) for k in var.ncattrs() if k != "_FillValue"})
            if name == "lat":
                out[:] = new_lat
            elif name == "lon":
                out[:] = new_lon
            else:
                data = var[:]  # masked array: fill cells stay masked through the indexing
                if "lat" in var.dimensions:
                    data = np.take(data, lat_idx, axis=var.dimensions.index("lat"))
                if "lon" in var.dimensions:
                    data = np.take(data, lon_idx, axis=var.dimensions.index("lon"))
                out[:] = data
    return dst_path


def archive_oracle(paths: Sequence[PathLike]) -> xr.Dataset:
    """The dataset a bake of ``paths`` must equal: plain xarray, fully loaded into memory.

    Combines by coordinates (so file order does not matter), keeps non-time variables from the
    first file and insists every file shares one grid (``join="exact"``).
    """
    if not paths:
        raise ValueError("archive_oracle needs at least one path")
    with xr.open_mfdataset(
        sorted(os.fspath(p) for p in paths),
        # Pinned rather than guessed: the answer must not depend on which backends happen to be
        # installed, and guessing costs a probe of every backend per file.
        engine="netcdf4",
        combine="by_coords",
        data_vars="minimal",
        coords="minimal",
        compat="override",
        join="exact",
    ) as ds:
        # Load before the context closes the files; the loaded arrays outlive the handles.
        return ds.load()
