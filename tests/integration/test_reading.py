"""The raw netCDF read path gives exactly what xarray's decode-then-encode gives.

For every source and every template variable, :class:`NetCDFReader` (raw bytes where they
already are the target encoding, xarray's CF decoder for the rest) is compared with
:class:`XarrayReader` (``xr.open_dataset``, transforms, ``encode_zarr_variable``), on real files
and on synthetic files made to hit each rule: NaNs under a numeric fill, missing_value against
_FillValue, packed integers, 64-bit integers with a fill, bounds without units, groups,
big-endian netCDF3.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import pytest
import xarray as xr

from recipes_core.combine import combine_schemas
from recipes_core.model import Recipe
from recipes_core.opener import open_transformed
from recipes_core.plan.plan import Plan, compile_recipe
from recipes_core.reading import (
    NetCDFReader,
    XarrayReader,
    index_values_of,
    open_for_writing,
    reads_raw,
)
from recipes_core.schema import Template, schema_of
from recipes_core.testing import make_daily_archive
from tests.conftest import recipe_dict


def _plan(pattern: str, dims: dict[str, Any], fmt: str = "netcdf4", **fields: Any) -> Plan:
    data = recipe_dict(pattern, dims, **fields)
    data["source"]["format"] = fmt
    if "open" in fields:
        data["source"]["open"] = data.pop("open")
    return compile_recipe(Recipe.model_validate(data))


def _template(plan: Plan) -> Template:
    schemas = []
    for key, url in plan.sources():
        with open_transformed(plan, key, url, url) as ds:
            schemas.append(schema_of(ds, key, url))
    return combine_schemas(plan, schemas)


def compare_readers(plan: Plan) -> set[str]:
    """Assert both readers agree on every variable of every source; return those read raw."""
    assert reads_raw(plan)
    template = _template(plan)
    raw_names: set[str] = set()
    for key, url in plan.sources():
        with open_for_writing(plan, key, url, url, template) as fast, \
                open_transformed(plan, key, url, url) as ds:
            assert isinstance(fast, NetCDFReader)
            slow = XarrayReader(ds)
            assert fast.sizes == slow.sizes
            expected_index = slow.index_values()
            got_index = fast.index_values()
            assert set(got_index) == set(expected_index)
            for dim, values in expected_index.items():
                np.testing.assert_array_equal(got_index[dim], values)
            for name, var in template.variables.items():
                assert fast.has(name) == slow.has(name), name
                if not slow.has(name):
                    continue
                shape = ds.variables[name].shape
                wheres = [tuple(slice(0, n) for n in shape),
                          tuple(slice(n // 3, max(n // 3 + 1, n - 1)) for n in shape)]
                for where in wheres:
                    expected = slow.read_encoded(var, where)
                    got = fast.read_encoded(var, where)
                    assert got.dtype == expected.dtype, name
                    assert got.shape == expected.shape, name
                    # Bitwise: NaN payloads and signed zeros included.
                    assert got.tobytes() == expected.tobytes(), name
                    # Straight into a bigger buffer (a write unit), at an offset.
                    out = np.full(tuple(s.stop - s.start + 2 for s in where), 7,
                                  dtype=expected.dtype)
                    inner = tuple(slice(1, s.stop - s.start + 1) for s in where)
                    direct = fast.read_into(var, where, out, inner)
                    # netCDF-4 (HDF5) files read raw variables straight into the buffer
                    # (unless netCDF pads a short record variable).
                    assert direct == (fast._is_raw(name) and fast.h5 is not None
                                      and bool(where) and fast._h5py_reads(name)), name
                    if direct:
                        assert out[inner].tobytes() == expected.tobytes(), name
                        outside = np.ones(out.shape, bool)
                        outside[inner] = False
                        assert (out[outside] == 7).all(), name
                if fast._is_raw(name):
                    raw_names.add(name)
    return raw_names


def test_daily_archive_reads_data_raw_and_time_decoded(tmp_path: Path) -> None:
    make_daily_archive(tmp_path, days=6, steps_per_file=2, variables=("tas", "pr", "psl"))
    plan = _plan(str(tmp_path / "demo_{time:%Y%m%d}.nc"),
                 {"time": {"start": "2020-01-01", "end": "2020-01-05", "freq": "2D",
                           "items_per_file": 2}})
    raw = compare_readers(plan)
    assert {"tas", "pr", "psl"} <= raw  # the data: straight from the file
    assert "time" not in raw  # per-file units: decoded and encoded again


def test_ersst_real_files(real_data: Path) -> None:
    folder = real_data / "ersstv5_monthly"
    plan = _plan(str(folder / "sst.mnmean_{time:%Y-%m}.nc"),
                 {"time": {"start": "2010-01-01", "end": "2010-03-01", "freq": "MS"}})
    compare_readers(plan)  # missing_value differs from _FillValue: sst is decoded


def test_packed_int16_netcdf3(real_data: Path, tmp_path: Path) -> None:
    original = xr.open_dataset(real_data / "xarray-data" / "eraint_uvz.nc")
    for i, month in enumerate(original.month.values):
        part = original.isel(month=[i])
        for name in part.variables:
            part[name].encoding.pop("original_shape", None)
        part.to_netcdf(tmp_path / f"eraint_{month}.nc", format="NETCDF3_64BIT")
    plan = _plan(str(tmp_path / "eraint_{month}.nc"), {"month": {"keys": [1, 7]}}, "netcdf3")
    assert {"z", "u", "v"} <= compare_readers(plan)


def _write_edge_cases(path: Path, day: int, fmt: str = "NETCDF4") -> None:
    rng = np.random.default_rng(day)
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        nc.createDimension("time", None)
        nc.createDimension("x", 5)
        nc.createDimension("nv", 2)
        time = nc.createVariable("time", "f8", ("time",))
        time.units = f"hours since 2000-01-{day:02d}"
        time.calendar = "noleap"
        time.bounds = "time_bnds"
        time[:] = [0.0, 12.0]
        bounds = nc.createVariable("time_bnds", "f8", ("time", "nv"))
        bounds[:] = [[0.0, 12.0], [12.0, 24.0]]
        x = nc.createVariable("x", "f4", ("x",))
        x[:] = np.arange(5, dtype="f4")

        values = rng.normal(size=(2, 5)).astype("f4")
        values[0, 1] = np.nan  # NaN under a numeric fill: stored as the fill
        values[1, 2] = 1e20  # the fill itself
        nan_under_fill = nc.createVariable("nan_under_fill", "f4", ("time", "x"),
                                           fill_value=np.float32(1e20))
        nan_under_fill[:] = values

        plain = nc.createVariable("no_fill", "f8", ("time", "x"), fill_value=False)
        plain[:] = np.where(values > 1e19, np.nan, values)

        both = nc.createVariable("missing_differs", "f4", ("time", "x"),
                                 fill_value=np.float32(-999.0))
        both.missing_value = np.float32(-888.0)
        both[:] = np.where(np.isnan(values), -888.0, values)

        packed = nc.createVariable("packed", "i2", ("time", "x"), fill_value=np.int16(-32767))
        packed.scale_factor = np.float32(0.01)
        packed.add_offset = np.float32(3.0)
        nc.set_auto_maskandscale(False)
        packed[:] = rng.integers(-3000, 3000, size=(2, 5)).astype("i2")
        packed[0, 0] = -32767

        if fmt == "NETCDF4":
            big = nc.createVariable("big_int", "i8", ("time", "x"), fill_value=np.int64(-1))
            big[:] = rng.integers(2**60, 2**61, size=(2, 5))
            big[1, 1] = -1
            group = nc.createGroup("inner")
            group.createDimension("time", 1)
            group.createDimension("x", 5)
            inner_time = group.createVariable("time", "i4", ("time",))
            inner_time.units = f"days since 2000-01-{day:02d}"
            inner_time[:] = [0]
            inner = group.createVariable("inner_var", "f4", ("time", "x"))
            inner[:] = np.arange(5, dtype="f4")[None, :] * day


@pytest.mark.parametrize("fmt", ["NETCDF4", "NETCDF3_CLASSIC"])
def test_edge_cases_agree(tmp_path: Path, fmt: str) -> None:
    for day in (1, 2, 3):
        _write_edge_cases(tmp_path / f"edge_{day}.nc", day, fmt)
    plan = _plan(str(tmp_path / "edge_{time}.nc"), {"time": {"keys": [1, 2, 3]}},
                 "netcdf4" if fmt == "NETCDF4" else "netcdf3")
    raw = compare_readers(plan)
    assert {"nan_under_fill", "no_fill", "packed"} <= raw
    assert not raw & {"missing_differs", "big_int", "time", "time_bnds"}


def test_groups_and_dropped_variables(tmp_path: Path) -> None:
    for day in (1, 2):
        _write_edge_cases(tmp_path / f"edge_{day}.nc", day)
    plan = _plan(str(tmp_path / "edge_{time}.nc"), {"time": {"keys": [1, 2]}},
                 open={"group": "inner"})
    assert compare_readers(plan) == {"inner_var"}
    plan = _plan(str(tmp_path / "edge_{time}.nc"), {"time": {"keys": [1, 2]}},
                 open={"drop_variables": ["packed"]},
                 transforms=[{"drop_variables": ["big_int"]}])
    raw = compare_readers(plan)
    assert "packed" not in raw and "nan_under_fill" in raw


def test_value_changing_transforms_take_the_xarray_path(tmp_path: Path) -> None:
    make_daily_archive(tmp_path, days=2)
    dims = {"time": {"start": "2020-01-01", "end": "2020-01-02", "freq": "D"}}
    pattern = str(tmp_path / "demo_{time:%Y%m%d}.nc")
    plan = _plan(pattern, dims, transforms=[{"astype": {"tas": "float64"}}])
    assert not reads_raw(plan)
    template = _template(plan)
    key, url = plan.sources()[0]
    with open_for_writing(plan, key, url, url, template) as reader:
        assert isinstance(reader, XarrayReader)
    attrs_only = [{"set_attrs": {"variables": {"tas": {"comment": "x"}}}}]
    assert reads_raw(_plan(pattern, dims, transforms=attrs_only))


def _all_index_values_agree(plan: Plan) -> None:
    """Decoded together (one write task's sources) as each file decoded by xarray alone."""
    template = _template(plan)
    sources = plan.sources()
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(open_for_writing(plan, key, url, url, template))
                   for key, url in sources]
        together = index_values_of(readers)
    assert len(together) == len(sources)
    for (key, url), got in zip(sources, together, strict=True):
        with open_transformed(plan, key, url, url) as ds:
            expected = XarrayReader(ds).index_values()
        assert set(got) == set(expected)
        for dim, values in expected.items():
            assert np.asarray(got[dim]).dtype == values.dtype, (url, dim)
            np.testing.assert_array_equal(got[dim], values)


