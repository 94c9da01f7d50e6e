"""Read a source's variables already encoded for the target: the write tasks' input.

The general path opens each source with xarray (CF decoding, transforms), then encodes every
slice again with the target's encoding. For netCDF sources that is mostly wasted work: when a
variable's stored bytes already are its target encoding (same dtype, same fill value, same
packing), decoding and re-encoding is the identity, and xarray's per-file set-up (backend
objects, CF decoding of every variable, pandas indexes) costs twice the read itself.

So :func:`open_for_writing` gives a :class:`SourceReader`:

- :class:`NetCDFReader` reads such variables raw (no masking; netCDF-4 files through h5py,
  straight into the write units), and decodes the others (variables whose fill value differs
  from the target's, say) with xarray's own CF decoder, on the small set of variables that
  need it. When every variable of a netCDF-4 file is read raw, the file is not opened with
  netCDF4-python at all: :mod:`recipes_core.netcdf4_layout` reads what the task needs from its
  HDF5 objects;
- :class:`XarrayReader` is the general path, for other formats and for recipes whose transforms
  change values or layout.

Both return exactly the same encoded values; ``tests/integration/test_reading.py`` compares them
variable by variable on real and synthetic archives.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import xarray as xr
from xarray.backends.zarr import encode_zarr_variable
from xarray.conventions import decode_cf_variables

from recipes_core.netcdf4_layout import Layout, layout_of
from recipes_core.opener import (
    NETCDF_LOCK,
    open_kwargs,
    open_transformed,
    refusing_unreadable,
)
from recipes_core.plan.plan import Plan
from recipes_core.schema import Template, VariableSchema
from recipes_core.stored_encoding import (
    ENCODING_ATTRIBUTES,
    nan_to_fill,
    native_byte_order,
    stored_as_target,
)

# Transforms that change neither values nor layout: a raw read stays exact under them (the
# target encoding they may set is the one the raw bytes are compared with).
VALUE_NEUTRAL_TRANSFORMS = frozenset({"select_variables", "drop_variables", "set_attrs",
                                      "set_encoding"})
NETCDF_FORMATS = frozenset({"netcdf4", "netcdf3"})


class SourceReader(Protocol):
    """One opened source, as the write tasks see it."""

    sizes: Mapping[str, int]

    def index_values(self) -> Mapping[str, np.ndarray]:
        """Decoded values of the source's dimension coordinates (for the template check)."""
        ...

    def has(self, name: str) -> bool: ...

    def read_encoded(self, var: VariableSchema, where: tuple[slice, ...]) -> np.ndarray:
        """The slice ``where`` of ``var``, encoded as the target stores it."""
        ...

    def read_into(self, var: VariableSchema, where: tuple[slice, ...], out: np.ndarray,
                  out_where: tuple[slice, ...]) -> bool:
        """Read the slice ``where`` of ``var``, encoded, straight into ``out[out_where]``;
        False when this reader cannot (the caller then copies :meth:`read_encoded`)."""
        ...


def encode(variable: xr.Variable, var: VariableSchema) -> np.ndarray:
    """Encode values with the target's encoding (CF time units, fill value, packing, dtype)."""
    variable = variable.copy(deep=False)
    variable.encoding = dict(var.encoding)
    return np.asarray(encode_zarr_variable(variable, name=var.name).values)


class XarrayReader:
    """The general path: a dataset opened and transformed by xarray."""

    def __init__(self, ds: xr.Dataset) -> None:
        self.ds = ds
        self.sizes = {str(k): int(v) for k, v in ds.sizes.items()}

    def index_values(self) -> Mapping[str, np.ndarray]:
        return {str(d): np.asarray(self.ds[d].values) for d in self.ds.indexes}

    def has(self, name: str) -> bool:
        return name in self.ds.variables

    def read_encoded(self, var: VariableSchema, where: tuple[slice, ...]) -> np.ndarray:
        return encode(self.ds.variables[var.name][where], var)

    def read_into(self, var: VariableSchema, where: tuple[slice, ...], out: np.ndarray,
                  out_where: tuple[slice, ...]) -> bool:
        return False


