"""Combining the sources' schemas into the target's :class:`~recipes_core.schema.Template`.

:func:`combine_schemas` checks that the sources fit together (one grid, agreeing variables,
concat coordinates that line up with the pattern's keys and run strictly one way) and builds
the template. Every check names the offending file. Sources the survey inferred are checked
a batch at a time, with the same outcome as checking each on its own. Pure: numpy in, numpy
out, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recipes_core.errors import SchemaError
from recipes_core.plan.pattern import SourceKey
from recipes_core.plan.plan import Plan, resolve_chunks
from recipes_core.schema import (
    InferredSources,
    SourceSchema,
    SurveyedSchema,
    Template,
    VariableSchema,
    each_source,
)


def _first_difference(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape:
        return f"{a.size} values instead of {b.size}"
    diff = np.flatnonzero(~((a == b) | ((a != a) & (b != b))))
    i = int(diff[0])
    return f"position {i}: {a[i]!r} instead of {b[i]!r}"


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a is b:  # an inferred source shares its reference's grid arrays
        return True
    if a.shape != b.shape or a.dtype.kind != b.dtype.kind:
        return False
    if a.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def _monotonic_break(values: np.ndarray) -> tuple[int, bool] | None:
    """Where a coordinate stops being strictly monotonic (the position before the break, and
    whether it was increasing), or None."""
    if values.size < 2:
        return None
    try:
        step = np.diff(values)
    except TypeError:  # cftime objects subtract fine; other objects cannot be checked
        return None
    zero = step[0] * 0
    increasing = bool(step[0] > zero)
    bad = np.flatnonzero(step <= zero) if increasing else np.flatnonzero(step >= zero)
    return (int(bad[0]), increasing) if bad.size else None


def _check_monotonic(
    dim: str, values: np.ndarray, starts: Sequence[int], urls: Sequence[str]
) -> None:
    """The concat coordinate must be strictly monotonic: no gaps in order, no duplicates."""
    found = _monotonic_break(values)
    if found is None:
        return
    i, increasing = found
    file_of = lambda position: urls[int(np.searchsorted(starts, position, side="right")) - 1]  # noqa: E731
    kind = "repeats" if values[i + 1] == values[i] else "goes backwards"
    raise SchemaError(
        f"the '{dim}' coordinate {kind} at position {i + 1}: {values[i]} then {values[i + 1]} "
        f"(in {file_of(i)} and {file_of(i + 1)})",
        where=file_of(i + 1),
        fix=f"'{dim}' must be strictly {'increasing' if increasing else 'decreasing'} across "
        "files: check the pattern's dates and items_per_file, or remove the duplicate file.",
    )


def target_encoding(var: VariableSchema) -> tuple[dict[str, Any], str | None]:
    """The stored encoding of a variable, and a note when something had to be dropped."""
    encoding = dict(var.encoding)
    note = None
    fill, missing = encoding.get("_FillValue"), encoding.get("missing_value")
    if (
        fill is not None
        and missing is not None
        and not _same(np.asarray(fill), np.asarray(missing))
    ):
        # Both mark missing data when decoding, so values are already NaN; a store can have
        # only one fill value, and the masked points are the same either way.
        encoding.pop("missing_value")
        note = (
            f"{var.name}: dropped missing_value={missing!r}, which conflicts with "
            f"_FillValue={fill!r} (both decode to NaN)"
        )
    if (
        var.dtype[1] not in "fc"
        and "_FillValue" not in encoding
        and np.dtype(var.dtype).kind != "M"
    ):
        encoding["_FillValue"] = None  # integers and strings keep no fill unless the source had one
    return encoding, note


class _SourceBySource(Exception):
    """The inferred sources do not fit the dense layout: combine source by source instead,
    which names the file at fault."""


def _unit_schema(unit: SurveyedSchema) -> SourceSchema:
    """The schema an opened source or a batch of inferred ones shares."""
    return unit if isinstance(unit, SourceSchema) else unit.reference


def _unit_key(unit: SurveyedSchema) -> SourceKey:
    return unit.key if isinstance(unit, SourceSchema) else unit.first_key


def _unit_keys(unit: SurveyedSchema) -> np.ndarray:
    return np.array([unit.key]) if isinstance(unit, SourceSchema) else unit.keys


def _mark(seen: np.ndarray, unit: SurveyedSchema, places: list[int]) -> None:
    """Flag the unit's keys (their indices at ``places``) in ``seen``."""
    if isinstance(unit, SourceSchema):  # one key: a scalar index, no array built
        seen[tuple([unit.key[p] for p in places])] = True
    else:
        seen[tuple(unit.keys[:, places].T)] = True


