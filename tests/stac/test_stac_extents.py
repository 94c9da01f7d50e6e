"""Extents from the data: longitudes, latitudes, cells, projected grids, time steps."""

from __future__ import annotations

import importlib.util

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from recipes_core.stac import projection
from recipes_core.stac.axes import find_axes
from recipes_core.stac.extents import (
    WORLD,
    iso_step,
    longitude_range,
    regular_step,
    spatial_extent,
    temporal_extent,
    to_iso,
)

LAT_ATTRS = {"units": "degrees_north", "standard_name": "latitude"}
LON_ATTRS = {"units": "degrees_east", "standard_name": "longitude"}


def grid(lat: np.ndarray, lon: np.ndarray, **coords: xr.DataArray) -> xr.Dataset:
    data = np.zeros((lat.size, lon.size), dtype="f4")
    return xr.Dataset(
        {"v": (("lat", "lon"), data)},
        coords={"lat": ("lat", lat, LAT_ATTRS), "lon": ("lon", lon, LON_ATTRS), **coords},
    )


def bbox(ds: xr.Dataset) -> tuple[float, float, float, float]:
    return spatial_extent(ds, find_axes(ds)).bbox


def test_global_0_360_grid_with_descending_latitude_is_the_whole_world_plus_half_cells():
    ds = grid(np.arange(88, -89, -2.0), np.arange(0, 360, 2.0))  # ERSST's grid
    extent = spatial_extent(ds, find_axes(ds))
    # Half a 2-degree cell beyond the outer centres: -89..89; longitudes wrap to the globe.
    assert extent.bbox == (-180.0, -89.0, 180.0, 89.0)
    assert extent.reference_system == 4326 and extent.note is None


def test_cells_at_the_poles_are_clipped_to_90():
    ds = grid(np.arange(89.5, -90, -1.0), np.arange(-179.5, 180, 1.0))
    assert bbox(ds) == (-180.0, -90.0, 180.0, 90.0)


def test_regional_0_360_grid_across_the_antimeridian():
    """100..260 east is a Pacific box that crosses the antimeridian: west > east in STAC."""
    ds = grid(np.arange(-10, 11, 2.0), np.arange(100, 261, 2.0))
    assert bbox(ds) == (99.0, -11.0, -99.0, 11.0)


def test_regional_grid_in_0_360_that_maps_to_negative_longitudes():
    ds = grid(np.arange(30, 61, 1.0), np.arange(280, 301, 1.0))  # 80W..60W, as 0..360
    assert bbox(ds) == (-80.5, 29.5, -59.5, 60.5)


def test_cf_bounds_variables_win_over_half_cells():
    lat = np.array([10.0, 20.0])
    lon = np.array([0.0, 10.0])
    ds = grid(lat, lon)
    ds["lat"].attrs["bounds"] = "lat_bnds"
    ds["lat_bnds"] = (("lat", "nv"), np.array([[8.0, 12.0], [18.0, 22.0]]))
    assert bbox(ds) == (-5.0, 8.0, 15.0, 22.0)
    assert find_axes(ds).lat == "lat"  # the bounds variable is never taken for latitude


def curvilinear(lon2d: np.ndarray, lat2d: np.ndarray) -> xr.Dataset:
    ny, nx = lat2d.shape
    return xr.Dataset(
        {"t": (("y", "x"), np.ones((ny, nx), "f4"), {"grid_mapping": "crs", "units": "K"}),
         "crs": ((), 0, {"grid_mapping_name": "lambert_conformal_conic"})},
        coords={
            "x": ("x", np.arange(nx) * 1000.0, {"standard_name": "projection_x_coordinate"}),
            "y": ("y", np.arange(ny) * 1000.0, {"standard_name": "projection_y_coordinate"}),
            "lat": (("y", "x"), lat2d, LAT_ATTRS),
            "lon": (("y", "x"), lon2d, LON_ATTRS),
        },
    )


def test_projected_grid_with_2d_lat_lon_uses_their_extremes():
    yy, xx = np.mgrid[0:20, 0:30]
    lat2d = 40 + 0.5 * yy + 0.05 * xx  # a skewed (projected) grid
    lon2d = -10 + 0.5 * xx - 0.1 * yy
    ds = curvilinear(lon2d, lat2d)
    axes = find_axes(ds)
    assert (axes.x, axes.y, axes.lon, axes.lat, axes.grid_mapping) == ("x", "y", "lon", "lat",
                                                                       "crs")
    extent = spatial_extent(ds, axes)
    assert extent.bbox == pytest.approx(
        (lon2d.min(), lat2d.min(), lon2d.max(), lat2d.max()))
    assert extent.reference_system is None  # projected x/y; no WKT in the grid mapping


def test_2d_longitudes_across_the_antimeridian():
    yy, xx = np.mgrid[0:10, 0:21]
    ds = curvilinear(170.0 + xx, 50.0 + yy + 0 * xx)  # 170E..190E, as 0..360
    west, south, east, north = bbox(ds)
    assert (west, east) == (170.0, -170.0) and (south, north) == (50.0, 59.0)


