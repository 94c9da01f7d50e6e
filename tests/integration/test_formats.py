"""End-to-end bakes of each source format (netCDF3, HDF5, GRIB 1/2, Zarr) on the direct runner.

Every baked store is compared with xarray opening the same file(s). Multi-file inputs are made
in ``tmp_path`` from the real files in ``../shared/data/real``: netCDF3 split by xarray, GRIB
split message by message with ecCodes (a GRIB file is a plain sequence of self-contained
messages, so the pieces are byte-for-byte the original messages).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eccodes
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from tests.conftest import recipe_dict


def bake_recipe(write_recipe, bake_file, pattern: str, dims: dict[str, Any], fmt: str,
                *, prune: int | None = None, open_options: dict[str, Any] | None = None,
                **fields: Any):
    recipe = recipe_dict(pattern, dims, **fields)
    recipe["source"]["format"] = fmt
    if open_options:
        recipe["source"]["open"] = open_options
    return bake_file(write_recipe(recipe), prune=prune)


def open_store(result) -> xr.Dataset:
    return xr.open_zarr(result.store).load()


# ---- netCDF3 ------------------------------------------------------------------------------------


def test_netcdf3_packed_int16_survives(real_data, tmp_path, write_recipe, bake_file):
    """ERA-Interim u/v/z, packed int16, split per month into netCDF3 64-bit offset files."""
    original = xr.open_dataset(real_data / "xarray-data" / "eraint_uvz.nc").load()
    assert original.z.encoding["dtype"] == np.int16
    for i, month in enumerate(original.month.values):
        part = original.isel(month=[i])
        for name in part.variables:  # isel keeps encodings; drop the old file's shape
            part[name].encoding.pop("original_shape", None)
        part.to_netcdf(tmp_path / f"eraint_{month}.nc", format="NETCDF3_64BIT")
    assert xr.open_dataset(tmp_path / "eraint_7.nc").z.encoding["dtype"] == np.int16

    result = bake_recipe(write_recipe, bake_file, str(tmp_path / "eraint_{month}.nc"),
                         {"month": {"keys": [1, 7]}}, "netcdf3")
    baked = open_store(result)
    # Decoded values, the int month coordinate, descending latitude and every attribute.
    xr.testing.assert_identical(baked, original)
    assert baked.month.dtype == np.int32 and baked.latitude.dtype == np.float32

    group = zarr.open_group(result.store, mode="r")
    with xr.open_dataset(real_data / "xarray-data" / "eraint_uvz.nc",
                         mask_and_scale=False) as packed:
        raw = {name: packed[name].values for name in ("z", "u", "v")}
    for name in ("z", "u", "v"):
        stored = group[name]
        assert stored.dtype == np.int16, name  # still packed in the store
        assert stored.attrs["scale_factor"] == original[name].encoding["scale_factor"]
        assert stored.attrs["add_offset"] == original[name].encoding["add_offset"]
        assert stored.shape == (2, 3, 241, 480)
        np.testing.assert_array_equal(stored[:], raw[name])  # the packed integers, bit for bit
        assert baked[name].encoding["dtype"] == np.int16


# ---- HDF5 (h5netcdf) ----------------------------------------------------------------------------


def test_hdf5_format_reads_with_h5netcdf(real_data, write_recipe, bake_file):
    """ERSST monthly files through the h5netcdf engine; NaN _FillValue plus missing_value."""
    pattern = str(real_data / "ersstv5_monthly" / "sst.mnmean_{time:%Y-%m}.nc")
    dims = {"time": {"start": "2010-01", "end": "2020-08", "freq": "MS", "items_per_file": 1}}
    result = bake_recipe(write_recipe, bake_file, pattern, dims, "hdf5", prune=12,
                         target={"chunks": {"time": 5}})
    assert result.counters["sources_staged"] == 12
    baked = open_store(result)
    original = xr.open_dataset(real_data / "xarray-tutorial" / "sst.mnmean.nc").isel(
        time=slice(0, 12)).load()
    xr.testing.assert_identical(baked, original)
    by_h5netcdf = xr.open_dataset(real_data / "ersstv5_monthly" / "sst.mnmean_2010-01.nc",
                                  engine="h5netcdf").load()
    xr.testing.assert_identical(baked.isel(time=[0]), by_h5netcdf)
    assert baked.sst.dtype == np.float32
    assert zarr.open_array(result.store, path="sst").chunks == (5, 89, 180)


# ---- GRIB ---------------------------------------------------------------------------------------

GRIB_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2} GRIB to CDM\+CF via cfgrib-")


def open_grib(path: Path, **filter_by_keys: Any) -> xr.Dataset:
    return xr.open_dataset(path, engine="cfgrib", backend_kwargs={
        "indexpath": "", "filter_by_keys": filter_by_keys}).load()


def assert_same_grib(baked: xr.Dataset, expected: xr.Dataset) -> None:
    """assert_identical, except for the minute cfgrib stamps into ``history`` when it opens.

    cfgrib writes ``<now, to the minute> GRIB to CDM+CF via cfgrib-... with {"source": <path>,
    "filter_by_keys": ...}``: the rest of the text must match exactly.
    """
    assert GRIB_TIME.match(baked.attrs["history"]), baked.attrs["history"]
    baked, expected = baked.copy(), expected.copy()
    baked.attrs["history"] = baked.attrs["history"][16:]
    expected.attrs["history"] = expected.attrs["history"][16:]
    xr.testing.assert_identical(baked, expected)


def split_grib(src: Path, dst: Callable[[int, int], Path]) -> list[Path]:
    """Write each GRIB message to ``dst(dataDate, dataTime)``, keeping the message order."""
    written: dict[Path, Any] = {}
    with open(src, "rb") as f:
        while (handle := eccodes.codes_grib_new_from_file(f)) is not None:
            try:
                path = dst(eccodes.codes_get(handle, "dataDate"),
                           eccodes.codes_get(handle, "dataTime"))
                if path not in written:
                    written[path] = open(path, "wb")  # noqa: SIM115
                written[path].write(eccodes.codes_get_message(handle))
            finally:
                eccodes.codes_release(handle)
    for out in written.values():
        out.close()
    return sorted(written)


def test_grib1_single_file_with_a_keys_dim(real_data, tmp_path, write_recipe, bake_file):
    """One file, ``time`` as a keys dim of one key: the whole file is the only piece."""
    path = tmp_path / "era5-2mt-2019-03.grib"
    shutil.copy(real_data / "xarray-data" / "era5-2mt-2019-03-uk.grib", path)
    result = bake_recipe(write_recipe, bake_file, str(tmp_path / "era5-2mt-{time}.grib"),
                         {"time": {"keys": ["2019-03"]}}, "grib",
                         target={"chunks": {"time": 100}})
    baked = open_store(result)
    expected = open_grib(path)
    assert_same_grib(baked, expected)
    # Non-dimension coordinates: valid_time along time, and scalar number/step/surface.
    assert baked.valid_time.dims == ("time",)
    np.testing.assert_array_equal(baked.valid_time.values, expected.valid_time.values)
    assert baked.step.dims == () and baked.step.dtype == np.dtype("timedelta64[ns]")
    assert {"number", "step", "surface", "valid_time"} <= set(baked.coords)
    assert baked.t2m.dtype == np.float32 and baked.sizes == {
        "time": 744, "latitude": 33, "longitude": 49}
    assert zarr.open_array(result.store, path="t2m").chunks == (100, 33, 49)


def test_grib1_split_into_daily_files(real_data, tmp_path, write_recipe, bake_file):
    """The same file cut into 31 daily GRIB files of 24 messages; chunks of 40 hours cross
    files. Four days are baked (prune) and equal the first 96 hours of the original."""
    original = real_data / "xarray-data" / "era5-2mt-2019-03-uk.grib"
    files = split_grib(original, lambda date, _time: tmp_path / f"era5-2mt-{date}.grib")
    assert len(files) == 31
    result = bake_recipe(
        write_recipe, bake_file, str(tmp_path / "era5-2mt-{time:%Y%m%d}.grib"),
        {"time": {"start": "2019-03-01", "end": "2019-03-31", "freq": "D",
                  "items_per_file": 24}},
        "grib", prune=4, target={"chunks": {"time": 40}})
    assert result.counters["sources_staged"] == 4
    baked = open_store(result)
    # xarray's combination of the same four files (attributes from the first one, whose
    # history names that file).
    expected = xr.concat([open_grib(f) for f in files[:4]], dim="time",
                         data_vars="minimal", coords="minimal", compat="override",
                         join="exact", combine_attrs="override")
    assert_same_grib(baked, expected)
    whole = open_grib(original).isel(time=slice(0, 96))
    xr.testing.assert_equal(baked, whole)  # equal to the original file's first 96 hours
    assert baked.valid_time.dims == ("time",)
    np.testing.assert_array_equal(baked.valid_time.values, whole.valid_time.values)
    assert zarr.open_array(result.store, path="t2m").chunks == (40, 33, 49)


@pytest.mark.parametrize("split", [False, True], ids=["one-file", "split-by-day"])
def test_grib1_five_dimensional_ensemble(real_data, tmp_path, write_recipe, bake_file, split):
    """number x time x isobaricInhPa x latitude x longitude; ``time`` is not the first dim.

    Split by day, each file holds 2 of the 4 times (00 and 12 UTC), and the pieces land in
    the middle of the 5-D arrays.
    """
    original = real_data / "cfgrib" / "era5-levels-members.grib"
    if split:
        files = split_grib(original, lambda date, _time: tmp_path / f"members-{date}.grib")
        assert len(files) == 2
        pattern = str(tmp_path / "members-{time:%Y%m%d}.grib")
        dims = {"time": {"start": "2017-01-01", "end": "2017-01-02", "freq": "D",
                         "items_per_file": 2}}
    else:
        files = [tmp_path / "members-2017-01.grib"]
        shutil.copy(original, files[0])
        pattern = str(tmp_path / "members-{time}.grib")
        dims = {"time": {"keys": ["2017-01"]}}
    result = bake_recipe(write_recipe, bake_file, pattern, dims, "grib",
                         target={"chunks": {"time": 1, "number": 5}})
    baked = open_store(result)
    whole = open_grib(original)
    history_from = open_grib(files[0])  # the first source's history names that source
    expected = whole.assign_attrs(history=history_from.attrs["history"])
    assert_same_grib(baked, expected)
    assert baked.z.dims == ("number", "time", "isobaricInhPa", "latitude", "longitude")
    assert baked.valid_time.dims == ("time",)
    assert zarr.open_array(result.store, path="t").chunks == (5, 1, 2, 61, 120)


@pytest.mark.parametrize("from_key", [False, True], ids=["promote", "from-key"])
def test_grib2_heterogeneous_file_filtered_by_level_type(real_data, tmp_path, write_recipe,
                                                         bake_file, from_key):
    """NAM GRIB2 only opens as one Dataset with ``filter_by_keys``; it has a single (scalar)
    time, so ``expand_dims`` makes it the concat dimension: promoting the scalar, or taking the
    file's key (which here is the same instant). 2-D latitude/longitude over y, x survive."""
    path = tmp_path / "nam.20180917.grib2"
    shutil.copy(real_data / "cfgrib" / "nam.t00z.awp21100.tm00.grib2", path)
    expand: dict[str, Any] = {"dim": "time"}
    if from_key:
        expand["from_key"] = True
    result = bake_recipe(
        write_recipe, bake_file, str(tmp_path / "nam.{time:%Y%m%d}.grib2"),
        {"time": {"start": "2018-09-17", "end": "2018-09-17", "freq": "D"}}, "grib",
        open_options={"filter_by_keys": {"typeOfLevel": "isobaricInhPa"}},
        transforms=[{"expand_dims": expand}],
    )
    baked = open_store(result)
    source = open_grib(path, typeOfLevel="isobaricInhPa")
    assert set(source.data_vars) == {"gh", "t", "r", "w", "u", "v"}
    assert_same_grib(baked, source.expand_dims("time"))
    assert baked.time.attrs == {"long_name": "initial time of forecast",
                                "standard_name": "forecast_reference_time"}
    assert baked.latitude.dims == ("y", "x") and baked.longitude.dims == ("y", "x")
    assert baked.valid_time.dims == () and baked.step.dims == ()
    assert baked.gh.dims == ("time", "isobaricInhPa", "y", "x")
    time = zarr.open_array(result.store, path="time")
    assert time.dtype == np.int64 and time.attrs["units"].startswith("seconds since 1970-01-01")


