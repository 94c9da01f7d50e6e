"""Unit tests of every recipe transform (:func:`recipes_core.ops.apply_transforms`).

Each test builds a small dataset in memory, parses the steps exactly as a recipe's are parsed
(the ``TransformStep`` union, or a whole recipe through the safe YAML loader) and checks the
result against what xarray itself gives. Transforms are pure: the input is never modified.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pydantic import TypeAdapter
from xarray.backends.zarr import encode_zarr_variable

from recipes_core.errors import SchemaError
from recipes_core.model import TRANSFORM_NAMES, Recipe, TransformStep
from recipes_core.ops import apply_transforms
from recipes_core.safe_yaml import load_yaml

STEP = TypeAdapter(TransformStep)


def parse(*steps: dict[str, Any]) -> list[Any]:
    return [STEP.validate_python(step) for step in steps]


def run(ds: xr.Dataset, *steps: dict[str, Any], key: dict[str, Any] | None = None) -> xr.Dataset:
    return apply_transforms(ds, parse(*steps), key=key)


def make_ds() -> xr.Dataset:
    """6 days x 5 latitudes (descending) x 4 longitudes, two variables, CF-ish metadata."""
    time = pd.date_range("2020-01-30", periods=6, freq="D")  # crosses into February
    lat = np.array([60.0, 30.0, 0.0, -30.0, -60.0])
    lon = np.array([0.0, 90.0, 180.0, 270.0])
    tas = (np.arange(6 * 5 * 4, dtype="float32").reshape(6, 5, 4) / 10 + 270).astype("float32")
    pr = np.arange(6 * 5 * 4, dtype="float64").reshape(6, 5, 4)
    ds = xr.Dataset(
        {
            "tas": (("time", "lat", "lon"), tas, {"units": "K", "long_name": "air temperature"}),
            "pr": (("time", "lat", "lon"), pr, {"units": "mm"}),
            "lat_bnds": (("lat", "bnds"), np.stack([lat + 15, lat - 15], axis=1)),
        },
        coords={
            "time": ("time", time, {"standard_name": "time"}),
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
            "height": ((), 2.0, {"units": "m"}),
        },
        attrs={"title": "A test dataset", "history": "made by a test", "Conventions": "CF-1.8"},
    )
    ds["tas"].encoding = {
        "dtype": np.dtype("int16"),
        "scale_factor": 0.01,
        "add_offset": 273.15,
        "_FillValue": np.int16(-32768),
        "missing_value": np.int16(-32767),
        "zlib": True,
    }
    ds["time"].encoding = {"units": "days since 2000-01-01", "calendar": "standard"}
    return ds


@pytest.fixture
def ds() -> xr.Dataset:
    return make_ds()


def snapshot(ds: xr.Dataset) -> tuple[xr.Dataset, dict[str, Any], dict[str, Any]]:
    """A deep copy plus every variable's attrs and encoding, to check purity afterwards."""
    return (
        ds.copy(deep=True),
        {n: copy.deepcopy(v.attrs) for n, v in ds.variables.items()},
        {n: copy.deepcopy(v.encoding) for n, v in ds.variables.items()},
    )


def assert_unchanged(ds: xr.Dataset, before: tuple[xr.Dataset, dict, dict]) -> None:
    copy_, attrs, encodings = before
    xr.testing.assert_identical(ds, copy_)
    assert {n: v.attrs for n, v in ds.variables.items()} == attrs
    assert {n: v.encoding for n, v in ds.variables.items()} == encodings


# ---- one example per registered transform -----------------------------------------------------

EXAMPLES: dict[str, dict[str, Any]] = {
    "select_variables": {"select_variables": ["tas"]},
    "drop_variables": {"drop_variables": ["pr"]},
    "rename": {"rename": {"lat": "latitude"}},
    "set_attrs": {"set_attrs": {"dataset": {"title": "x"}}},
    "sel": {"sel": {"lat": {"start": 30, "stop": -30}}},
    "isel": {"isel": {"time": {"stop": 2}}},
    "astype": {"astype": {"pr": "float32"}},
    "squeeze": {"squeeze": []},
    "expand_dims": {"expand_dims": {"dim": "member", "value": 1}},
    "set_encoding": {"set_encoding": {"pr": {"dtype": "float32"}}},
}


