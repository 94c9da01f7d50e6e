"""Write tasks: which target chunks one task fills, and which sources it reads (pure).

Instead of shuffling data (every piece of every file grouped by chunk, which put whole target
chunks, or the whole dataset, in one worker's memory), the bake groups *references*: a task
owns a box of whole write units (chunks, or shards when sharding) and reads, from each source
that overlaps the box, only the slice it needs. Read, encode and write are fused; no data
crosses a shuffle; each source byte is read about once; and a task's memory is bounded by
``max_bytes`` (a box is narrowed along non-concat dimensions until it fits, unless a single
write unit is larger).

A task's box is a row of write units along the concat dimensions, spanning as much of the
other dimensions as fits. Variables without a concat dimension are written by tasks that read
only their owning source.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from recipes_core.plan.pattern import SourceKey
from recipes_core.schema import Template, VariableSchema

Box = tuple[tuple[str, int, int], ...]  # (dim, start, stop) for the dims the task restricts


@dataclass(frozen=True)
class WriteTask:
    """Fill the write units of ``variables`` inside ``box`` from ``sources``."""

    index: int
    box: Box
    variables: tuple[str, ...]
    sources: tuple[SourceKey, ...]

    def bounds(self, dim: str, size: int) -> tuple[int, int]:
        for name, start, stop in self.box:
            if name == dim:
                return start, stop
        return 0, size


def _unit_ranges(size: int, unit: int) -> list[tuple[int, int]]:
    return [(start, min(start + unit, size)) for start in range(0, size, unit)] or [(0, 0)]


def _group(ranges: list[tuple[int, int]], groups: int) -> list[tuple[int, int]]:
    """Merge consecutive unit ranges into ``groups`` contiguous spans of about equal length."""
    groups = max(1, min(groups, len(ranges)))
    edges = np.linspace(0, len(ranges), groups + 1).round().astype(int)
    return [(ranges[a][0], ranges[b - 1][1]) for a, b in itertools.pairwise(edges) if b > a]


def _bytes(var: VariableSchema, extents: Mapping[str, int]) -> int:
    return int(np.prod([extents[d] for d in var.dims], dtype=np.int64)) * np.dtype(
        var.dtype).itemsize


def _sources_overlapping(template: Template, concat_box: Mapping[str, tuple[int, int]],
                         positions: Mapping[str, int], all_keys: Sequence[SourceKey],
                         ) -> tuple[SourceKey, ...]:
    """The sources whose concat extents intersect the box (all merge keys included)."""
    wanted: dict[int, range] = {}
    for dim, (start, stop) in concat_box.items():
        offsets = template.offsets[dim]
        first = int(np.searchsorted(offsets, start, side="right")) - 1
        last = int(np.searchsorted(offsets, stop, side="left"))
        wanted[positions[dim]] = range(max(first, 0), last)
    return tuple(k for k in all_keys
                 if all(k[p] in indices for p, indices in wanted.items()))


def plan_write_tasks(
    template: Template,
    write_units: Mapping[str, tuple[int, ...]],
    keys: Sequence[SourceKey],
    positions: Mapping[str, int],
    max_bytes: int,
) -> list[WriteTask]:
    """Tasks that together write every write unit of every variable exactly once.

    ``write_units`` gives each variable's write-unit shape (chunks, or shards); ``keys`` the
    sources in order; ``positions`` each pattern dim's place in a key.
    """
    concat = template.concat_dims
    keys = sorted(keys)
    tasks: list[WriteTask] = []
    unit_of = {dim: size for var, shape in write_units.items()
               for dim, size in zip(template.variables[var].dims, shape, strict=True)}
    stacked = [n for n, v in template.variables.items() if set(v.dims) & set(concat)]
    static = [n for n in template.variables if n not in stacked]

    if stacked:
        others = [d for d in template.dims if d not in concat]
        rows = itertools.product(*(_unit_ranges(template.dims[d], unit_of.get(d, 1))
                                   for d in concat))
        for row in rows:
            row_box = dict(zip(concat, row, strict=True))
            extents = {d: template.dims[d] for d in others}
            extents.update({d: b - a for d, (a, b) in row_box.items()})
            spans = {d: [(0, template.dims[d])] for d in others}
            # Narrow along the other dims, first to last, until a task fits in memory.
            for dim in others:
                need = sum(_bytes(template.variables[n], extents) for n in stacked)
                if need <= max_bytes:
                    break
                units = _unit_ranges(template.dims[dim], unit_of.get(dim, template.dims[dim]))
                spans[dim] = _group(units, -(-need // max_bytes))
                extents[dim] = max(b - a for a, b in spans[dim])
            sources = _sources_overlapping(template, row_box, positions, keys)
            for column in itertools.product(*(spans[d] for d in others)):
                box = tuple((d, a, b) for d, (a, b) in row_box.items()) + tuple(
                    (d, a, b) for d, (a, b) in zip(others, column, strict=True)
                    if (a, b) != (0, template.dims[d]))
                # A variable that lacks a narrowed dim is written by the first span of it
                # only, or every span would write its units again.
                first = {d: span == spans[d][0] for d, span in zip(others, column, strict=True)}
                names = tuple(n for n in stacked
                              if all(first[d] for d in others if d not in
                                     template.variables[n].dims))
                if names:
                    tasks.append(WriteTask(len(tasks), box, names, sources))

    for name in static:
        var = template.variables[name]
        owner = template.owners[name]
        ranges = [_unit_ranges(size, unit) for size, unit
                  in zip(var.shape, write_units[name], strict=True)]
        for cell in itertools.product(*ranges):
            box = tuple((d, a, b) for d, (a, b) in zip(var.dims, cell, strict=True))
            tasks.append(WriteTask(len(tasks), box, (name,), (owner,)))
    return tasks
