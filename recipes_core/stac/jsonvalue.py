"""Turn netCDF attribute values (numpy scalars and arrays, bytes, NaN) into strict JSON values.

STAC documents must be strict JSON: ``json.dumps`` happily writes ``NaN``, which browsers,
pystac-client and jsonschema all reject, and numpy scalars do not serialise at all.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def json_value(value: Any) -> Any:
    """A JSON-safe copy of ``value``: NaN and infinities become the strings "nan", "inf"."""
    if isinstance(value, np.ndarray):
        return json_value(value[()]) if value.ndim == 0 else [json_value(v) for v in value]
    if isinstance(value, np.floating) and value.dtype.itemsize < 8:
        # float32 -1.8 is -1.7999999523162842 as a double; its shortest repr is what was meant.
        return json_value(float(str(value)))
    if isinstance(value, np.generic):
        return json_value(value.item())
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)
