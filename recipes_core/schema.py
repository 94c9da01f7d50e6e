"""Per-source metadata and the target template it combines into (DESIGN §4, step 4).

Each opened source is summarised as a small :class:`SourceSchema` (dims, dtypes, attributes,
encodings and the values of its 1-D dimension coordinates); the sources the survey inferred
instead of opening come many to an :class:`InferredSources`. The :class:`Template` is the
target's layout: where each source lands along the concat dimensions, the target encoding of
every variable, and the chunking. :func:`recipes_core.combine.combine_schemas` builds it.
Pure: numpy in, numpy out, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from recipes_core.plan.pattern import SourceKey

# The encoding keys that define how values are stored. Everything else xarray puts in
# ``encoding`` (netCDF chunking, zlib, the source path) describes the *source* file and must
# not leak into the target.
ENCODING_KEYS = (
    "dtype",
    "_FillValue",
    "missing_value",
    "scale_factor",
    "add_offset",
    "units",
    "calendar",
)


@dataclass(frozen=True)
class VariableSchema:
    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    attrs: dict[str, Any]
    encoding: dict[str, Any]
    is_coord: bool

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class SourceSchema:
    """What one source contributes, after transforms."""

    key: SourceKey
    url: str
    dims: dict[str, int]
    variables: dict[str, VariableSchema]
    index_coords: dict[str, np.ndarray]
    attrs: dict[str, Any]


@dataclass(frozen=True, eq=False)
class InferredSources:
    """Sources the survey did not open, inferred from the opened ``reference``: each has its
    dims, variables, grid and attributes, and the concat coordinate ``coords[dim][row]``.

    One object for many sources (``keys`` holds one key per row, in key order), so that the
    100,000 sources of a long archive are planned with array operations, not as 100,000
    schemas. :meth:`schemas` gives them one by one.
    """

    reference: SourceSchema
    keys: np.ndarray  # (sources, pattern dims) int64
    urls: tuple[str, ...]
    coords: dict[str, np.ndarray]  # concat dim -> (sources, steps)

    def __len__(self) -> int:
        return len(self.urls)

    @property
    def first_key(self) -> SourceKey:
        return tuple(int(i) for i in self.keys[0])

    def schemas(self) -> list[SourceSchema]:
        ref = self.reference
        out = []
        for row, (key, url) in enumerate(zip(self.keys.tolist(), self.urls, strict=True)):
            coords = dict(ref.index_coords)
            coords.update((dim, rows[row]) for dim, rows in self.coords.items())
            out.append(SourceSchema(tuple(key), url, ref.dims, ref.variables, coords, ref.attrs))
        return out


SurveyedSchema = SourceSchema | InferredSources


def each_source(schemas: Sequence[SurveyedSchema]) -> list[SourceSchema]:
    """Every source's own schema, inferred ones expanded."""
    return [one for schema in schemas
            for one in ([schema] if isinstance(schema, SourceSchema) else schema.schemas())]


def _encoding(var: xr.Variable) -> dict[str, Any]:
    return {k: var.encoding[k] for k in ENCODING_KEYS if k in var.encoding}


def schema_of(ds: xr.Dataset, key: SourceKey, url: str) -> SourceSchema:
    """Summarise an opened (and transformed) dataset. Loads only 1-D dimension coordinates."""
    variables = {}
    index_coords = {}
    for name, var in ds.variables.items():
        name = str(name)
        if name in ds.dims and var.dims == (name,):
            index_coords[name] = np.asarray(var.values)
        variables[name] = VariableSchema(
            name=name,
            dims=tuple(str(d) for d in var.dims),
            shape=tuple(int(s) for s in var.shape),
            dtype=var.dtype.str,
            attrs=dict(var.attrs),
            encoding=_encoding(var),
            is_coord=name in ds.coords,
        )
    return SourceSchema(
        key=key,
        url=url,
        dims={str(k): int(v) for k, v in ds.sizes.items()},
        variables=variables,
        index_coords=index_coords,
        attrs=dict(ds.attrs),
    )


@dataclass(frozen=True, eq=False)
class Template:
    """The target dataset's layout: everything needed to prepare the store and place pieces."""

    dims: dict[str, int]
    coords: dict[str, np.ndarray]
    coord_vars: dict[str, VariableSchema]  # attrs and encoding of the dimension coordinates
    variables: dict[str, VariableSchema]
    attrs: dict[str, Any]
    concat_dims: tuple[str, ...]
    offsets: dict[str, tuple[int, ...]]  # concat dim -> start of each key index (+ total)
    owners: dict[str, SourceKey]  # variables without a concat dim -> the source that writes them
    chunks: dict[str, int]
    notes: tuple[str, ...] = field(default=())

    def region_of(
        self,
        var: VariableSchema,
        key: SourceKey,
        key_positions: Mapping[str, int],
    ) -> tuple[tuple[int, int], ...]:
        """The (start, stop) box a source's copy of ``var`` fills in the target."""
        region = []
        for dim in var.dims:
            if dim in self.offsets:
                i = key[key_positions[dim]]
                region.append((self.offsets[dim][i], self.offsets[dim][i + 1]))
            else:
                region.append((0, self.dims[dim]))
        return tuple(region)

    def chunk_shape(self, var: VariableSchema) -> tuple[int, ...]:
        return tuple(self.chunks[d] for d in var.dims)

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for v in self.variables.values())
