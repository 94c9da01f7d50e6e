"""Open a staged source with xarray, by format, and apply the recipe's transforms.

Sources are opened from local paths (the staging cache), never through async file objects:
h5py over fsspec streams is where Pangeo Forge bakes used to hang.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import xarray as xr

from recipes_core.errors import SourceError
from recipes_core.model import OpenOptions
from recipes_core.ops import apply_transforms
from recipes_core.plan.plan import Plan

# netCDF-C and the HDF5 library under it are not thread-safe: two threads of one process
# (Beam's multi_threading direct mode) opening or reading netCDF files at once corrupt memory.
# Every netCDF4-python call in a process goes through this lock; it is re-entrant so that a
# reader may hold it across a whole source while helpers take it again.
NETCDF_LOCK = threading.RLock()
NETCDF_ENGINES = frozenset({"netcdf4", "netcdf3"})

ENGINES = {
    "netcdf4": "netcdf4",
    "netcdf3": "netcdf4",  # netCDF4-python reads the classic formats too
    "hdf5": "h5netcdf",
    "grib": "cfgrib",
    "zarr": "zarr",
}


def open_kwargs(fmt: str, options: OpenOptions) -> dict[str, Any]:
    """The keyword arguments to ``xr.open_dataset`` for a format and the recipe's options."""
    kwargs: dict[str, Any] = {
        "engine": ENGINES[fmt],
        "chunks": None,
        "cache": False,
        "mask_and_scale": options.mask_and_scale,
        "decode_timedelta": options.decode_timedelta,
    }
    if options.use_cftime:
        kwargs["decode_times"] = xr.coders.CFDatetimeCoder(use_cftime=True)
    else:
        kwargs["decode_times"] = options.decode_times
    if options.drop_variables:
        kwargs["drop_variables"] = list(options.drop_variables)
    if options.group:
        kwargs["group"] = options.group
    if fmt == "grib":
        # indexpath="" keeps cfgrib from writing .idx files next to (read-only) sources.
        kwargs["backend_kwargs"] = {"indexpath": "", "filter_by_keys": dict(options.filter_by_keys)}
    if fmt == "zarr":
        kwargs["consolidated"] = None
    return kwargs


@contextlib.contextmanager
def refusing_unreadable(path: str, fmt: str, where: str) -> Iterator[None]:
    """Turn a failure to open a source into a SourceError that names it and the fix."""
    try:
        yield
    except FileNotFoundError:
        raise SourceError(
            f"the staged file {path} is missing",
            where=where,
            fix="re-run the bake; the staging cache may have been cleaned.",
        ) from None
    except Exception as err:
        raise SourceError(
            f"could not open the source as {fmt}: {type(err).__name__}: {err}",
            where=where,
            fix=f"check that the file really is {fmt} (source.format), and the open options.",
        ) from None


@contextlib.contextmanager
def open_source(
    path: str,
    fmt: str,
    options: OpenOptions,
    *,
    url: str | None = None,
) -> Iterator[xr.Dataset]:
    """Open one source file; errors name the source URL and suggest a fix.

    netCDF sources hold :data:`NETCDF_LOCK` while open: xarray reads them lazily.
    """
    lock = NETCDF_LOCK if fmt in NETCDF_ENGINES else contextlib.nullcontext()
    with lock:
        with refusing_unreadable(path, fmt, url or path), warnings.catch_warnings():
            warnings.simplefilter("ignore", category=xr.SerializationWarning)
            ds = xr.open_dataset(path, **open_kwargs(fmt, options))
        try:
            yield ds
        finally:
            ds.close()


def key_mapping(plan: Plan, key: tuple[int, ...]) -> Mapping[str, Any]:
    """The file's keys by pattern dimension name (dates as datetimes)."""
    return {d.name: d.key(i) for d, i in zip(plan.pattern.dims, key, strict=True)}


@contextlib.contextmanager
def open_transformed(
    plan: Plan,
    key: tuple[int, ...],
    path: str,
    url: str,
) -> Iterator[xr.Dataset]:
    """Open a staged source and apply the recipe's transforms to it."""
    source = plan.recipe.source
    with open_source(path, source.format, source.open, url=url) as ds:
        yield apply_transforms(ds, plan.recipe.transforms, key=key_mapping(plan, key), where=url)
