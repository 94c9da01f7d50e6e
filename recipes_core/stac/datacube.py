"""``cube:dimensions`` and ``cube:variables`` (datacube extension v2.2.0) from an opened store.

Dimensions: the time axis is ``temporal`` with an ISO 8601 ``step`` when regular (P1M, P1D,
PT1H; ``null`` when irregular, with the values listed); longitude/latitude or projected x/y are
``spatial`` with their axis, extent, signed step (descending latitudes step -2.0) and reference
system; a CF vertical coordinate is ``spatial`` axis ``z`` (the spec's vertical dimension); every
other dimension (ensemble members, bounds, unnamed indices) is of type ``other`` with its values
or its extent. Extents of dimensions are coordinate values (the labels), as in the spec's
examples; the collection's bbox is where cell edges count (see :mod:`.extents`).

Variables carry the v2.2 fields (``type`` data/auxiliary, ``dimensions``, ``unit``,
``description``) plus what a reader wants before opening the store: ``shape``, ``chunks``,
``nodata``, ``data_type`` and the variable's ``attrs``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pystac
import xarray as xr
from pystac.extensions.datacube import (
    AdditionalDimension,
    DatacubeExtension,
    Dimension,
    DimensionType,
    HorizontalSpatialDimension,
    HorizontalSpatialDimensionAxis,
    TemporalDimension,
    Variable,
    VariableType,
    VerticalSpatialDimension,
    VerticalSpatialDimensionAxis,
)

from recipes_core.stac.axes import Axes
from recipes_core.stac.extents import SpatialExtent, iso_step, regular_step, to_iso
from recipes_core.stac.jsonvalue import json_value

# Dimensions with at most this many steps list their values; longer ones give an extent only.
MAX_VALUES = 1000
# The raster extension's data types, which the datacube spec borrows for ``data_type``.
DATA_TYPES = {
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128",
}


class CubeVariable(Variable):
    """pystac's datacube Variable, with typed access to the fields it does not model yet."""

    @property
    def shape(self) -> list[int] | None:
        return self.properties.get("shape")

    @shape.setter
    def shape(self, v: list[int] | None) -> None:
        self._set("shape", v)

    @property
    def chunks(self) -> list[int] | None:
        return self.properties.get("chunks")

    @chunks.setter
    def chunks(self, v: list[int] | None) -> None:
        self._set("chunks", v)

    @property
    def nodata(self) -> float | str | None:
        return self.properties.get("nodata")

    @nodata.setter
    def nodata(self, v: float | str | None) -> None:
        self._set("nodata", v)

    @property
    def data_type(self) -> str | None:
        return self.properties.get("data_type")

    @data_type.setter
    def data_type(self, v: str | None) -> None:
        self._set("data_type", v)

    @property
    def attrs(self) -> dict[str, Any] | None:
        return self.properties.get("attrs")

    @attrs.setter
    def attrs(self, v: dict[str, Any] | None) -> None:
        self._set("attrs", v)

    def _set(self, key: str, value: Any) -> None:
        if value is None:
            self.properties.pop(key, None)
        else:
            self.properties[key] = value


def _description(var: xr.Variable) -> str | None:
    for key in ("long_name", "description", "standard_name"):
        if var.attrs.get(key):
            return str(var.attrs[key])
    return None


def _numbers(values: np.ndarray) -> list[float | int]:
    return [v.item() if isinstance(v, np.generic) else v for v in values.tolist()]


def _temporal(ds: xr.Dataset, name: str) -> TemporalDimension:
    dim = TemporalDimension({})
    dim.dim_type = DimensionType.TEMPORAL
    values = np.asarray(ds[name].values)
    dim.extent = [to_iso(values.min()), to_iso(values.max())]
    step = iso_step(values)
    dim.step = step  # null marks irregular steps, as the spec asks
    if step is None and values.size > 1 and values.size <= MAX_VALUES:
        dim.values = [to_iso(v) for v in values]
    if values.size < 2:
        dim.clear_step()
    dim.description = _description(ds[name].variable)
    return dim


def _horizontal(
    ds: xr.Dataset, name: str, axis: HorizontalSpatialDimensionAxis, spatial: SpatialExtent
) -> HorizontalSpatialDimension:
    dim = HorizontalSpatialDimension({})
    dim.dim_type = DimensionType.SPATIAL
    dim.axis = axis
    if name in ds.coords and ds[name].dtype.kind in "iuf":
        values = np.asarray(ds[name].values, dtype=float)
        dim.extent = [float(np.nanmin(values)), float(np.nanmax(values))]
        dim.step = regular_step(values)
        if values.size < 2:
            dim.clear_step()
    else:
        dim.extent = [0.0, float(ds.sizes[name] - 1)]
        dim.step = 1.0
    if spatial.reference_system is not None:
        dim.reference_system = spatial.reference_system
    dim.description = _description(ds[name].variable) if name in ds.coords else "grid index"
    return dim