class NetCDFReader:
    """A netCDF source, raw where raw is the target encoding: opened with netCDF4-python, or
    only through h5py when :func:`~recipes_core.netcdf4_layout.layout_of` gives its layout."""

    def __init__(self, nc: Any, template: Template, options: Mapping[str, Any],
                 h5: Any = None, layout: Layout | None = None) -> None:
        self.nc = nc
        self.h5 = h5  # the same file (group) through h5py, for reads straight into buffers
        self.template = template
        options = dict(options)
        self.dropped = frozenset(options.pop("drop_variables", None) or ())
        self.decode_options = options
        self._decoded: Mapping[str, xr.Variable] | None = None
        self._raw: dict[str, bool] = {}
        self._h5py_same: dict[str, bool] = {}  # see _h5py_reads
        self._index: Mapping[str, xr.Variable] | None = None
        self._names: frozenset[str] | None = None  # the variables, once the handle is let go
        if layout is not None:  # read from the HDF5 objects: settled from the start
            self.sizes = dict(layout.sizes)
            self._raw = dict.fromkeys(layout.variables, True)
            self._h5py_same = dict.fromkeys(layout.variables, True)
            self._index, self._names = layout.index, layout.variables
            return
        nc.set_auto_maskandscale(False)
        self.sizes = {str(name): len(dim) for name, dim in nc.dimensions.items()}

    def settle(self) -> bool:
        """Take from netCDF4-python everything the write task still needs, and say whether
        its handle can be closed now: when every template variable in the file is read raw
        through h5py. Each open netCDF4 dataset holds a few MiB of HDF5 caches, and a task
        keeps its sources open while it reads them variable by variable (measured: 33 MiB
        for 30 sources); the h5py handle that stays costs a third of that."""
        if self.h5 is None:
            return False
        with NETCDF_LOCK:
            names = [n for n, var in self.template.variables.items()
                     if n in self.nc.variables and n not in self.dropped]
            if not all(self._is_raw(n) and self.template.variables[n].dims for n in names):
                return False
            if not all(self._h5py_reads(n) for n in names):
                return False
            self._index = self.stored_index_coordinates()
            self._names = frozenset(self.nc.variables) - self.dropped
            self.nc = None
        return True

    def _h5py_reads(self, name: str) -> bool:
        """Whether h5py reads ``name`` as netCDF4-python does. It does not for a record
        variable shorter than its unlimited dimension: netCDF pads it with fill values."""
        if name not in self._h5py_same:
            dataset = self.h5.get(name) if self.h5 is not None else None
            with NETCDF_LOCK:
                self._h5py_same[name] = (
                    dataset is not None and self.nc is not None and name in self.nc.variables
                    and tuple(dataset.shape) == tuple(self.nc.variables[name].shape))
        return self._h5py_same[name]

    def _is_raw(self, name: str) -> bool:
        if name not in self._raw:
            self._raw[name] = self._stored_as_target(name)
        return self._raw[name]

    def _stored_as_target(self, name: str) -> bool:
        var = self.template.variables.get(name)
        with NETCDF_LOCK:
            if var is None or name not in self.nc.variables:
                return False
            ncvar = self.nc.variables[name]
            dims, dtype = tuple(ncvar.dimensions), np.dtype(ncvar.dtype)
            attrs = {k: ncvar.getncattr(k) for k in ncvar.ncattrs()}
        return dims == var.dims and stored_as_target(attrs, dtype, var)

    def _read_raw(self, name: str, where: tuple[slice, ...]) -> np.ndarray:
        if self.nc is None:  # settled: h5py reads the same stored values
            data = np.asarray(self.h5[name][where if where else ...])
        else:
            with NETCDF_LOCK:
                data = np.asarray(self.nc.variables[name][where if where else ...])
        return native_byte_order(data)

    def decoded(self) -> Mapping[str, xr.Variable]:
        """Every variable that is not read raw, plus the dimension coordinates, CF-decoded by
        the function ``xr.open_dataset`` decodes with (bounds take their parent's time units),
        without building a Dataset and its pandas indexes, which would cost five times more."""
        if self._decoded is None:
            raw = {}
            with NETCDF_LOCK:
                for name, ncvar in self.nc.variables.items():
                    if name in self.dropped:
                        continue
                    if tuple(ncvar.dimensions) == (name,) or not self._is_raw(name):
                        attrs = {k: ncvar.getncattr(k) for k in ncvar.ncattrs()}
                        raw[name] = xr.Variable(ncvar.dimensions, self._read_raw(name, ()),
                                                attrs)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=xr.SerializationWarning)
                self._decoded, _, _ = decode_cf_variables(raw, {}, **self.decode_options)
        return self._decoded

    def stored_index_coordinates(self) -> dict[str, xr.Variable]:
        """The dimension coordinates as stored (not decoded), with their attributes."""
        if self._index is not None:
            return self._index
        out = {}
        with NETCDF_LOCK:
            for name in self.sizes:
                ncvar = self.nc.variables.get(name)
                if ncvar is None or name in self.dropped or tuple(ncvar.dimensions) != (name,):
                    continue
                attrs = {k: ncvar.getncattr(k) for k in ncvar.ncattrs()}
                out[name] = xr.Variable((name,), self._read_raw(name, ()), attrs)
        return out

    def index_values(self) -> Mapping[str, np.ndarray]:
        return index_values_of([self])[0]

    def has(self, name: str) -> bool:
        if self._names is not None:
            return name in self._names
        with NETCDF_LOCK:
            return name in self.nc.variables and name not in self.dropped

    def read_encoded(self, var: VariableSchema, where: tuple[slice, ...]) -> np.ndarray:
        if self._is_raw(var.name):
            return nan_to_fill(self._read_raw(var.name, where), var)
        return encode(self.decoded()[var.name][where], var)

    def read_into(self, var: VariableSchema, where: tuple[slice, ...], out: np.ndarray,
                  out_where: tuple[slice, ...]) -> bool:
        """HDF5 copies a raw variable's slice into the write unit itself: no array in between,
        and none of netCDF4-python's per-read set-up (half the cost of a read)."""
        if (self.h5 is None or not where or not self._is_raw(var.name)
                or not self._h5py_reads(var.name)):
            return False
        from h5py import h5d, h5s

        # Opened at every read, not kept: an open HDF5 dataset holds its own chunk cache
        # (1 MiB), and a task keeps dozens of files open (measured: +55 MiB when kept).
        # h5py's low-level calls: its Dataset object and read_direct's selection set-up cost
        # more than the read of a 1 MB slice from the page cache (0.6 against 0.4 ms).
        try:
            dataset = h5d.open(self.h5.id, var.name.encode())
        except KeyError:
            return False
        if dataset.dtype.newbyteorder("=") != out.dtype:
            return False
        source = [s.indices(n) for s, n in zip(where, dataset.shape, strict=True)]
        inside = [s.indices(n) for s, n in zip(out_where, out.shape, strict=True)]
        count = tuple(stop - start for start, stop, _ in source)
        if any(step != 1 for *_, step in source + inside) or count != tuple(
                stop - start for start, stop, _ in inside):
            return False
        view = out[out_where]
        if all(count) and not _read_whole_chunk(dataset, source, view):
            file_space = dataset.get_space()
            file_space.select_hyperslab(tuple(start for start, _, _ in source), count)
            memory_space = h5s.create_simple(out.shape)
            memory_space.select_hyperslab(tuple(start for start, _, _ in inside), count)
            dataset.read(memory_space, file_space, out)
        fixed = nan_to_fill(view, var)
        if fixed is not view:
            view[...] = fixed
        return True