def combine_schemas(plan: Plan, schemas: Sequence[SurveyedSchema]) -> Template:
    """Check that the sources fit together and build the target template.

    Inferred sources (:class:`InferredSources`) are checked a batch at a time: their
    variables and grid are their reference's, their concat coordinates rows of one array.
    Whatever that refuses is checked again source by source, so that the error names the
    same file as if every source had its own schema.
    """
    if not schemas:
        raise SchemaError("no sources to combine", fix="check the recipe's source dims.")
    if any(isinstance(s, InferredSources) for s in schemas):
        try:
            return _combine(plan, [s for s in schemas if isinstance(s, SourceSchema) or len(s)])
        except (SchemaError, _SourceBySource):
            pass
    return _combine(plan, each_source(schemas))


def _concat_each(plan: Plan, dim: str, p: int, schemas: Sequence[SourceSchema],
                 ) -> tuple[tuple[int, ...], np.ndarray]:
    """The offsets and coordinate along concat dim ``dim`` (key place ``p``), one source at
    a time: all sources at one key must agree."""
    pdim = plan.pattern.dim(dim)
    by_index: dict[int, SourceSchema] = {}
    for schema in schemas:
        i = schema.key[p]
        ref = by_index.setdefault(i, schema)
        if ref is not schema and not _same(schema.index_coords[dim], ref.index_coords[dim]):
            raise SchemaError(
                f"'{dim}' differs from {ref.url} at the same key "
                f"({_first_difference(schema.index_coords[dim], ref.index_coords[dim])})",
                where=schema.url,
                fix="files at the same key of a concat dimension must share its coordinate.",
            )
    missing = [pdim.label(i) for i in range(len(pdim)) if i not in by_index]
    if missing:
        raise SchemaError(
            f"no source for {dim} = {', '.join(missing[:5])}", fix="check the pattern."
        )
    lengths = [by_index[i].dims[dim] for i in range(len(pdim))]
    if pdim.items_per_file is not None:
        for i, n in enumerate(lengths):
            if n != pdim.items_per_file:
                raise SchemaError(
                    f"the source has {n} steps along '{dim}' but the recipe says "
                    f"items_per_file: {pdim.items_per_file}",
                    where=by_index[i].url,
                    fix=f"set items_per_file to {n} if every file has {n} steps, or remove "
                    "it to let each file say how many it holds.",
                )
    starts = tuple(int(x) for x in np.concatenate([[0], np.cumsum(lengths)]))
    values = np.concatenate([by_index[i].index_coords[dim] for i in range(len(pdim))])
    _check_monotonic(dim, values, starts[:-1], [by_index[i].url for i in range(len(pdim))])
    return starts, values