def _vertical(ds: xr.Dataset, name: str) -> VerticalSpatialDimension:
    dim = VerticalSpatialDimension({})
    dim.dim_type = DimensionType.SPATIAL
    dim.axis = VerticalSpatialDimensionAxis.Z
    _fill_other(dim, ds, name)
    return dim


def _additional(ds: xr.Dataset, name: str) -> AdditionalDimension:
    dim = AdditionalDimension({})
    dim.dim_type = "other"
    _fill_other(dim, ds, name)
    return dim


def _fill_other(dim: AdditionalDimension | VerticalSpatialDimension, ds: xr.Dataset,
                name: str) -> None:
    """Values (when few), extent and step of a non-horizontal, non-temporal dimension."""
    if name not in ds.coords:
        dim.extent = [0, int(ds.sizes[name]) - 1]
        dim.description = "index (the dimension has no coordinate)"
        return
    var = ds[name].variable
    values = np.asarray(var.values)
    if values.dtype.kind in "iuf":
        dim.extent = [values.min().item(), values.max().item()]
        if values.size <= MAX_VALUES:
            dim.values = _numbers(values)
        step = regular_step(values)
        if step is not None:
            dim.step = step
    elif values.size <= MAX_VALUES:
        dim.values = [str(v) for v in values.tolist()]
    if var.attrs.get("units"):
        dim.unit = str(var.attrs["units"])
    dim.description = _description(var)


def cube_dimensions(ds: xr.Dataset, axes: Axes, spatial: SpatialExtent) -> dict[str, Dimension]:
    dims: dict[str, Dimension] = {}
    for name in map(str, ds.dims):
        if name == axes.t:
            dims[name] = _temporal(ds, name)
        elif name == axes.x:
            dims[name] = _horizontal(ds, name, HorizontalSpatialDimensionAxis.X, spatial)
        elif name == axes.y:
            dims[name] = _horizontal(ds, name, HorizontalSpatialDimensionAxis.Y, spatial)
        elif name == axes.z:
            dims[name] = _vertical(ds, name)
        else:
            dims[name] = _additional(ds, name)
    return dims


def _auxiliary_names(ds: xr.Dataset) -> set[str]:
    """Variables that describe others (bounds, grid mappings, ancillaries), not the data."""
    names: set[str] = set()
    for var in ds.variables.values():
        for key in ("bounds", "grid_mapping", "ancillary_variables"):
            text = var.attrs.get(key) or var.encoding.get(key)
            if text:
                names.update(str(text).replace(":", " ").split())
    return names


def _nodata(var: xr.Variable) -> float | str | None:
    fill = var.encoding.get("_FillValue", var.attrs.get("_FillValue"))
    if fill is None:
        fill = var.attrs.get("missing_value", var.encoding.get("missing_value"))
    if fill is None:
        return None
    value = json_value(np.asarray(fill).ravel()[0])
    return value if isinstance(value, int | float | str) else None


def cube_variables(ds: xr.Dataset) -> dict[str, Variable]:
    """Every data variable and non-dimension coordinate (dimensions are not repeated here)."""
    auxiliary = _auxiliary_names(ds)
    out: dict[str, Variable] = {}
    for name in map(str, ds.variables):
        var = ds.variables[name]
        if name in ds.dims:
            continue
        cube = CubeVariable({})
        cube.dimensions = [str(d) for d in var.dims]
        is_data = name in ds.data_vars and name not in auxiliary
        cube.var_type = VariableType.DATA if is_data else VariableType.AUXILIARY
        cube.description = _description(var)
        units = var.attrs.get("units") or var.encoding.get("units")
        if units:
            cube.unit = str(units)
        cube.shape = [int(s) for s in var.shape]
        chunks = var.encoding.get("chunks")
        if chunks is not None:
            cube.chunks = [int(c) for c in chunks]
        cube.nodata = _nodata(var)
        dtype = np.dtype(var.encoding.get("dtype", var.dtype))
        cube.data_type = dtype.name if dtype.name in DATA_TYPES else "other"
        cube.attrs = json_value(dict(var.attrs)) or None
        out[name] = cube
    return out


def apply_datacube(
    collection: pystac.Collection, ds: xr.Dataset, axes: Axes, spatial: SpatialExtent
) -> DatacubeExtension[pystac.Collection]:
    cube = DatacubeExtension.ext(collection, add_if_missing=True)
    cube.apply(dimensions=cube_dimensions(ds, axes, spatial), variables=cube_variables(ds))
    return cube


def main_variable(ds: xr.Dataset, preferred: str | None = None) -> str | None:
    """The variable to show: the recipe's choice, else the first data variable with >= 2 dims."""
    if preferred and preferred in ds.data_vars:
        return preferred
    auxiliary = _auxiliary_names(ds)
    for name, var in ds.data_vars.items():
        if var.ndim >= 2 and str(name) not in auxiliary and var.dtype.kind in "iuf":
            return str(name)
    return None