def test_every_registered_transform_has_an_example() -> None:
    assert set(EXAMPLES) == set(TRANSFORM_NAMES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_transform_is_pure(ds: xr.Dataset, name: str) -> None:
    before = snapshot(ds)
    out = run(ds, EXAMPLES[name])
    assert out is not ds
    assert_unchanged(ds, before)


def test_steps_apply_in_order(ds: xr.Dataset) -> None:
    out = run(ds, {"rename": {"tas": "t"}}, {"select_variables": ["t"]},
              {"set_attrs": {"variables": {"t": {"comment": "renamed first"}}}})
    assert list(out.data_vars) == ["t"]
    assert out.t.attrs["comment"] == "renamed first"


def test_no_steps_returns_the_dataset(ds: xr.Dataset) -> None:
    assert apply_transforms(ds, []) is ds


# ---- select_variables / drop_variables ----------------------------------------------------------


def test_select_variables_keeps_the_coordinates_they_need(ds: xr.Dataset) -> None:
    out = run(ds, {"select_variables": ["tas"]})
    xr.testing.assert_identical(out, ds[["tas"]])
    assert list(out.data_vars) == ["tas"]
    assert set(out.coords) == {"time", "lat", "lon", "height"}
    assert "bnds" not in out.dims  # lat_bnds went, and with it its private dimension
    assert out.tas.encoding == ds.tas.encoding
    assert out.attrs == ds.attrs


def test_select_variables_in_the_order_given(ds: xr.Dataset) -> None:
    assert list(run(ds, {"select_variables": ["pr", "tas"]}).data_vars) == ["pr", "tas"]


def test_drop_variables_data_and_coordinates(ds: xr.Dataset) -> None:
    out = run(ds, {"drop_variables": ["pr", "lat_bnds", "height"]})
    xr.testing.assert_identical(out, ds.drop_vars(["pr", "lat_bnds", "height"]))
    assert list(out.data_vars) == ["tas"]
    assert "height" not in out.coords


# ---- rename -------------------------------------------------------------------------------------


def test_rename_variables_and_dimension_coordinates(ds: xr.Dataset) -> None:
    out = run(ds, {"rename": {"tas": "air_temperature", "lat": "latitude", "lon": "longitude"}})
    assert set(out.data_vars) == {"air_temperature", "pr", "lat_bnds"}
    assert out.air_temperature.dims == ("time", "latitude", "longitude")
    assert out.lat_bnds.dims == ("latitude", "bnds")
    assert out.indexes["latitude"].equals(ds.indexes["lat"])
    assert out.latitude.attrs == {"units": "degrees_north"}
    assert out.air_temperature.attrs == ds.tas.attrs
    assert out.air_temperature.encoding == ds.tas.encoding  # packing follows the rename
    xr.testing.assert_identical(
        out, ds.rename(tas="air_temperature", lat="latitude", lon="longitude"))


def test_rename_a_dimension_without_coordinate(ds: xr.Dataset) -> None:
    out = run(ds, {"rename": {"bnds": "nv"}})
    assert out.lat_bnds.dims == ("lat", "nv")
    assert "bnds" not in out.dims


# ---- set_attrs ----------------------------------------------------------------------------------


def test_set_attrs_sets_and_deletes_on_dataset_and_variables(ds: xr.Dataset) -> None:
    out = run(ds, {"set_attrs": {
        "dataset": {"title": "New title", "history": None, "version": 2,
                    "keywords": ["a", "b"], "not_there": None},
        "variables": {
            "tas": {"units": "degC", "long_name": None, "valid_range": [-90.5, 60.0]},
            "lat": {"axis": "Y"},
            "height": {"units": None},
        },
    }})
    assert out.attrs == {"title": "New title", "Conventions": "CF-1.8", "version": 2,
                         "keywords": ["a", "b"]}
    assert out.tas.attrs == {"units": "degC", "valid_range": [-90.5, 60.0]}
    assert out.lat.attrs == {"units": "degrees_north", "axis": "Y"}
    assert out.height.attrs == {}
    assert out.pr.attrs == ds.pr.attrs
    xr.testing.assert_equal(out, ds)  # values untouched
    assert out.tas.encoding == ds.tas.encoding


def test_set_attrs_only_variables(ds: xr.Dataset) -> None:
    out = run(ds, {"set_attrs": {"variables": {"pr": {"comment": "c"}}}})
    assert out.attrs == ds.attrs
    assert out.pr.attrs == {"units": "mm", "comment": "c"}


# ---- sel ----------------------------------------------------------------------------------------


def test_sel_scalar_drops_the_dimension(ds: xr.Dataset) -> None:
    out = run(ds, {"sel": {"lat": 30}})
    xr.testing.assert_identical(out, ds.sel(lat=30))
    assert "lat" not in out.dims
    assert float(out.lat) == 30.0  # kept as a scalar coordinate


def test_sel_label_slice_on_descending_latitude(ds: xr.Dataset) -> None:
    out = run(ds, {"sel": {"lat": {"start": 45, "stop": -30}}})
    np.testing.assert_array_equal(out.lat.values, [30.0, 0.0, -30.0])
    xr.testing.assert_identical(out, ds.sel(lat=slice(45, -30)))


def test_sel_label_slice_with_step(ds: xr.Dataset) -> None:
    out = run(ds, {"sel": {"lon": {"start": 0, "stop": 270, "step": 2}}})
    np.testing.assert_array_equal(out.lon.values, [0.0, 180.0])


def test_sel_several_dimensions_at_once(ds: xr.Dataset) -> None:
    out = run(ds, {"sel": {"lat": 0, "lon": {"start": 90, "stop": 180}}})
    xr.testing.assert_identical(out, ds.sel(lat=0.0, lon=slice(90, 180)))


def test_sel_datetime_strings_on_a_time_axis(ds: xr.Dataset) -> None:
    out = run(ds, {"sel": {"time": {"start": "2020-01-31", "stop": "2020-02-02"}}})
    np.testing.assert_array_equal(
        out.time.values, pd.date_range("2020-01-31", "2020-02-02", freq="D").values)
    xr.testing.assert_identical(out, ds.sel(time=slice("2020-01-31", "2020-02-02")))
    scalar = run(ds, {"sel": {"time": "2020-02-01T00:00"}})
    assert "time" not in scalar.dims
    assert scalar.time.values == np.datetime64("2020-02-01", "ns")


def test_sel_partial_dates_select_like_xarray(ds: xr.Dataset) -> None:
    """A month as the stop includes the whole month, as in ``ds.sel(time=slice(..))``.

    Regression: labels used to be cast to one instant, so ``stop: 2020-01`` kept only
    2020-01-01 and earlier, and a month as a scalar picked a single day.
    """
    out = run(ds, {"sel": {"time": {"start": "2020-01", "stop": "2020-01"}}})
    np.testing.assert_array_equal(out.time.dt.day.values, [30, 31])
    xr.testing.assert_identical(out, ds.sel(time=slice("2020-01", "2020-01")))
    february = run(ds, {"sel": {"time": "2020-02"}})
    xr.testing.assert_identical(february, ds.sel(time="2020-02"))
    assert february.sizes["time"] == 4
    # a bare year, which YAML reads as an integer
    assert run(ds, {"sel": {"time": {"start": 2020}}}).sizes["time"] == 6


def test_sel_with_a_label_that_is_not_there_is_a_schema_error(ds: xr.Dataset) -> None:
    with pytest.raises(SchemaError, match=r"transform 1 \(sel\) failed"):
        run(ds, {"sel": {"lat": 45}})


# ---- isel ---------------------------------------------------------------------------------------


def test_isel_integer_drops_the_dimension(ds: xr.Dataset) -> None:
    out = run(ds, {"isel": {"time": 0}})
    xr.testing.assert_identical(out, ds.isel(time=0))
    assert "time" not in out.dims
    assert out.time.values == np.datetime64("2020-01-30", "ns")
    assert run(ds, {"isel": {"time": -1}}).time.values == np.datetime64("2020-02-04", "ns")


def test_isel_slice_with_step(ds: xr.Dataset) -> None:
    out = run(ds, {"isel": {"time": {"start": 1, "stop": 6, "step": 2}, "lat": {"stop": -1}}})
    xr.testing.assert_identical(out, ds.isel(time=slice(1, 6, 2), lat=slice(None, -1)))
    assert out.sizes["time"] == 3 and out.sizes["lat"] == 4


def test_isel_out_of_range_is_a_schema_error(ds: xr.Dataset) -> None:
    """Regression: numpy's IndexError escaped as a bare traceback instead of a SchemaError."""
    with pytest.raises(SchemaError, match=r"transform 1 \(isel\) failed: .*out of bounds"):
        run(ds, {"isel": {"time": 99}})


def test_isel_step_must_be_positive() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        parse({"isel": {"time": {"step": 0}}})


# ---- astype -------------------------------------------------------------------------------------


def test_astype_casts_and_keeps_attrs_and_packing(ds: xr.Dataset) -> None:
    out = run(ds, {"astype": {"tas": "float64", "pr": "float32"}})
    assert out.tas.dtype == np.float64 and out.pr.dtype == np.float32
    np.testing.assert_array_equal(out.tas.values, ds.tas.values.astype("float64"))
    assert out.tas.attrs == ds.tas.attrs
    # The stored dtype follows the cast; the rest of the encoding stays.
    assert "dtype" not in out.tas.encoding
    assert out.tas.encoding["scale_factor"] == 0.01
    assert out.tas.encoding["_FillValue"] == -32768
    assert out.tas.dims == ds.tas.dims


def test_astype_to_integer_and_bool(ds: xr.Dataset) -> None:
    out = run(ds, {"astype": {"pr": "int32", "lat_bnds": "bool"}})
    assert out.pr.dtype == np.int32
    np.testing.assert_array_equal(out.pr.values, ds.pr.values.astype("int32"))
    assert out.lat_bnds.dtype == bool


def test_astype_rejects_unknown_dtypes() -> None:
    with pytest.raises(ValueError, match="float32"):
        parse({"astype": {"tas": "complex128"}})


# ---- squeeze ------------------------------------------------------------------------------------


def test_squeeze_all_length_one_dimensions(ds: xr.Dataset) -> None:
    one = ds.isel(time=[0], lon=[1])
    out = run(one, {"squeeze": []})
    assert out.tas.dims == ("lat",)
    assert out.time.values == one.time.values[0]  # kept as scalar coordinates
    assert float(out.lon) == 90.0
    xr.testing.assert_identical(out, one.squeeze())


def test_squeeze_named_dimension_only(ds: xr.Dataset) -> None:
    one = ds.isel(time=[0], lon=[1])
    out = run(one, {"squeeze": ["time"]})
    assert out.tas.dims == ("lat", "lon")
    xr.testing.assert_identical(out, one.squeeze("time"))


def test_squeeze_a_longer_dimension_is_a_schema_error(ds: xr.Dataset) -> None:
    with pytest.raises(SchemaError, match=r"transform 1 \(squeeze\) failed"):
        run(ds, {"squeeze": ["lat"]})


# ---- expand_dims --------------------------------------------------------------------------------


def test_expand_dims_with_a_fixed_value(ds: xr.Dataset) -> None:
    out = run(ds, {"expand_dims": {"dim": "member", "value": 3}})
    assert out.tas.dims == ("member", "time", "lat", "lon")
    np.testing.assert_array_equal(out.member.values, [3])
    xr.testing.assert_identical(out, ds.expand_dims(member=[3]))
    text = run(ds, {"expand_dims": {"dim": "model", "value": "cesm2"}})
    assert text.model.values.tolist() == ["cesm2"]


def test_expand_dims_without_value_adds_a_dimension_without_coordinate(ds: xr.Dataset) -> None:
    out = run(ds, {"expand_dims": {"dim": "member"}})
    assert out.sizes["member"] == 1
    assert "member" not in out.coords


def test_expand_dims_from_key_takes_the_files_date(ds: xr.Dataset) -> None:
    day = ds.isel(time=0, drop=True)  # a file without a time axis
    out = run(day, {"expand_dims": {"dim": "time", "from_key": True}},
              key={"time": datetime(2021, 3, 4, 6)})
    assert out.tas.dims == ("time", "lat", "lon")
    assert out.time.dtype == np.dtype("datetime64[ns]")
    np.testing.assert_array_equal(out.time.values, [np.datetime64("2021-03-04T06:00", "ns")])


def test_expand_dims_from_key_with_a_plain_key(ds: xr.Dataset) -> None:
    out = run(ds, {"expand_dims": {"dim": "member", "from_key": True}},
              key={"member": 7, "time": datetime(2020, 1, 1)})
    np.testing.assert_array_equal(out.member.values, [7])


def test_expand_dims_from_key_replaces_a_scalar_coordinate(ds: xr.Dataset) -> None:
    """The file's scalar ``time`` becomes the dimension, with the key's value.

    Its attributes and stored time units stay (regression: they were dropped with the old
    scalar, so a GRIB ``time`` lost ``standard_name: forecast_reference_time``).
    """
    day = ds.isel(time=0)
    assert day.time.dims == ()
    out = run(day, {"expand_dims": {"dim": "time", "from_key": True}},
              key={"time": datetime(2021, 1, 1)})
    assert out.tas.dims == ("time", "lat", "lon")
    np.testing.assert_array_equal(out.time.values, [np.datetime64("2021-01-01", "ns")])
    assert out.time.attrs == {"standard_name": "time"}
    assert out.time.encoding == {"units": "days since 2000-01-01", "calendar": "standard"}
    assert out.indexes["time"][0] == pd.Timestamp("2021-01-01")


def test_expand_dims_replacing_with_another_kind_drops_the_time_encoding(
    ds: xr.Dataset,
) -> None:
    day = ds.isel(time=0)
    out = run(day, {"expand_dims": {"dim": "time", "value": "first"}})
    assert out.time.values.tolist() == ["first"]
    assert out.time.attrs == {"standard_name": "time"}
    assert "units" not in out.time.encoding  # a string is not encoded as days since ...


def test_expand_dims_without_value_promotes_a_scalar_coordinate(ds: xr.Dataset) -> None:
    day = ds.isel(time=0)
    out = run(day, {"expand_dims": {"dim": "time"}})
    xr.testing.assert_identical(out, day.expand_dims("time"))
    np.testing.assert_array_equal(out.time.values, [np.datetime64("2020-01-30", "ns")])


def test_expand_dims_from_key_needs_the_pattern_dimension(ds: xr.Dataset) -> None:
    with pytest.raises(SchemaError, match="from_key needs a pattern dimension named 'member'"):
        run(ds, {"expand_dims": {"dim": "member", "from_key": True}},
            key={"time": datetime(2020, 1, 1)})
    with pytest.raises(SchemaError, match="from_key needs a pattern dimension"):
        run(ds, {"expand_dims": {"dim": "member", "from_key": True}})  # no key at all


def test_expand_dims_on_an_existing_dimension_is_a_schema_error(ds: xr.Dataset) -> None:
    with pytest.raises(SchemaError, match=r"transform 1 \(expand_dims\) failed"):
        run(ds, {"expand_dims": {"dim": "lat", "value": 1}})


# ---- set_encoding -------------------------------------------------------------------------------


def test_set_encoding_dtype_fill_and_packing(ds: xr.Dataset) -> None:
    out = run(ds, {"set_encoding": {"pr": {"dtype": "int32", "_FillValue": -1,
                                           "scale_factor": 0.5, "add_offset": 10.0}}})
    assert out.pr.encoding == {"dtype": "int32", "_FillValue": -1, "scale_factor": 0.5,
                               "add_offset": 10.0}
    xr.testing.assert_identical(out, ds)  # encoding only: values and attrs untouched
    # And xarray really stores it that way.
    stored = encode_zarr_variable(out.pr.variable, name="pr")
    assert stored.dtype == np.int32
    np.testing.assert_array_equal(stored.values, np.round((ds.pr.values - 10.0) / 0.5))
    assert stored.attrs["scale_factor"] == 0.5 and stored.attrs["_FillValue"] == -1


def test_set_encoding_keeps_the_keys_it_does_not_name(ds: xr.Dataset) -> None:
    out = run(ds, {"set_encoding": {"tas": {"scale_factor": 0.02}}})
    assert out.tas.encoding == {**ds.tas.encoding, "scale_factor": 0.02}


def test_set_encoding_null_removes_a_key_and_drop_missing_value(ds: xr.Dataset) -> None:
    out = run(ds, {"set_encoding": {"tas": {"_FillValue": None, "add_offset": None,
                                            "drop_missing_value": True}}})
    assert out.tas.encoding == {"dtype": np.dtype("int16"), "scale_factor": 0.01, "zlib": True}
    kept = run(ds, {"set_encoding": {"tas": {"drop_missing_value": False}}})
    assert kept.tas.encoding == ds.tas.encoding


def test_set_encoding_time_units_and_calendar(ds: xr.Dataset) -> None:
    out = run(ds, {"set_encoding": {"time": {"units": "hours since 2020-01-01",
                                             "calendar": "proleptic_gregorian",
                                             "dtype": "int32"}}})
    assert out.time.encoding == {"units": "hours since 2020-01-01",
                                 "calendar": "proleptic_gregorian", "dtype": "int32"}
    stored = encode_zarr_variable(out.time.variable, name="time")
    assert stored.attrs["units"] == "hours since 2020-01-01"
    assert stored.attrs["calendar"] == "proleptic_gregorian"
    np.testing.assert_array_equal(stored.values, [696, 720, 744, 768, 792, 816])
    assert stored.dtype == np.int32


def test_set_encoding_from_yaml_uses_the_fillvalue_alias() -> None:
    text = """
transforms:
  - set_encoding:
      pr: {dtype: int16, _FillValue: -999, scale_factor: 0.1}
      tas: {_FillValue: null, drop_missing_value: true}
"""
    data, _ = load_yaml(text)
    recipe = Recipe.model_validate({
        "id": "ops-test", "title": "t", "description": "d", "license": "CC0-1.0",
        "maintainers": [{"name": "Tester"}],
        "source": {"pattern": "f_{time:%Y%m%d}.nc",
                   "dims": {"time": {"start": "2020-01-30", "end": "2020-02-04", "freq": "D"}}},
        **data,
    })
    step = recipe.transforms[0]
    assert step.set_encoding["pr"].fill_value == -999
    out = apply_transforms(make_ds(), recipe.transforms)
    assert out.pr.encoding == {"dtype": "int16", "_FillValue": -999, "scale_factor": 0.1}
    assert "_FillValue" not in out.tas.encoding and "missing_value" not in out.tas.encoding
    # the Python name is accepted as well
    assert parse({"set_encoding": {"pr": {"fill_value": 1}}})[0].set_encoding["pr"].fill_value == 1


def test_set_encoding_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        parse({"set_encoding": {"pr": {"compressor": "zlib"}}})


# ---- errors name the step, its position and what the dataset has --------------------------------


@pytest.mark.parametrize(
    ("step", "what"),
    [
        ({"select_variables": ["tas", "sst"]}, "variable(s) sst"),
        ({"drop_variables": ["sst"]}, "variable(s) sst"),
        ({"rename": {"sst": "sea_surface_temperature"}}, "name(s) sst"),
        ({"set_attrs": {"variables": {"sst": {"units": "K"}}}}, "variable(s) sst"),
        ({"sel": {"latitude": 0}}, "dimension(s) latitude"),
        ({"isel": {"latitude": 0}}, "dimension(s) latitude"),
        ({"astype": {"sst": "float32"}}, "variable(s) sst"),
        ({"squeeze": ["ensemble"]}, "dimension(s) ensemble"),
        ({"set_encoding": {"sst": {"dtype": "int16"}}}, "variable(s) sst"),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else None,
)
def test_a_missing_name_is_a_schema_error_naming_the_step(
    ds: xr.Dataset, step: dict[str, Any], what: str
) -> None:
    name = next(iter(step))
    steps = parse({"set_attrs": {"dataset": {"a": 1}}}, step)
    with pytest.raises(SchemaError) as info:
        apply_transforms(ds, steps, where="https://host/file_2020.nc")
    error = info.value
    assert error.message.startswith(f"transform 2 ({name}) failed: {what} not in the dataset")
    assert "(it has: height, lat, lat_bnds, lon, pr, tas, time)" in error.message
    assert error.where == "https://host/file_2020.nc"
    assert "transforms[1]" in error.fix
    assert str(error).startswith("https://host/file_2020.nc: transform 2")


def test_the_error_lists_what_the_dataset_has_at_that_step(ds: xr.Dataset) -> None:
    """After a rename, the listing shows the new names, not the file's."""
    with pytest.raises(SchemaError) as info:
        run(ds, {"select_variables": ["tas"]}, {"rename": {"lat": "latitude"}},
            {"drop_variables": ["lat"]})
    error = info.value
    assert error.message == (
        "transform 3 (drop_variables) failed: variable(s) lat not in the dataset "
        "(it has: height, latitude, lon, tas, time)"
    )
    assert error.where is None


def test_a_schema_error_pickles(ds: xr.Dataset) -> None:
    import pickle

    with pytest.raises(SchemaError) as info:
        apply_transforms(ds, parse({"drop_variables": ["sst"]}), where="f.nc")
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == str(info.value)
