"""The cheap schema step: open a sample of the sources, infer the rest from the recipe.

Pangeo Forge opened every file just to plan, even when the recipe said how many items each
held. When every concat dimension is a date range with ``items_per_file``, a source's
coordinate along it is the reference source's shifted by the difference of their keys, and
its variables, dtypes and grid are those of the sources beside it. So only the first, middle
and last key along each concat dimension (for every merge key) are opened to plan; the
inference is checked against every opened one, and falls back to opening everything when it
does not hold. Nothing goes unchecked: each write task checks every source it opens against the
template (:func:`check_source`). ``--full-schema-check`` opens every source up front.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from recipes_core.errors import SchemaError
from recipes_core.plan.pattern import SourceKey
from recipes_core.plan.plan import Plan
from recipes_core.schema import SourceSchema, Template


def can_infer(plan: Plan) -> bool:
    """Whether the recipe says enough to infer unopened sources' schemas."""
    return all(isinstance(d.keys, pd.DatetimeIndex) and d.items_per_file
               for d in plan.concat_dims)


def sample_keys(plan: Plan) -> frozenset[SourceKey] | None:
    """The sources to open while planning; None means all of them."""
    if not can_infer(plan):
        return None
    positions = {d.name: i for i, d in enumerate(plan.pattern.dims)}
    picks = {positions[d.name]: {0, len(d) // 2, len(d) - 1} for d in plan.concat_dims}
    return frozenset(key for key, _ in plan.sources()
                     if all(key[p] in chosen for p, chosen in picks.items()))


def _reference(key: SourceKey, sampled: Mapping[SourceKey, SourceSchema],
               concat_positions: Sequence[int]) -> SourceSchema:
    """The sampled source with the same merge keys and the nearest concat keys."""
    same = [s for k, s in sampled.items()
            if all(k[p] == key[p] for p in range(len(key)) if p not in concat_positions)]
    return min(same, key=lambda s: sum(abs(s.key[p] - key[p]) for p in concat_positions))


def infer_schema(plan: Plan, reference: SourceSchema, key: SourceKey, url: str) -> SourceSchema:
    """The schema of ``key`` if it looks like ``reference`` shifted along the concat dims."""
    coords = dict(reference.index_coords)
    for position, dim in enumerate(plan.pattern.dims):
        if dim.role != "concat":
            continue
        shift = dim.keys[key[position]] - dim.keys[reference.key[position]]
        values = reference.index_coords[dim.name]
        coords[dim.name] = (values + np.timedelta64(shift.value, "ns")).astype(values.dtype)
    return dataclasses.replace(reference, key=key, url=url, index_coords=coords)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))


def complete_survey(plan: Plan, schemas: Mapping[SourceKey, SourceSchema | None],
                    urls: Mapping[SourceKey, str]) -> tuple[list[SourceSchema], list[SourceKey]]:
    """Fill in the unopened sources' schemas, or list the ones that must be opened.

    Returns the schemas, and the keys that still need opening (all unopened ones when the
    inference fails on any opened source; empty when it holds).
    """
    sampled = {k: s for k, s in schemas.items() if s is not None}
    missing = [k for k, s in schemas.items() if s is None]
    if not missing:
        return list(sampled.values()), []
    concat_positions = [i for i, d in enumerate(plan.pattern.dims) if d.role == "concat"]
    for key, schema in sampled.items():
        others = {k: s for k, s in sampled.items() if k != key}
        if not others:
            continue
        guess = infer_schema(plan, _reference(key, others, concat_positions), key, schema.url)
        for dim in (d.name for d in plan.concat_dims):
            if not _same(guess.index_coords[dim], schema.index_coords[dim]):
                return list(sampled.values()), missing  # irregular steps: open everything
    inferred = [infer_schema(plan, _reference(k, sampled, concat_positions), k, urls[k])
                for k in missing]
    return list(sampled.values()) + inferred, []


def _difference(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape:
        return f"{a.size} values instead of {b.size}"
    equal = (a == b) | ((a != a) & (b != b)) if a.dtype.kind == "f" else a == b
    i = int(np.flatnonzero(~equal)[0])
    return f"position {i}: {a[i]!r} instead of {b[i]!r}"


def check_source(sizes: Mapping[str, int], index_values: Mapping[str, np.ndarray],
                 template: Template, key: SourceKey, positions: Mapping[str, int],
                 url: str) -> None:
    """Refuse a source that does not fit the template (grid, lengths, coordinates).

    ``sizes`` are the source's dimension sizes and ``index_values`` the decoded values of its
    dimension coordinates. Write tasks call this on every source they open, so sources the
    survey only inferred are checked as thoroughly as opened ones, at no extra cost.
    """
    for dim, size in template.dims.items():
        if dim not in sizes:
            continue
        if dim in template.offsets:
            i = key[positions[dim]]
            start, stop = template.offsets[dim][i], template.offsets[dim][i + 1]
            expected = template.coords[dim][start:stop]
            if sizes[dim] != stop - start:
                raise SchemaError(
                    f"the source has {sizes[dim]} steps along '{dim}' where the plan expects "
                    f"{stop - start} (items_per_file)", where=url,
                    fix="fix items_per_file in the recipe, or bake with --full-schema-check.")
        else:
            expected = template.coords.get(dim)
            if sizes[dim] != size:
                raise SchemaError(
                    f"dimension '{dim}' has size {sizes[dim]} here but {size} in the other "
                    "sources: the source is on a different grid", where=url,
                    fix="all sources must share one grid; regrid the odd file upstream or "
                    f"select a common region with `sel` / `isel` on '{dim}'.")
        if expected is not None and dim in index_values:
            actual = np.asarray(index_values[dim])
            same = np.array_equal(actual, expected, equal_nan=actual.dtype.kind == "f")
            if not same:
                raise SchemaError(
                    f"coordinate '{dim}' differs from the plan ({_difference(actual, expected)})"
                    + ("" if dim in template.offsets else ": the source is on a different grid"),
                    where=url,
                    fix="the sources' coordinates must line up with the recipe's keys; check "
                    "the pattern and items_per_file, or bake with --full-schema-check.")