def test_index_values_decoded_together_match_each_file(tmp_path: Path, real_data: Path) -> None:
    # Per-file time units ("days since <first day of the file>"): one group per file.
    make_daily_archive(tmp_path, days=8, steps_per_file=2, variables=("tas",))
    _all_index_values_agree(_plan(str(tmp_path / "demo_{time:%Y%m%d}.nc"),
                                  {"time": {"start": "2020-01-01", "end": "2020-01-07",
                                            "freq": "2D", "items_per_file": 2}}))
    # Shared units: every file's time decoded in one call.
    folder = real_data / "ersstv5_monthly"
    _all_index_values_agree(_plan(str(folder / "sst.mnmean_{time:%Y-%m}.nc"),
                                  {"time": {"start": "2010-01-01", "end": "2010-06-01",
                                            "freq": "MS"}}))


def test_index_values_decoded_together_blame_the_bad_file(tmp_path: Path) -> None:
    make_daily_archive(tmp_path, days=3, variables=("tas",))
    bad = tmp_path / "demo_20200102.nc"
    plan = _plan(str(tmp_path / "demo_{time:%Y%m%d}.nc"),
                 {"time": {"start": "2020-01-01", "end": "2020-01-03", "freq": "D"}})
    template = _template(plan)
    with netCDF4.Dataset(bad, "a") as nc:
        nc["time"].units = "fortnights since the flood"
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(open_for_writing(plan, key, url, url, template))
                   for key, url in plan.sources()]
        with pytest.raises(ValueError, match="fortnights") as caught:
            index_values_of(readers)
        # The same error as that file's own decoding gives.
        with pytest.raises(type(caught.value)):
            readers[1].index_values()
        assert readers[0].index_values()


