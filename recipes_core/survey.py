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


def _merge_part(key: SourceKey, concat_positions: Sequence[int]) -> tuple[int, ...]:
    """The key without its concat places: sources with equal merge parts share a sample."""
    return tuple(k for p, k in enumerate(key) if p not in concat_positions)


def _nearest(key: SourceKey, candidates: Sequence[SourceSchema],
             concat_positions: Sequence[int]) -> SourceSchema:
    """The candidate with the nearest concat keys (the first of equals). A loop, not
    ``min(key=...)``: called once per unopened source, and the lambda costs 0.15 s over
    100,000 of them."""
    best, best_distance = candidates[0], None
    for candidate in candidates:
        distance = sum(abs(candidate.key[p] - key[p]) for p in concat_positions)
        if best_distance is None or distance < best_distance:
            best, best_distance = candidate, distance
    return best


def _concat_steps(plan: Plan) -> list[tuple[int, str, np.ndarray, str]]:
    """Each date-range concat dim: its place in a key, name, keys as integers and their unit.

    Integers, because a pandas Timestamp per key costs ~10 us to box and subtract, a third of
    inferring a source (100,000 sources: 2.9 s). Differences stay in the keys' own unit, so
    dates past 2262 (a nanosecond's limit) shift as well as any.
    """
    return [(position, dim.name, dim.keys.asi8, dim.keys.unit)
            for position, dim in enumerate(plan.pattern.dims) if dim.role == "concat"]


def _shifted(steps: Sequence[tuple[int, str, np.ndarray, str]], reference: SourceSchema,
             keys: Sequence[SourceKey], urls: Mapping[SourceKey, str]) -> list[SourceSchema]:
    """The schemas of ``keys`` if they look like ``reference`` shifted along the concat dims:
    one array operation per concat dim (each source's coordinate is a row of the result)."""
    shifted: dict[str, np.ndarray] = {}
    for position, name, stamps, unit in steps:
        places = np.fromiter((key[position] for key in keys), dtype=np.int64, count=len(keys))
        shifts = (stamps[places] - stamps[reference.key[position]]).astype(f"m8[{unit}]")
        values = reference.index_coords[name]
        shifted[name] = (values[np.newaxis, :] + shifts[:, np.newaxis]).astype(
            values.dtype, copy=False)
    out = []
    for row, key in enumerate(keys):
        coords = dict(reference.index_coords)
        for name, rows in shifted.items():
            coords[name] = rows[row]
        out.append(SourceSchema(key=key, url=urls[key], dims=reference.dims,
                                variables=reference.variables, index_coords=coords,
                                attrs=reference.attrs))
    return out


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))


def complete_survey(plan: Plan, schemas: Mapping[SourceKey, SourceSchema | None],
                    urls: Mapping[SourceKey, str]) -> tuple[list[SourceSchema], list[SourceKey]]:
    """Fill in the unopened sources' schemas, or list the ones that must be opened.

    Each unopened source is inferred from the sampled source with its merge keys and the
    nearest concat keys. Returns the schemas, and the keys that still need opening (all
    unopened ones when the inference fails on any opened source; empty when it holds).
    """
    sampled = {k: s for k, s in schemas.items() if s is not None}
    missing = [k for k, s in schemas.items() if s is None]
    if not missing:
        return list(sampled.values()), []
    concat_positions = [i for i, d in enumerate(plan.pattern.dims) if d.role == "concat"]
    steps = _concat_steps(plan)
    by_merge: dict[tuple[int, ...], list[SourceSchema]] = {}
    for key, schema in sampled.items():
        by_merge.setdefault(_merge_part(key, concat_positions), []).append(schema)
    for key, schema in sampled.items():
        others = [s for s in by_merge[_merge_part(key, concat_positions)] if s.key != key]
        if not others:
            continue
        [guess] = _shifted(steps, _nearest(key, others, concat_positions), [key],
                           {key: schema.url})
        for dim in (d.name for d in plan.concat_dims):
            if not _same(guess.index_coords[dim], schema.index_coords[dim]):
                return list(sampled.values()), missing  # irregular steps: open everything
    followers: dict[SourceKey, list[SourceKey]] = {}
    for key in missing:
        reference = _nearest(key, by_merge[_merge_part(key, concat_positions)],
                             concat_positions)
        followers.setdefault(reference.key, []).append(key)
    inferred = [schema for ref, keys in followers.items()
                for schema in _shifted(steps, sampled[ref], keys, urls)]
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
