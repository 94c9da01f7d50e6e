"""NaNs stored in a float variable become the target's numeric fill value, and only they."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from recipes_core.schema import VariableSchema
from recipes_core.stored_encoding import nan_to_fill


def _var(dtype: str, fill: float | None) -> VariableSchema:
    encoding = {} if fill is None else {"_FillValue": fill}
    return VariableSchema("v", ("x",), (0,), dtype, {}, encoding, False)


@given(hnp.arrays(st.sampled_from(["f4", "f8"]), hnp.array_shapes(min_dims=1, max_dims=3),
                  elements=st.floats(allow_nan=True, allow_infinity=True, width=32)))
def test_every_nan_and_only_nans_become_the_fill_value(data: np.ndarray) -> None:
    fixed = nan_to_fill(data.copy(), _var(data.dtype.str, -9999.0))
    expected = np.where(np.isnan(data), data.dtype.type(-9999.0), data)
    np.testing.assert_array_equal(fixed, expected)
    assert fixed.dtype == data.dtype


def test_without_nans_the_array_itself_comes_back() -> None:
    data = np.array([1.0, np.inf, -np.inf], "f4")
    assert nan_to_fill(data, _var("f4", -9999.0)) is data
    assert nan_to_fill(np.empty(0, "f4"), _var("f4", 1.0)).size == 0


def test_nans_stay_when_the_target_fill_is_nan_or_absent_or_the_data_integers() -> None:
    data = np.array([np.nan, 1.0])
    assert np.isnan(nan_to_fill(data, _var("f8", float("nan")))[0])
    assert np.isnan(nan_to_fill(data, _var("f8", None))[0])
    ints = np.array([1, 2], "i2")
    assert nan_to_fill(ints, _var("i2", -1)) is ints