@contextlib.contextmanager
def _first_reader(plan: Plan) -> Iterator[NetCDFReader]:
    template = _template(plan)
    key, url = plan.sources()[0]
    with open_for_writing(plan, key, url, url, template) as reader:
        assert isinstance(reader, NetCDFReader)
        yield reader


def test_netcdf4_handle_closed_once_every_variable_reads_through_h5py(tmp_path: Path,
                                                                      real_data: Path) -> None:
    make_daily_archive(tmp_path, days=2, variables=("tas", "pr"))
    with _first_reader(_plan(str(tmp_path / "demo_{time:%Y%m%d}.nc"),
                             {"time": {"start": "2020-01-01", "end": "2020-01-02",
                                       "freq": "D"}})) as reader:
        assert reader.nc is None  # settled: only the h5py handle is left
        assert reader.has("tas") and not reader.has("nope")
        assert reader.index_values()["time"].dtype.kind == "M"
    # ERSST's sst is decoded (missing_value differs from _FillValue): netCDF4 stays open.
    with _first_reader(_plan(str(real_data / "ersstv5_monthly" / "sst.mnmean_{time:%Y-%m}.nc"),
                             {"time": {"start": "2010-01-01", "end": "2010-01-01",
                                       "freq": "MS"}})) as reader:
        assert reader.nc is not None