def _read_whole_chunk(dataset: Any, source: Sequence[tuple[int, int, int]],
                      view: np.ndarray) -> bool:
    """Copy the stored bytes of one whole, unfiltered chunk straight into ``view``; False
    (nothing read) unless the slice is exactly such a chunk and ``view`` one run of memory.

    A netCDF-4 file often stores a variable's time step as one chunk without compression
    (one chunk per file in a daily archive). HDF5's read of it goes through the dataset's
    chunk cache (an allocation and a second copy of the chunk) and the selection machinery;
    its direct chunk read skips both (0.30 -> 0.22 ms a 1 MB step, measured with h5py). The
    bytes are the values themselves when the chunk has no filters and the file's type is the
    buffer's, byte order included.
    """
    from h5py import h5d

    if dataset.dtype != view.dtype or not view.flags.c_contiguous:
        return False
    plist = dataset.get_create_plist()
    if plist.get_layout() != h5d.CHUNKED or plist.get_nfilters():
        return False
    chunk = plist.get_chunk()
    if any(start % size or stop - start != size
           for (start, stop, _), size in zip(source, chunk, strict=True)):
        return False  # part of a chunk, several, or one that runs past the array's edge
    try:
        mask, stored = dataset.read_direct_chunk(tuple(start for start, _, _ in source),
                                                 out=view.reshape(-1).view(np.uint8))
    except (KeyError, ValueError, OSError):
        return False  # never written (HDF5's read gives the fill value), or not that size
    return mask == 0 and stored.nbytes == view.nbytes  # else the caller reads it again


