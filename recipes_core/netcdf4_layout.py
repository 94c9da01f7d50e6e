"""What netCDF4-python would say about a netCDF-4 file, read from its HDF5 objects with h5py.

A write task opens every one of its sources. Opening a netCDF-4 file with netCDF4-python costs
about 1.5 ms on this kind of machine (netCDF-C reads every object header of the file, then
netCDF4-python builds a Python object per variable and dimension), most of it holding the GIL,
and the write task then reads the data through h5py anyway. For the common case, where every
variable the target needs is stored exactly as the target encodes it, the task only needs the
dimension sizes, the stored coordinate values and a handful of attributes, which h5py's
low-level API reads in a fraction of that time.

:func:`layout_of` reads them following netCDF-4's own conventions (netCDF-C writes them):

- a dimension is a dimension-scale dataset (``CLASS = DIMENSION_SCALE``) with a
  ``_Netcdf4Dimid`` attribute; one whose ``NAME`` starts with :data:`NOT_A_VARIABLE` is a
  dimension without a coordinate variable;
- a variable's dimensions are the ids in its ``_Netcdf4Coordinates`` attribute (a 1-D
  dimension scale without one is its own dimension);
- a variable named like a dimension it is not the coordinate of is stored under
  :data:`NON_COORDINATE_PREFIX` + its name;
- netCDF4-python returns text attributes as ``str`` and one-element numeric attributes as
  numpy scalars.

Whenever the file steps outside what this module can show to be equivalent (another writer's
conventions, groups, attribute types it does not know, unlimited dimensions whose variables
disagree on their length, a variable that needs CF decoding) it returns None, and the caller
opens the file with netCDF4-python as before: the fast path never guesses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import xarray as xr

from recipes_core.schema import Template
from recipes_core.stored_encoding import ENCODING_ATTRIBUTES, native_byte_order, stored_as_target

NOT_A_VARIABLE = "This is a netCDF dimension but not a netCDF variable"
DIMENSION_SCALE = "DIMENSION_SCALE"
NON_COORDINATE_PREFIX = "_nc4_non_coord_"
# The attributes CF decoding reads (xarray's coders): the index coordinates' values are
# decoded with these alone, as they would be with all of them.
DECODING_ATTRIBUTES = (*ENCODING_ATTRIBUTES, "units", "calendar", "dtype")
_UNLIMITED = 2**64 - 1  # H5S_UNLIMITED, as h5py reports a maximum extent


class _Unprovable(Exception):
    """The file is outside what :func:`layout_of` can read as netCDF4-python would."""


@dataclass(frozen=True)
class Layout:
    """A source's netCDF view, as far as a write task that reads every variable raw needs it.

    ``variables`` are the template's variables this file holds (its netCDF variables, minus
    the dropped ones); ``sizes`` the lengths of the template's dimensions found in the file;
    ``index`` the stored (not decoded) values and attributes of their coordinate variables.
    """

    sizes: Mapping[str, int]
    variables: frozenset[str]
    index: Mapping[str, xr.Variable]


def _attribute(objid: Any, name: bytes) -> Any:
    """One attribute's value as netCDF4-python returns it.

    Read with as few h5py objects as it takes (each costs ~5 us, and a file needs about 20
    attributes): the type once, the size from the storage, and the values in the file's own
    type (no conversion; the byte order is fixed afterwards).
    """
    from h5py import h5a, h5t

    attr = h5a.open(objid, name)
    stored = attr.get_type()
    kind = stored.get_class()
    if kind == h5t.STRING and not stored.is_variable_str():
        dtype = np.dtype(f"S{stored.get_size()}")
    elif kind in (h5t.INTEGER, h5t.FLOAT):
        dtype = stored.dtype
    else:
        raise _Unprovable(name)  # variable-length, compound, enum, reference
    count = attr.get_storage_size() // dtype.itemsize
    if count == 0:
        raise _Unprovable(name)  # empty (a null dataspace)
    values = np.empty(count, dtype)
    attr.read(values, mtype=stored)
    if dtype.kind == "S":
        if count != 1:
            raise _Unprovable(name)
        return values[0].decode("utf-8", "replace").replace("\x00", "")
    values = native_byte_order(values)
    return values[0] if count == 1 else values


@dataclass
class _Object:
    """One dataset of the group, and what netCDF-4's conventions make of it."""

    objid: Any
    shape: tuple[int, ...]
    unlimited: tuple[bool, ...]
    attribute_names: list[bytes] = field(default_factory=list)

    @classmethod
    def open(cls, group_id: Any, name: str) -> _Object:
        from h5py import h5a, h5d

        try:
            objid = h5d.open(group_id, name.encode())
        except (KeyError, ValueError, TypeError) as e:  # a named type, a broken link
            raise _Unprovable(name) from e
        space = objid.get_space()
        shape = space.get_simple_extent_dims()
        maxima = space.get_simple_extent_dims(True) if shape else ()
        obj = cls(objid, tuple(shape), tuple(m == _UNLIMITED for m in maxima))
        h5a.iterate(objid, lambda attr, *_: obj.attribute_names.append(attr))
        return obj

    def get(self, name: bytes) -> Any:
        return _attribute(self.objid, name) if name in self.attribute_names else None

    @cached_property
    def is_dimension(self) -> bool:
        return self.get(b"CLASS") == DIMENSION_SCALE  # HDF5's dimension-scale API marks them

    @cached_property
    def is_variable(self) -> bool:
        name = self.get(b"NAME") if self.is_dimension else None
        return not (isinstance(name, str) and name.startswith(NOT_A_VARIABLE))

    @cached_property
    def dimension_id(self) -> int | None:
        """The id of the dimension this dataset is the scale of (None: not a dimension)."""
        dimid = self.get(b"_Netcdf4Dimid") if self.is_dimension else None
        return None if dimid is None else int(dimid)

    @cached_property
    def dimension_ids(self) -> tuple[int, ...]:
        if len(self.shape) == 1 and self.dimension_id is not None:
            return (self.dimension_id,)  # a coordinate variable: its own dimension
        ids = self.get(b"_Netcdf4Coordinates")
        if ids is None:
            raise _Unprovable("no dimension ids")  # another writer's conventions
        return tuple(int(i) for i in np.atleast_1d(ids))

    def attributes(self, names: Iterable[str]) -> dict[str, Any]:
        """Those of ``names`` the dataset has, with their values."""
        return {name: self.get(name.encode()) for name in names
                if name.encode() in self.attribute_names}

    def values(self) -> np.ndarray:
        from h5py import h5s

        values = np.empty(self.shape, self.objid.dtype)
        if values.dtype.kind not in "iuf":
            raise _Unprovable("a coordinate that is not numbers")
        self.objid.read(h5s.ALL, h5s.ALL, values)
        return native_byte_order(values)


