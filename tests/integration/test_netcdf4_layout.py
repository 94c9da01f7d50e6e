"""The h5py-only view of a netCDF-4 file (:mod:`recipes_core.netcdf4_layout`) says what
netCDF4-python says, or nothing.

Write tasks skip netCDF4-python's open when :func:`layout_of` gives a layout. So on real files
and on files made to hit each convention (a dimension without a coordinate variable, record
variables, text attributes stored as variable-length strings, per-file time units), the layout
must match what the netCDF4-python reader settles to, and a file outside what it can show must
give None, so that the write task opens it with netCDF4-python (and reads the same values as
xarray: ``compare_readers``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import pytest

from recipes_core.netcdf4_layout import DECODING_ATTRIBUTES, Layout, layout_of
from recipes_core.plan.plan import Plan
from recipes_core.reading import NetCDFReader, _open_hdf5
from recipes_core.schema import Template
from tests.integration.test_reading import _plan, _template, compare_readers


def _write(path: Path, day: int, *, per_file_units: bool = False, string_units: bool = False,
           short_record: bool = False, other_fill: bool = False,
           non_coordinate: bool = False) -> None:
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lat", 3)
        nc.createDimension("lon", 4)
        nc.createDimension("nv", 2)  # a dimension without a coordinate variable
        time = nc.createVariable("time", "f8", ("time",))
        since = dt.date(2000, 1, 1 + day) if per_file_units else dt.date(2000, 1, 1)
        units = f"days since {since:%Y-%m-%d}"
        if string_units:
            time.setncattr_string("units", units)
        else:
            time.units = units
        time.calendar = "standard"
        time[0] = (dt.date(2000, 1, 1 + day) - since).days
        if short_record:
            time[1] = time[0] + 0.5  # the record dimension is 2 long, tas only 1
        lat = nc.createVariable("lat", "f4", ("lat",))
        lat.units = "degrees_north"
        lat[:] = [-10, 0, 10]
        lon = nc.createVariable("lon", "f4", ("lon",))
        lon[:] = [0, 90, 180, 270]
        bounds = nc.createVariable("lat_bnds", "f4", ("lat", "nv"))
        bounds[:] = [[-15, -5], [-5, 5], [5, 15]]
        fill = np.float32(-999 if other_fill and day else 1e20)
        tas = nc.createVariable("tas", "f4", ("time", "lat", "lon"), fill_value=fill)
        tas.units = "K"
        if non_coordinate:  # named like the dimension nv, but over lat: "_nc4_non_coord_nv"
            nc.createVariable("nv", "f4", ("lat",))[:] = [1, 2, 3]
        tas[0] = np.arange(12, dtype="f4").reshape(3, 4) + day


def _archive(tmp_path: Path, **kwargs: Any) -> Plan:
    for day in range(2):
        _write(tmp_path / f"f_{dt.date(2000, 1, 1 + day):%Y%m%d}.nc", day, **kwargs)
    steps = 2 if kwargs.get("short_record") else 1
    return _plan(str(tmp_path / "f_{time:%Y%m%d}.nc"),
                 {"time": {"start": "2000-01-01", "end": "2000-01-02", "freq": "D",
                           **({"items_per_file": steps} if steps > 1 else {})}})


def _netcdf4_view(path: str, template: Template) -> NetCDFReader | None:
    """The reader netCDF4-python gives, if it settles (every template variable raw)."""
    nc = netCDF4.Dataset(path)
    h5 = _open_hdf5(path, None)
    reader = NetCDFReader(nc, template, {"mask_and_scale": True}, h5)
    settled = reader.settle()
    nc.close()
    h5.file.close()
    return reader if settled else None


def _assert_same(layout: Layout | None, path: str, template: Template) -> None:
    reader = _netcdf4_view(path, template)
    assert (layout is None) == (reader is None), path
    if layout is None or reader is None:
        return
    assert dict(layout.sizes) == {d: n for d, n in reader.sizes.items() if d in template.dims}
    assert layout.variables == {n for n in template.variables if reader.has(n)}
    expected = reader.stored_index_coordinates()
    assert set(layout.index) == {d for d in expected if d in template.dims}
    for dim, var in layout.index.items():
        np.testing.assert_array_equal(var.values, expected[dim].values)
        assert var.dtype == expected[dim].dtype
        wanted = {k: v for k, v in expected[dim].attrs.items() if k in DECODING_ATTRIBUTES}
        assert set(var.attrs) == set(wanted), (path, dim)
        for key, value in wanted.items():
            assert type(var.attrs[key]) is type(value), (path, dim, key)
            np.testing.assert_array_equal(var.attrs[key], value)


def _layouts(plan: Plan) -> list[tuple[str, Layout | None, Template]]:
    template = _template(plan)
    out = []
    for _, url in plan.sources():
        h5 = _open_hdf5(url, None)
        try:
            out.append((url, layout_of(h5, template, ()), template))
        finally:
            h5.file.close()
    return out


def test_layout_of_a_cf_file_matches_netcdf4_python(tmp_path: Path) -> None:
    plan = _archive(tmp_path)
    layouts = _layouts(plan)
    for url, layout, template in layouts:
        assert layout is not None, url  # every variable stored as the target stores it
        assert layout.sizes["nv"] == 2 and "nv" not in layout.index  # no coordinate variable
        assert "lat_bnds" in layout.variables and "nv" not in layout.variables
        _assert_same(layout, url, template)
    assert compare_readers(plan) == {"tas", "lat_bnds"}


@pytest.mark.parametrize("folder, pattern, dims", [
    ("wfde5_tair_daily", "Tair_WFDE5_{time:%Y-%m-%d}.nc",
     {"time": {"start": "2017-01-01", "end": "2017-01-04", "freq": "D", "items_per_file": 24}}),
    ("ersstv5_monthly", "sst.mnmean_{time:%Y-%m}.nc",
     {"time": {"start": "2010-01-01", "end": "2010-03-01", "freq": "MS"}}),
])
def test_layout_of_real_files_matches_netcdf4_python(real_data: Path, folder: str,
                                                     pattern: str, dims: dict[str, Any]) -> None:
    plan = _plan(str(real_data / folder / pattern), dims)
    for url, layout, template in _layouts(plan):
        _assert_same(layout, url, template)


def test_layout_with_per_file_time_units(tmp_path: Path) -> None:
    # The coordinates are checked decoded: their stored units do not have to be the target's.
    plan = _archive(tmp_path, per_file_units=True)
    for url, layout, template in _layouts(plan):
        assert layout is not None
        _assert_same(layout, url, template)
    compare_readers(plan)


@pytest.mark.parametrize("case", [
    {"short_record": True},  # netCDF pads tas to the record length: not what h5py reads
    {"string_units": True},  # a variable-length string attribute: netCDF4-python decides
    {"other_fill": True},  # the second file's tas needs CF decoding (another fill value)
    {"non_coordinate": True},  # stored under another name than netCDF4-python gives it
])
def test_layout_refuses_what_it_cannot_show(tmp_path: Path, case: dict[str, Any]) -> None:
    plan = _archive(tmp_path, **case)
    (_, first, _), (_, second, _) = _layouts(plan)
    assert second is None
    assert (first is None) == (not case.get("other_fill"))  # the first file is the target's
    compare_readers(plan)  # the netCDF4-python path then reads what xarray reads
