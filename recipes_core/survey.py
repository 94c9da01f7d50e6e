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

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from recipes_core.errors import SchemaError
from recipes_core.plan.pattern import SourceKey
from recipes_core.plan.plan import Plan
from recipes_core.schema import InferredSources, SourceSchema, SurveyedSchema, Template


def can_infer(plan: Plan) -> bool:
    """Whether the recipe says enough to infer unopened sources' schemas."""
    return all(isinstance(d.keys, pd.DatetimeIndex) and d.items_per_file
               for d in plan.concat_dims)


def sample_keys(plan: Plan) -> frozenset[SourceKey] | None:
    """The sources to open while planning; None means all of them: the first, middle and
    last key along each concat dimension, with every merge key."""
    if not can_infer(plan):
        return None
    picks = [sorted({0, len(d) // 2, len(d) - 1}) if d.role == "concat" else range(len(d))
             for d in plan.pattern.dims]
    return frozenset(itertools.product(*picks))


def _nearest(keys: np.ndarray, candidates: np.ndarray, concat_positions: list[int],
             merge_positions: list[int]) -> np.ndarray:
    """For each row of ``keys``, the row of ``candidates`` with the same merge keys and the
    nearest concat keys (the first of equals), or -1 when none has its merge keys."""
    nearest = np.full(len(keys), -1, dtype=np.int64)
    merge_parts, group = np.unique(keys[:, merge_positions], axis=0, return_inverse=True)
    by_group = np.argsort(group.reshape(-1), kind="stable")  # each group's rows, in order
    edges = np.searchsorted(group.reshape(-1)[by_group], np.arange(len(merge_parts) + 1))
    for g, part in enumerate(merge_parts):
        members = by_group[edges[g]:edges[g + 1]]
        allowed = np.flatnonzero((candidates[:, merge_positions] == part).all(axis=1))
        if not allowed.size:
            continue
        distance = np.abs(keys[members][:, np.newaxis, concat_positions]
                          - candidates[allowed][np.newaxis, :, concat_positions]).sum(axis=2)
        nearest[members] = allowed[distance.argmin(axis=1)]
    return nearest


def _concat_steps(plan: Plan) -> list[tuple[int, str, np.ndarray, str]]:
    """Each date-range concat dim: its place in a key, name, keys as integers and their unit.

    Integers, because a pandas Timestamp per key costs ~10 us to box and subtract, a third of
    inferring a source (100,000 sources: 2.9 s). Differences stay in the keys' own unit, so
    dates past 2262 (a nanosecond's limit) shift as well as any.
    """
    return [(position, dim.name, dim.keys.asi8, dim.keys.unit)
            for position, dim in enumerate(plan.pattern.dims) if dim.role == "concat"]


def _shifted(steps: Sequence[tuple[int, str, np.ndarray, str]], reference: SourceSchema,
             keys: np.ndarray) -> dict[str, np.ndarray]:
    """The concat coordinates of ``keys`` (one row each) if they look like ``reference``
    shifted along the concat dims: one array operation per concat dim."""
    shifted: dict[str, np.ndarray] = {}
    for position, name, stamps, unit in steps:
        shifts = (stamps[keys[:, position]] - stamps[reference.key[position]]).astype(
            f"m8[{unit}]")
        values = reference.index_coords[name]
        shifted[name] = (values[np.newaxis, :] + shifts[:, np.newaxis]).astype(
            values.dtype, copy=False)
    return shifted


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))


def complete_survey(plan: Plan, schemas: Mapping[SourceKey, SourceSchema | None],
                    urls: Mapping[SourceKey, str],
                    ) -> tuple[list[SurveyedSchema], list[SourceKey]]:
    """Fill in the unopened sources' schemas, or list the ones that must be opened.

    Each unopened source is inferred from the sampled source with its merge keys and the
    nearest concat keys; those of one sampled source come as one :class:`InferredSources`.
    Returns the schemas, and the keys that still need opening (all unopened ones when the
    inference fails on any opened source; empty when it holds).
    """
    sampled = {k: s for k, s in schemas.items() if s is not None}
    missing = sorted(k for k, s in schemas.items() if s is None)  # batches in key order
    if not missing:
        return list(sampled.values()), []
    ndim = len(plan.pattern.dims)
    concat_positions = [i for i, d in enumerate(plan.pattern.dims) if d.role == "concat"]
    merge_positions = [i for i in range(ndim) if i not in concat_positions]
    steps = _concat_steps(plan)
    references = sorted(sampled.values(), key=lambda s: s.key)  # ties go to the earlier
    reference_keys = np.array([s.key for s in references], dtype=np.int64).reshape(-1, ndim)
    for row, schema in enumerate(references):  # the inference must hold on the sample
        others = np.delete(reference_keys, row, axis=0)
        [nearest] = _nearest(reference_keys[row:row + 1], others, concat_positions,
                             merge_positions)
        if nearest < 0:
            continue
        guess = _shifted(steps, references[nearest + (nearest >= row)],
                         reference_keys[row:row + 1])
        for dim in (d.name for d in plan.concat_dims):
            if not _same(guess[dim][0], schema.index_coords[dim]):
                return list(sampled.values()), missing  # irregular steps: open everything
    keys = np.array(missing, dtype=np.int64).reshape(-1, ndim)
    nearest = _nearest(keys, reference_keys, concat_positions, merge_positions)
    if (nearest < 0).any():  # a merge key with no opened source: nothing to infer from
        return list(sampled.values()), missing
    inferred: list[SurveyedSchema] = []
    for ref in np.unique(nearest).tolist():
        rows = np.flatnonzero(nearest == ref)
        followers = keys[rows]
        inferred.append(InferredSources(
            references[ref], followers, tuple(urls[missing[i]] for i in rows.tolist()),
            _shifted(steps, references[ref], followers)))
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