def _datasets(group_id: Any) -> tuple[dict[str, _Object], bool]:
    """The group's datasets, and whether it holds anything else (subgroups, types)."""
    from h5py import h5g

    objects, others = {}, False
    for i in range(group_id.get_num_objs()):
        if group_id.get_objtype_by_idx(i) == h5g.DATASET:
            name = group_id.get_objname_by_idx(i).decode()
            if name.startswith(NON_COORDINATE_PREFIX):
                raise _Unprovable(name)  # netCDF4-python names it without the prefix
            objects[name] = _Object.open(group_id, name)
        else:
            others = True
    return objects, others


def layout_of(group: Any, template: Template, dropped: Iterable[str]) -> Layout | None:
    """The :class:`Layout` of an h5py group when every template variable in it is read raw
    (see :func:`~recipes_core.stored_encoding.stored_as_target`); None when only
    netCDF4-python can tell, or when some variable needs CF decoding."""
    try:
        return _layout(group.id, template, frozenset(dropped))
    except (_Unprovable, OSError, ValueError, KeyError, TypeError, RuntimeError):
        return None  # a damaged file too: netCDF4-python's open then names the problem


def _layout(group_id: Any, template: Template, dropped: frozenset[str]) -> Layout:
    objects, others = _datasets(group_id)
    dimension_of: dict[int, str] = {}
    sizes: dict[str, int] = {}
    records: set[str] = set()  # unlimited dimensions
    for dim in template.dims:
        obj = objects.get(dim)
        if obj is None:
            continue  # not in this file (netCDF4-python would not list it either)
        if obj.dimension_id is None or len(obj.shape) != 1:
            raise _Unprovable(dim)
        dimension_of[obj.dimension_id] = dim
        sizes[dim] = obj.shape[0]
        if obj.unlimited[0]:
            if not obj.is_variable:
                raise _Unprovable(dim)  # its length is its variables' longest extent
            records.add(dim)
    if records and others:
        raise _Unprovable("unlimited dimensions shared with subgroups")

    def dims_of(obj: _Object) -> tuple[str, ...]:
        dims = tuple(dimension_of.get(i, "") for i in obj.dimension_ids)
        if "" in dims or len(dims) != len(obj.shape):
            raise _Unprovable("a dimension outside the template")
        if any(extent != sizes[dim] for dim, extent in zip(dims, obj.shape, strict=True)):
            raise _Unprovable("an extent")  # netCDF pads a shorter record variable
        return dims

    variables = []
    for name, var in template.variables.items():
        obj = objects.get(name)
        if obj is None or name in dropped or not obj.is_variable:
            continue
        if not var.dims or dims_of(obj) != var.dims or not stored_as_target(
                obj.attributes(ENCODING_ATTRIBUTES), np.dtype(obj.objid.dtype), var):
            raise _Unprovable(name)  # needs netCDF4-python's decoding path
        variables.append(name)
    if records:  # the record length is its variables' longest extent: all must agree
        for name, obj in objects.items():
            if name in variables or not obj.is_variable:
                continue
            if len(obj.dimension_ids) != len(obj.shape):
                raise _Unprovable(name)
            for dimid, extent in zip(obj.dimension_ids, obj.shape, strict=True):
                dim = dimension_of.get(dimid)
                if dim in records and extent != sizes[dim]:
                    raise _Unprovable(name)

    index = {dim: xr.Variable((dim,), objects[dim].values(),
                              objects[dim].attributes(DECODING_ATTRIBUTES))
             for dim in sizes
             if dim not in dropped and objects[dim].is_variable and dims_of(objects[dim]) == (dim,)}
    return Layout(sizes, frozenset(variables), index)