def _attrs_key(attrs: Mapping[str, Any]) -> tuple[tuple[str, str, bytes], ...]:
    """Attributes as an exact, hashable key (values compared by dtype and bytes)."""
    return tuple(sorted((str(k), np.asarray(v).dtype.str, np.asarray(v).tobytes())
                        for k, v in attrs.items()))


def index_values_of(readers: Sequence[SourceReader]) -> list[Mapping[str, np.ndarray]]:
    """Every reader's :meth:`~SourceReader.index_values`, the netCDF ones decoded together.

    A write task checks the coordinates of each of its sources against the template. Decoding
    them file by file costs a call of xarray's CF decoder per coordinate per file (0.7 ms for
    one time value, mostly set-up); coordinates stored alike (name, dtype, attributes: so the
    same units and calendar) are decoded in one call instead, which gives the same values
    because CF decoding works value by value. If that call fails, every file is decoded on its
    own, so that the error names the file it comes from.
    """
    out: list[dict[str, np.ndarray]] = []
    groups: dict[tuple[Any, ...], list[tuple[int, xr.Variable]]] = {}
    options: dict[str, Any] = {}
    for i, reader in enumerate(readers):
        if not isinstance(reader, NetCDFReader):
            out.append(dict(reader.index_values()))
            continue
        out.append({})
        options = reader.decode_options
        for name, var in reader.stored_index_coordinates().items():
            groups.setdefault((name, var.dtype.str, _attrs_key(var.attrs)), []).append((i, var))
    for (name, _, _), members in groups.items():
        stored = np.concatenate([np.asarray(var.values) for _, var in members])
        joined = {name: xr.Variable((name,), stored, members[0][1].attrs)}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=xr.SerializationWarning)
                decoded = _dates_of(joined[name], options)
                if decoded is None:
                    decoded = np.asarray(
                        decode_cf_variables(joined, {}, **options)[0][name].values)
        except Exception:
            if len(readers) == 1:
                raise
            return [index_values_of([reader])[0] for reader in readers]
        start = 0
        for i, var in members:
            out[i][name] = decoded[start:start + var.size]
            start += var.size
    return out


# Attributes whose presence puts a coordinate through more of xarray's decoders than the
# datetime one (masking, scaling, unsigned or string encodings, a timedelta dtype).
_BEFORE_DATES = (*ENCODING_ATTRIBUTES, "dtype")


def _dates_of(var: xr.Variable, options: Mapping[str, Any]) -> np.ndarray | None:
    """A time coordinate's values decoded by the one function xarray's decoding calls for
    it, or None when its attributes or the options take more than that decoder (the caller
    then runs xarray's whole decoding).

    ``decode_cf_variables`` of "days since ..." values ends in ``decode_cf_datetime`` with
    the units and calendar, after a trial decode of the first and last value that only
    chooses the dtype (which the full decode has anyway) and a lazy wrapper: 0.38 ms a call
    against 0.08. A daily archive whose time units change with every file, such as one file
    per day with "days since <that day>", pays that once per source (tested value for value
    against xarray's decoding, tests/unit/test_index_decoding.py).
    """
    from xarray.coding.times import CFDatetimeCoder, decode_cf_datetime

    units, calendar = var.attrs.get("units"), var.attrs.get("calendar")
    if (options.get("decode_times") is not True or options.get("use_cftime") is not None
            or not isinstance(units, str) or "since" not in units
            or not isinstance(calendar, str | None) or var.dtype.kind not in "iuf"
            or not var.dtype.isnative or any(name in var.attrs for name in _BEFORE_DATES)):
        return None
    coder = CFDatetimeCoder()  # what decode_times=True stands for
    try:
        return np.asarray(decode_cf_datetime(np.asarray(var.values), units, calendar,
                                             use_cftime=coder.use_cftime,
                                             time_unit=coder.time_unit))
    except Exception:
        return None  # xarray's decoding then raises its own error (or copes)