def test_grib2_without_filter_is_a_source_error(real_data, tmp_path, write_recipe,
                                                bake_file):
    """Without ``filter_by_keys`` cfgrib cannot build one Dataset: the error names the file."""
    from recipes_core.errors import SourceError

    path = tmp_path / "nam.20180917.grib2"
    shutil.copy(real_data / "cfgrib" / "nam.t00z.awp21100.tm00.grib2", path)
    with pytest.raises(SourceError, match="could not open the source as grib") as info:
        bake_recipe(write_recipe, bake_file, str(tmp_path / "nam.{time:%Y%m%d}.grib2"),
                    {"time": {"start": "2018-09-17", "end": "2018-09-17", "freq": "D"}},
                    "grib", transforms=[{"expand_dims": {"dim": "time"}}])
    assert str(path) in str(info.value)


# ---- Zarr as a source ---------------------------------------------------------------------------


def write_daily_zarr_stores(folder: Path, days: int = 3) -> list[Path]:
    rng = np.random.default_rng(42)
    paths = []
    for day in pd.date_range("2020-01-01", periods=days, freq="D"):
        time = pd.date_range(day, periods=4, freq="6h")
        tas = rng.normal(280, 5, (4, 3, 5)).astype("float32")
        tas[0, 0, 0] = np.nan
        ds = xr.Dataset(
            {"tas": (("time", "lat", "lon"), tas, {"units": "K"})},
            coords={"time": time, "lat": ("lat", [10.0, 0.0, -10.0], {"units": "degrees_north"}),
                    "lon": ("lon", np.arange(5.0), {"units": "degrees_east"})},
            attrs={"title": "daily zarr"},
        )
        ds.time.encoding = {"units": "hours since 2020-01-01", "dtype": "int32"}
        path = folder / f"day_{day:%Y%m%d}.zarr"
        ds.to_zarr(path, mode="w")
        paths.append(path)
    return paths


def test_zarr_stores_as_sources(tmp_path, write_recipe, bake_file):
    paths = write_daily_zarr_stores(tmp_path / "stores")
    result = bake_recipe(
        write_recipe, bake_file, str(tmp_path / "stores" / "day_{time:%Y%m%d}.zarr"),
        {"time": {"start": "2020-01-01", "end": "2020-01-03", "freq": "D",
                  "items_per_file": 4}},
        "zarr", target={"chunks": {"time": 5}})
    baked = open_store(result)
    expected = xr.open_mfdataset(paths, engine="zarr", combine="by_coords").load()
    xr.testing.assert_identical(baked, expected)
    assert np.isnan(baked.tas.values[0, 0, 0])
