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

When the target chunks are far from the files' layout (daily files into chunks that span the
whole time axis but few grid cells), narrowing would make every task read every file, so the
bake rechunks in stages instead (:func:`plan_staging`, the arithmetic in
:mod:`recipes_core.plan.rechunk`): write tasks fill an intermediate store whose chunks suit the
files, and copy tasks move whole blocks from store to store, each within ``max_bytes``.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from recipes_core.errors import PlanError
from recipes_core.plan.pattern import SourceKey
from recipes_core.plan.plan import Plan
from recipes_core.plan.rechunk import RechunkPlan, copy_blocks, plan_rechunk
from recipes_core.schema import Template, VariableSchema

Box = tuple[tuple[str, int, int], ...]  # (dim, start, stop) for the dims the task restricts


def _bounds(box: Box, dim: str, size: int) -> tuple[int, int]:
    for name, start, stop in box:
        if name == dim:
            return start, stop
    return 0, size


@dataclass(frozen=True)
class WriteTask:
    """Fill the write units of ``variables`` inside ``box`` from ``sources``.

    ``store`` is where they go: 0 the target, ``k`` the k-th intermediate store of a staged
    rechunk.
    """

    index: int
    box: Box
    variables: tuple[str, ...]
    sources: tuple[SourceKey, ...]
    store: int = 0

    def bounds(self, dim: str, size: int) -> tuple[int, int]:
        return _bounds(self.box, dim, size)


def _unit_ranges(size: int, unit: int) -> list[tuple[int, int]]:
    return [(start, min(start + unit, size)) for start in range(0, size, unit)] or [(0, 0)]


def _group(ranges: list[tuple[int, int]], groups: int) -> list[tuple[int, int]]:
    """Merge consecutive unit ranges into ``groups`` contiguous spans of about equal length."""
    groups = max(1, min(groups, len(ranges)))
    edges = np.linspace(0, len(ranges), groups + 1).round().astype(int)
    return [(ranges[a][0], ranges[b - 1][1]) for a, b in itertools.pairwise(edges) if b > a]


def _bytes(var: VariableSchema, extents: Mapping[str, int]) -> int:
    # math.prod on Python ints: exact, and a tenth of np.prod's cost on a short list (it
    # runs for every variable of every row: 100,000 daily sources, 0.1 s of np.prod)
    return math.prod(extents[d] for d in var.dims) * np.dtype(var.dtype).itemsize


def _by_concat_index(keys: Sequence[SourceKey], positions: Mapping[str, int],
                     concat: Sequence[str]) -> dict[tuple[int, ...], list[SourceKey]]:
    """The sources by their indices along the concat dims (in order; the merge dims' keys
    share an entry), so that a row finds its sources without a scan of every key."""
    index: defaultdict[tuple[int, ...], list[SourceKey]] = defaultdict(list)
    places = [positions[d] for d in concat]
    if len(places) == 1:  # the usual case (one concat dim): no list built per key
        place = places[0]
        for key in keys:
            index[(key[place],)].append(key)
    else:
        for key in keys:
            index[tuple([key[p] for p in places])].append(key)
    return index


def _sources_overlapping(template: Template, concat_box: Mapping[str, tuple[int, int]],
                         by_index: Mapping[tuple[int, ...], list[SourceKey]],
                         ) -> tuple[SourceKey, ...]:
    """The sources whose concat extents intersect the box (all merge keys included), in key
    order. ``concat_box`` has the concat dims in the order of ``by_index``'s keys."""
    wanted: list[range] = []
    for dim, (start, stop) in concat_box.items():
        offsets = template.offsets[dim]  # a tuple: bisect, not searchsorted's array copy
        first = bisect.bisect_right(offsets, start) - 1
        last = bisect.bisect_left(offsets, stop)
        wanted.append(range(max(first, 0), last))
    return tuple(sorted(key for indices in itertools.product(*wanted)
                        for key in by_index.get(indices, ())))