def reads_raw(plan: Plan) -> bool:
    """Whether this recipe's sources can be read by :class:`NetCDFReader`."""
    source = plan.recipe.source
    return (source.format in NETCDF_FORMATS and source.open.mask_and_scale
            and all(step.name in VALUE_NEUTRAL_TRANSFORMS for step in plan.recipe.transforms))


def _decode_options(plan: Plan) -> dict[str, Any]:
    kwargs = open_kwargs(plan.recipe.source.format, plan.recipe.source.open)
    options = {k: kwargs[k] for k in ("mask_and_scale", "decode_times", "decode_timedelta")}
    options["drop_variables"] = kwargs.get("drop_variables")  # never read, never decoded
    return options


@contextlib.contextmanager
def open_for_writing(plan: Plan, key: tuple[int, ...], path: str, url: str,
                     template: Template) -> Iterator[SourceReader]:
    """Open a staged source for a write task, on the fastest path that stays exact."""
    if not reads_raw(plan):
        with open_transformed(plan, key, path, url) as ds:
            yield XarrayReader(ds)
        return
    source = plan.recipe.source
    options = _decode_options(plan)
    h5 = _open_hdf5_quietly(path, source.open.group)
    try:
        layout = None if h5 is None else layout_of(h5, template,
                                                   options.get("drop_variables") or ())
        if layout is not None:  # every variable raw: netCDF4-python's open is not needed
            yield NetCDFReader(None, template, options, h5, layout)
        else:
            with _opened_with_netcdf4(path, url, plan, template, options, h5) as reader:
                yield reader
    finally:
        if h5 is not None:
            h5.file.close()


@contextlib.contextmanager
def _opened_with_netcdf4(path: str, url: str, plan: Plan, template: Template,
                         options: Mapping[str, Any], h5: Any) -> Iterator[NetCDFReader]:
    import netCDF4

    source = plan.recipe.source
    with NETCDF_LOCK, refusing_unreadable(path, source.format, url):
        nc = netCDF4.Dataset(path, mode="r")
    try:
        with NETCDF_LOCK, refusing_unreadable(path, source.format, url):
            group = nc
            for part in (source.open.group or "").strip("/").split("/"):
                group = group.groups[part] if part else group
            reader = NetCDFReader(group, template, options, h5)
            if reader.settle():
                nc.close()
        yield reader
    finally:
        with NETCDF_LOCK:
            if nc.isopen():
                nc.close()


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _open_hdf5_quietly(path: str, group: str | None) -> Any:
    """:func:`_open_hdf5`, or None when h5py cannot open the file: netCDF4-python then
    opens it, and names the problem if there is one."""
    try:
        return _open_hdf5(path, group)
    except (OSError, ValueError, KeyError):
        return None


def _open_hdf5(path: str, group: str | None) -> Any:
    """The netCDF-4 file's group through h5py, or None for netCDF-3 (or unusual) files.

    netCDF-4 files are HDF5 files whose variables are datasets of the same names, so h5py
    reads their raw values exactly as netCDF4-python does.
    """
    with open(path, "rb") as f:
        if f.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
            return None  # netCDF-3, or HDF5 with a user block: netCDF4-python reads it
    import h5py

    handle = h5py.File(path, "r")
    node = handle
    for part in (group or "").strip("/").split("/"):
        if part:
            node = node.get(part)
            if not isinstance(node, h5py.Group):
                handle.close()
                return None
    return node