def test_whole_unfiltered_chunks_are_copied_as_stored_and_the_rest_read_by_hdf5(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slice that is exactly one stored chunk without filters, in the buffer's own type, is
    copied byte for byte (HDF5's direct chunk read); compressed, big-endian, never-written
    and partial chunks go through HDF5's ordinary read. Both agree with xarray."""
    import recipes_core.reading as reading

    for day in (1, 2):
        with netCDF4.Dataset(tmp_path / f"chunks_{day}.nc", "w") as nc:
            nc.createDimension("time", 2)
            nc.createDimension("x", 6)
            time = nc.createVariable("time", "f8", ("time",))
            time.units = f"days since 2000-01-{2 * day - 1:02d}"
            time[:] = [0.0, 1.0]
            values = np.arange(12, dtype="f4").reshape(2, 6) * day
            values[0, 0] = np.nan  # NaN under the default fill: stored as the fill
            for name, options in {"plain": {}, "zipped": {"zlib": True},
                                  "big_endian": {"endian": "big", "datatype": ">f4"},
                                  "in_halves": {"chunksizes": (2, 3)}}.items():
                settings = {"datatype": "f4", "chunksizes": (2, 6), **options}
                variable = nc.createVariable(name, dimensions=("time", "x"), **settings)
                variable[:] = values
            nc.createVariable("unwritten", "f4", ("time", "x"), chunksizes=(2, 6),
                              fill_value=np.float32(-5.0))
    plan = _plan(str(tmp_path / "chunks_{time}.nc"), {"time": {"keys": [1, 2]}})
    raw = compare_readers(plan)
    assert {"plain", "zipped", "in_halves", "unwritten"} <= raw
    assert "big_endian" not in raw  # swapped into native order on the decoding path

    copied: list[str] = []
    copy = reading._read_whole_chunk

    def spy(dataset: Any, source: Any, view: np.ndarray) -> bool:
        from h5py import h5i

        done = copy(dataset, source, view)
        if done:
            copied.append(h5i.get_name(dataset).decode())
        return done

    monkeypatch.setattr(reading, "_read_whole_chunk", spy)
    template = _template(plan)
    for key, url in plan.sources():
        with open_for_writing(plan, key, url, url, template) as fast, \
                open_transformed(plan, key, url, url) as ds:
            slow = XarrayReader(ds)
            for name in sorted(raw - {"time"}):
                var = template.variables[name]
                # As in a write unit: the file's two steps are rows 1-2 of four, a run of
                # memory (and a part of one: rows 1-2, columns 0-2).
                for columns in (slice(0, 6), slice(0, 3)):
                    out = np.full((4, 6), 7, dtype="f4")
                    where = (slice(0, 2), columns)
                    assert fast.read_into(var, where, out, (slice(1, 3), columns))
                    expected = slow.read_encoded(var, where)
                    assert out[1:3, columns].tobytes() == expected.tobytes(), name
                    assert (out[0] == 7).all() and (out[3] == 7).all()
                    if columns.stop == 3:
                        assert (out[1:3, 3:] == 7).all()
    # Copied as stored: the plain variable read whole, once per file; nothing else.
    assert copied == ["/plain", "/plain"]
