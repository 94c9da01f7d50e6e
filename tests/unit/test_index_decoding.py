"""A time coordinate decoded by xarray's datetime decoder alone equals xarray's decoding.

``reading._dates_of`` skips ``decode_cf_variables`` (its trial decode and lazy wrapper) for
time coordinates that only that decoder touches; here every value, dtype and cftime object
it returns is compared with ``decode_cf_variables``, over units, calendars, reference dates,
value types and ranges, including values past datetime64[ns] and non-standard calendars.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from xarray.conventions import decode_cf_variables

from recipes_core.reading import _dates_of

OPTIONS = {"mask_and_scale": True, "decode_times": True, "decode_timedelta": None,
           "drop_variables": None}
CALENDARS = [None, "standard", "gregorian", "proleptic_gregorian", "noleap", "365_day",
             "all_leap", "366_day", "360_day", "julian"]


def xarray_decoding(var: xr.Variable) -> Any:
    """What index_values_of did before: decode_cf_variables, then the values (or the error)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=xr.SerializationWarning)
            return np.asarray(decode_cf_variables({"t": var}, {}, **OPTIONS)[0]["t"].values)
    except Exception as error:
        return error


@settings(max_examples=150, deadline=None)
@given(
    unit=st.sampled_from(["days", "hours", "minutes", "seconds", "milliseconds"]),
    reference=st.sampled_from(["2000-01-01", "1850-01-01 00:00:00", "2000-12-30 12:00",
                               "0001-01-01", "1970-01-01T00:00:00Z", "2020-02-29"]),
    calendar=st.sampled_from(CALENDARS),
    dtype=st.sampled_from(["f8", "f4", "i4", "i8", "u2"]),
    values=st.lists(st.integers(-10**6, 10**7), min_size=1, max_size=8),
    half=st.booleans(),
)
def test_the_datetime_decoder_alone_gives_what_xarrays_decoding_gives(
        unit: str, reference: str, calendar: str | None, dtype: str, values: list[int],
        half: bool) -> None:
    data = np.array(values, dtype="f8") + (0.5 if half and dtype.startswith("f") else 0.0)
    data = data.astype(dtype) if dtype != "u2" else np.abs(data).astype("u2")
    attrs = {"units": f"{unit} since {reference}", "standard_name": "time"}
    if calendar is not None:
        attrs["calendar"] = calendar
    var = xr.Variable(("t",), data, attrs)
    expected = xarray_decoding(var)
    got = _dates_of(var, OPTIONS)
    if isinstance(expected, Exception):
        assert got is None  # the caller runs xarray's decoding, which raises as before
        return
    if got is None:
        return  # the decoder alone refused: xarray's decoding runs and gives `expected`
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    assert list(got) == list(expected)


@pytest.mark.parametrize("attrs, options", [
    ({"units": "days since 2000-01-01", "_FillValue": -1.0}, OPTIONS),
    ({"units": "days since 2000-01-01", "missing_value": -1.0}, OPTIONS),
    ({"units": "days since 2000-01-01", "scale_factor": 2.0}, OPTIONS),
    ({"units": "days since 2000-01-01", "add_offset": 1.0}, OPTIONS),
    ({"units": "days since 2000-01-01", "dtype": "timedelta64[ns]"}, OPTIONS),
    ({"units": "days"}, OPTIONS),  # a duration: the timedelta decoder's
    ({"units": "metres"}, OPTIONS),
    ({}, OPTIONS),
    ({"units": "days since 2000-01-01", "calendar": 360}, OPTIONS),
    ({"units": "days since 2000-01-01"}, {**OPTIONS, "decode_times": False}),
])
def test_anything_more_than_the_datetime_decoder_takes_xarrays_way(
        attrs: dict[str, Any], options: dict[str, Any]) -> None:
    assert _dates_of(xr.Variable(("t",), np.arange(3.0), attrs), options) is None


def test_big_endian_values_take_xarrays_way() -> None:
    var = xr.Variable(("t",), np.arange(3.0).astype(">f8"), {"units": "days since 2000-01-01"})
    assert _dates_of(var, OPTIONS) is None
