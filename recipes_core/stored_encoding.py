"""Whether a variable's stored values already are what the target stores.

A netCDF source's variable can be copied to the target byte for byte, skipping CF decoding and
encoding again, when that round trip is the identity on its values: the rules are in
:func:`stored_as_target`. Both netCDF readers (:mod:`recipes_core.reading`, and the h5py-only
view of :mod:`recipes_core.netcdf4_layout`) decide with it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from recipes_core.schema import VariableSchema

# The attributes :func:`stored_as_target` looks at.
ENCODING_ATTRIBUTES = ("_FillValue", "missing_value", "scale_factor", "add_offset",
                       "_Unsigned", "_Encoding")


def native_byte_order(values: np.ndarray) -> np.ndarray:
    """``values`` in this machine's byte order (a copy only when they are not already)."""
    return values if values.dtype.isnative else values.astype(values.dtype.newbyteorder("="))


def _target_fill(encoding: Mapping[str, Any]) -> Any:
    fill = encoding.get("_FillValue")
    return encoding.get("missing_value") if fill is None else fill


def _same_value(a: Any, b: Any, dtype: np.dtype) -> bool:
    """Whether two attribute values are the same number once stored as ``dtype``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x, y = np.asarray(a).astype(dtype), np.asarray(b).astype(dtype)
            exact = np.asarray(a).astype(np.float64) == x.astype(np.float64)
    except (TypeError, ValueError):
        return False
    if dtype.kind == "f" and np.isnan(x).all() and np.isnan(y).all():
        return True
    return x.shape == y.shape and bool(np.all(x == y)) and bool(np.all(exact))


def stored_as_target(attrs: Mapping[str, Any], dtype: np.dtype, var: VariableSchema) -> bool:
    """Whether CF-decoding then encoding ``var`` is the identity on these stored values.

    That holds when the stored dtype is the target's, the packing is the same (integers of at
    most 16 bits only, whose round trip through floating point is exact), and every value that
    decoding masks is the target's fill value. The one remaining difference, NaNs stored in a
    float variable whose target fill is a number, is fixed by :func:`nan_to_fill`.
    """
    encoding = var.encoding
    decoded = np.dtype(var.dtype)
    target = np.dtype(encoding.get("dtype", var.dtype))
    if dtype.newbyteorder("=") != target or dtype.kind not in "iuf" or decoded.kind in "mMOSU":
        return False
    if "_Unsigned" in attrs or "_Encoding" in attrs:
        return False
    for packing in ("scale_factor", "add_offset"):
        if (packing in attrs) != (packing in encoding):
            return False
        if packing in attrs and (
            dtype.kind not in "iu" or dtype.itemsize > 2
            or not _same_value(attrs[packing], encoding[packing], np.dtype(np.float64))
        ):
            return False
    masked = [np.atleast_1d(attrs[k]) for k in ("_FillValue", "missing_value") if k in attrs]
    if masked and dtype.kind in "iu" and dtype.itemsize > 4:
        return False  # decoding would promote to float64 and round large integers
    fill = _target_fill(encoding)
    return all(fill is not None and _same_value(value, fill, target)
               for values in masked for value in values)


def nan_to_fill(data: np.ndarray, var: VariableSchema) -> np.ndarray:
    fill = _target_fill(var.encoding)
    # min propagates NaN: one pass and no mask in the common case, where there is none
    if data.dtype.kind == "f" and fill is not None and not np.isnan(fill) and data.size and (
            np.isnan(np.min(data))):
        data = np.where(np.isnan(data), data.dtype.type(fill), data)
    return data