def _concat_dense(plan: Plan, dim: str, p: int, units: Sequence[SurveyedSchema],
                  ) -> tuple[tuple[int, ...], np.ndarray]:
    """:func:`_concat_each` for sources that all hold ``items_per_file`` steps of one
    dtype: a (keys, steps) table filled a batch at a time. Raises :class:`_SourceBySource`
    when they do not, or disagree, for the source-by-source check to name the file."""
    pdim = plan.pattern.dim(dim)
    steps = pdim.items_per_file
    pieces = []
    for unit in units:
        if isinstance(unit, SourceSchema):
            rows = unit.index_coords[dim][np.newaxis, :]
        else:
            rows = unit.coords[dim]
        if _unit_schema(unit).dims[dim] != steps or rows.shape[1:] != (steps,):
            raise _SourceBySource
        pieces.append((_unit_keys(unit)[:, p], rows))
    dtype = pieces[0][1].dtype
    if any(rows.dtype != dtype for _, rows in pieces):
        raise _SourceBySource
    table = np.empty((len(pdim), steps), dtype=dtype)
    filled = np.zeros(len(pdim), dtype=bool)
    for indices, rows in pieces:
        table[indices] = rows
        filled[indices] = True
    if not filled.all():
        raise _SourceBySource
    for indices, rows in pieces:  # every source at a key holds what the table holds
        if not _same(table[indices], rows):
            raise _SourceBySource
    values = table.reshape(-1)
    if _monotonic_break(values) is not None:
        raise _SourceBySource
    return tuple(range(0, len(pdim) * steps + 1, steps)), values