def test_projected_grid_without_lat_lon_goes_through_pyproj(real_data):
    # Looked up, never imported here: pyproj imported after eccodes aborts the interpreter at
    # exit (see recipes_core/stac/projection.py), and other tests load eccodes.
    if importlib.util.find_spec("pyproj") is None:
        pytest.skip("pyproj is not installed (it is in the test extra)")
    ds = xr.open_dataset(real_data / "netcdf4-python" / "20171025_2056.Cloud_Top_Height.nc")
    axes = find_axes(ds)
    assert (axes.x, axes.y, axes.lat, axes.grid_mapping) == ("x", "y", None,
                                                             "goes_imager_projection")
    extent = spatial_extent(ds, axes)
    # GOES-16's CONUS sector, seen from 89.5 W.
    assert extent.bbox == pytest.approx((-140.7, 14.0, -49.1, 52.8), abs=0.2)
    assert "Geostationary" in str(extent.reference_system)
    assert extent.note is None
    assert temporal_extent(ds, axes) == ("2017-10-25T20:53:38.980285Z",) * 2  # scalar time


def test_projected_grid_without_pyproj_lists_the_world_with_a_note(real_data, monkeypatch):
    monkeypatch.setattr(projection.importlib.util, "find_spec", lambda name: None)
    ds = xr.open_dataset(real_data / "netcdf4-python" / "20171025_2056.Cloud_Top_Height.nc")
    extent = spatial_extent(ds, find_axes(ds))
    assert extent.bbox == WORLD
    assert "pyproj is not installed" in extent.note and "goes_imager_projection" in extent.note


def test_data_without_any_position_lists_the_world_with_a_note():
    ds = xr.Dataset({"v": (("a", "b"), np.zeros((2, 3)))})
    extent = spatial_extent(ds, find_axes(ds))
    assert extent.bbox == WORLD and "no latitude/longitude" in extent.note


def test_longitude_range_edge_cases():
    assert longitude_range(np.array([12.0])) == (12.0, 12.0)
    assert longitude_range(np.array([-180.0, 0.0, 179.0])) == (-180.0, 180.0)
    assert longitude_range(np.array([350.0, 355.0, 5.0])) == (-10.0, 5.0)


@pytest.mark.parametrize(
    ("times", "step"),
    [
        (pd.date_range("2010-01-01", periods=12, freq="MS"), "P1M"),
        (pd.date_range("2010-01-31", periods=12, freq="ME"), "P1M"),
        (pd.date_range("2010-01-01", periods=8, freq="3MS"), "P3M"),
        (pd.date_range("2000-01-01", periods=5, freq="YS"), "P1Y"),
        (pd.date_range("2020-01-01", periods=60, freq="D"), "P1D"),
        (pd.date_range("2020-01-01", periods=48, freq="h"), "PT1H"),
        (pd.date_range("2020-01-01", periods=8, freq="6h"), "PT6H"),
        (pd.date_range("2020-01-01", periods=8, freq="30min"), "PT30M"),
        (pd.date_range("2020-01-01", periods=4, freq="7D"), "P7D"),
        (pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-05"]), None),
        (pd.DatetimeIndex(["2020-01-01"]), None),
    ],
)
def test_regular_time_steps_become_iso_durations(times, step):
    assert iso_step(times.values) == step


def test_model_calendars():
    daily = xr.date_range("2000-02-25", periods=10, freq="D", calendar="360_day",
                          use_cftime=True)
    assert iso_step(np.asarray(daily)) == "P1D"
    monthly = xr.date_range("2000-01-01", periods=24, freq="MS", calendar="noleap",
                            use_cftime=True)
    assert iso_step(np.asarray(monthly)) == "P1M"
    # 30 February exists in a 360-day calendar, not in RFC 3339: the month's last real day.
    assert to_iso(cftime.Datetime360Day(2001, 2, 30, 12)) == "2001-02-28T12:00:00Z"


def test_times_are_rfc3339_utc_with_z():
    assert to_iso(np.datetime64("2010-01-01T00:00:00.000000000")) == "2010-01-01T00:00:00Z"
    assert to_iso(np.datetime64("2017-10-25T20:53:38.5")) == "2017-10-25T20:53:38.5Z"
    ds = xr.Dataset(coords={"time": pd.date_range("2010-01-01", "2020-08-01", freq="MS")})
    assert temporal_extent(ds, find_axes(ds)) == ("2010-01-01T00:00:00Z", "2020-08-01T00:00:00Z")


def test_regular_numeric_steps_keep_their_sign():
    assert regular_step(np.arange(88, -89, -2.0, dtype="f4")) == -2.0
    assert regular_step(np.array([1000.0, 850.0, 500.0])) is None
    assert regular_step(np.array([1.0])) is None