def plan_write_tasks(
    template: Template,
    write_units: Mapping[str, tuple[int, ...]],
    keys: Sequence[SourceKey],
    positions: Mapping[str, int],
    max_bytes: int,
    stacked_store: int = 0,
) -> list[WriteTask]:
    """Tasks that together write every write unit of every variable exactly once.

    ``write_units`` gives each variable's write-unit shape (chunks, or shards); ``keys`` the
    sources in order; ``positions`` each pattern dim's place in a key. Variables along the
    concat dims go to store ``stacked_store`` (an intermediate store when staging), the others
    to the target.
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
        by_index = _by_concat_index(keys, positions, concat)
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
            sources = _sources_overlapping(template, row_box, by_index)
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
                    tasks.append(WriteTask(len(tasks), box, names, sources, stacked_store))

    for name in static:
        var = template.variables[name]
        owner = template.owners[name]
        ranges = [_unit_ranges(size, unit) for size, unit
                  in zip(var.shape, write_units[name], strict=True)]
        for cell in itertools.product(*ranges):
            box = tuple((d, a, b) for d, (a, b) in zip(var.dims, cell, strict=True))
            tasks.append(WriteTask(len(tasks), box, (name,), (owner,)))
    return tasks


@dataclass(frozen=True)
class CopyTask:
    """Copy the block ``box`` of ``variables`` from store ``hop`` into the next store.

    Stores are numbered as in :class:`WriteTask`: hop ``k`` reads intermediate ``k`` and writes
    intermediate ``k + 1``, or the target (0) after the last intermediate.
    """

    index: int
    hop: int
    box: Box
    variables: tuple[str, ...]

    def bounds(self, dim: str, size: int) -> tuple[int, int]:
        return _bounds(self.box, dim, size)


@dataclass(frozen=True)
class Staging:
    """A staged rechunk of the variables along the concat dims, which share ``dims``."""

    dims: tuple[str, ...]
    variables: tuple[str, ...]
    plan: RechunkPlan

    @property
    def stores(self) -> int:
        """How many intermediate stores."""
        return len(self.plan.intermediates)

    def chunks(self, store: int) -> dict[str, int]:
        """The chunk shape of intermediate store ``store`` (1-based), by dimension."""
        return dict(zip(self.dims, self.plan.intermediates[store - 1], strict=True))

    def destination(self, hop: int) -> int:
        return hop + 1 if hop < self.stores else 0

    def copy_tasks(self, hop: int) -> list[CopyTask]:
        """The tasks of hop ``hop`` (1-based; hop 0 is the write tasks)."""
        block = self.plan.hops[hop].block
        return [CopyTask(i, hop, tuple((d, a, b) for d, (a, b)
                                       in zip(self.dims, region, strict=True)),
                         self.variables)
                for i, region in enumerate(copy_blocks(self.plan.shape, block))]


# Transforms that leave the dimensions and the chunking as the recipe's target states them.
_LAYOUT_NEUTRAL = frozenset({"select_variables", "drop_variables", "set_attrs"})


def staging_possible(plan: Plan) -> bool:
    """Whether a staged rechunk could ever be chosen for this plan, from the recipe alone.

    It cannot when there is one concat dimension and the target leaves every other dimension
    whole (``-1`` or unnamed in ``target.chunks``, unnamed in ``target.shards``): the files and
    the write units then differ along one dimension only, where no intermediate store costs
    fewer operations than reading the files straight into the units (checked against
    :func:`plan_rechunk` in tests/unit/test_rechunk.py). The bake then builds its graph
    without the rechunk hops, a few Beam stages less. When unsure, True.
    """
    if len(plan.concat_dims) != 1:
        return True
    if any(step.name not in _LAYOUT_NEUTRAL for step in plan.recipe.transforms):
        return True
    concat = plan.concat_dims[0].name
    target = plan.recipe.target
    if any(dim != concat and size != -1 for dim, size in (target.chunks or {}).items()):
        return True
    return any(dim != concat for dim in (target.shards or {}))


def plan_staging(template: Template, write_units: Mapping[str, tuple[int, ...]],
                 max_bytes: int, max_hops: int = 3) -> Staging | None:
    """A staged rechunk when it costs fewer I/O operations than writing straight from the files;
    None for the direct path.

    The model is the dataset's array with one element per grid point carrying every stacked
    variable (so ``itemsize`` is their sum): the first hop reads one file's extent along the
    concat dims (the largest file) and the whole of the other dims, the last writes the
    target's write units. Staging needs every stacked variable to share the same dims.
    """
    concat = template.concat_dims
    stacked = [n for n, v in template.variables.items() if set(v.dims) & set(concat)]
    if not stacked or len({template.variables[n].dims for n in stacked}) != 1:
        return None
    dims = template.variables[stacked[0]].dims
    shape = tuple(template.dims[d] for d in dims)
    files = {d: int(np.diff(template.offsets[d]).max(initial=1)) for d in concat}
    source = tuple(files.get(d, template.dims[d]) for d in dims)
    if len({tuple(write_units[n]) for n in stacked}) != 1:
        return None
    target = tuple(write_units[stacked[0]])
    itemsize = sum(np.dtype(template.variables[n].dtype).itemsize for n in stacked)
    try:
        plan = plan_rechunk(shape, source, target, itemsize, max_bytes, max_stages=max_hops)
    except PlanError:
        # A file or a write unit alone is over the bound: no staging fits either, and the
        # direct path still works (one unit, or one file, per task).
        return None
    if not plan.intermediates:
        return None
    return Staging(dims, tuple(stacked), plan)