def _combine(plan: Plan, units: Sequence[SurveyedSchema]) -> Template:
    units = sorted(units, key=_unit_key)
    shared = [_unit_schema(unit) for unit in units]  # what each unit's sources hold
    first = shared[0]
    positions = {d.name: i for i, d in enumerate(plan.pattern.dims)}
    concat_dims = tuple(d.name for d in plan.concat_dims)

    for schema in shared:
        for dim in concat_dims:
            if dim not in schema.dims:
                raise SchemaError(
                    f"the source has no dimension '{dim}' to concatenate along "
                    f"(its dimensions: {', '.join(schema.dims) or 'none'})",
                    where=schema.url,
                    fix=f"add the transform `expand_dims: {{dim: {dim}, from_key: true}}`, or "
                    "rename the file's dimension to match the pattern.",
                )
            if dim not in schema.index_coords:
                raise SchemaError(
                    f"the source has dimension '{dim}' but no '{dim}' coordinate to order it by",
                    where=schema.url,
                    fix=f"give the files a '{dim}' coordinate (expand_dims with from_key).",
                )

    # Where each key along each concat dim lands: all sources at one key must agree.
    dense = any(isinstance(unit, InferredSources) for unit in units)
    offsets: dict[str, tuple[int, ...]] = {}
    coords: dict[str, np.ndarray] = {}
    for dim in concat_dims:
        p = positions[dim]
        offsets[dim], coords[dim] = (_concat_dense(plan, dim, p, units) if dense
                                     else _concat_each(plan, dim, p, shared))

    # Every other dimension must have the same size and coordinate in every source.
    dims: dict[str, int] = {}
    for schema in shared:
        for dim, size in schema.dims.items():
            if dim in offsets:
                continue
            if dim not in dims:
                dims[dim] = size
                if dim in schema.index_coords:
                    coords[dim] = schema.index_coords[dim]
                continue
            if size != dims[dim]:
                raise SchemaError(
                    f"dimension '{dim}' has size {size} here but {dims[dim]} in {first.url}: "
                    "the source is on a different grid",
                    where=schema.url,
                    fix="all sources must share one grid; regrid the odd file upstream or select "
                    f"a common region with `sel` / `isel` on '{dim}'.",
                )
            if (
                dim in schema.index_coords
                and dim in coords
                and not _same(schema.index_coords[dim], coords[dim])
            ):
                raise SchemaError(
                    f"coordinate '{dim}' differs from {first.url} "
                    f"({_first_difference(schema.index_coords[dim], coords[dim])}): "
                    "the source is on a different grid",
                    where=schema.url,
                    fix="all sources must share one grid; regrid the odd file upstream.",
                )
    all_dims = {d: int(offsets[d][-1]) for d in concat_dims} | dims
    ordered_dims = {d: all_dims[d] for d in _dim_order(shared)}

    # Variables: the first source that has one defines it; later ones must agree.
    variables: dict[str, VariableSchema] = {}
    coord_vars: dict[str, VariableSchema] = {}
    owners: dict[str, SourceKey] = {}
    # Which keys along a variable's concat dims have it (a flag per key combination).
    seen_at: dict[str, np.ndarray] = {}
    notes: list[str] = []
    # Sources that share a variables dict (inferred ones share their reference's) are
    # checked once; each of them then only marks where it sits.
    checked: dict[int, list[tuple[str, list[int]]]] = {}
    for unit, schema in zip(units, shared, strict=True):
        known = checked.get(id(schema.variables))
        if known is not None:
            for name, places in known:
                _mark(seen_at[name], unit, places)
            continue
        records: list[tuple[str, list[int]]] = []
        checked[id(schema.variables)] = records
        for name, var in schema.variables.items():
            if name in coords and var.dims == (name,):
                if name not in coord_vars:
                    encoding = {
                        k: v for k, v in var.encoding.items() if k in ("units", "calendar", "dtype")
                    }
                    coord_vars[name] = VariableSchema(
                        name, var.dims, (all_dims[name],), var.dtype, var.attrs, encoding, True
                    )
                continue
            places = [positions[d] for d in var.dims if d in offsets]
            ref = variables.get(name)
            if ref is None:
                encoding, note = target_encoding(var)
                if note:
                    notes.append(note)
                variables[name] = VariableSchema(
                    name,
                    var.dims,
                    tuple(all_dims[d] for d in var.dims),
                    var.dtype,
                    var.attrs,
                    encoding,
                    var.is_coord,
                )
                if not places:
                    owners[name] = _unit_key(unit)
                seen_at[name] = np.zeros([len(plan.pattern.dims[p]) for p in places], bool)
            elif ref.dims != var.dims or ref.dtype != var.dtype:
                raise SchemaError(
                    f"variable '{name}' is {var.dtype} over {var.dims} here but {ref.dtype} over "
                    f"{ref.dims} in an earlier source",
                    where=schema.url,
                    fix="make the sources agree, e.g. with `astype` or `rename` transforms.",
                )
            _mark(seen_at[name], unit, places)
            records.append((name, places))

    for name, var in variables.items():
        if name in owners:
            continue
        seen, needed = int(seen_at[name].sum()), seen_at[name].size
        if seen != needed:
            raise SchemaError(
                f"variable '{name}' is missing from some sources along "
                f"{', '.join(d for d in var.dims if d in offsets)} "
                f"({seen} of {needed} keys have it)",
                fix="every file along a concat dimension must hold the same variables; drop "
                f"'{name}' with `drop_variables` if it is not in every file.",
            )

    step_bytes = 0
    for var in variables.values():
        if set(var.dims) & set(concat_dims):
            other = [all_dims[d] for d in var.dims if d not in offsets]
            step_bytes = max(
                step_bytes, int(np.prod(other, dtype=np.int64)) * np.dtype(var.dtype).itemsize
            )
    target = plan.recipe.target
    chunks = resolve_chunks(
        target.chunks,
        int(target.chunk_size) if target.chunk_size else None,
        ordered_dims,
        concat_dims,
        step_bytes,
        recipe_file=plan.recipe_file,
    )
    return Template(
        dims=ordered_dims,
        coords=coords,
        coord_vars=coord_vars,
        variables=variables,
        attrs=dict(first.attrs),
        concat_dims=concat_dims,
        offsets=offsets,
        owners=owners,
        chunks=chunks,
        notes=tuple(notes),
    )


def _dim_order(schemas: Sequence[SourceSchema]) -> list[str]:
    """Dimensions in the order the sources list them (the first source first)."""
    order: list[str] = []
    for schema in schemas:
        for dim in schema.dims:
            if dim not in order:
                order.append(dim)
    return order
