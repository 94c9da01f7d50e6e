"""Execute a write task: read the sources' slices, encode them, write whole units.

Each task opens every source it needs once, reads only the part of each variable inside its
box, encodes it with the target encoding (one encoding for the whole dataset, so per-file time
units cannot leak), places it into the buffers of the write units it covers, and writes each
unit whole. A unit not covered exactly once is a planning bug and fails loudly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import zarr

from recipes_core.errors import TargetError
from recipes_core.plan.chunks import ChunkGrid, split_region
from recipes_core.plan.pattern import SourceKey
from recipes_core.plan.plan import Plan
from recipes_core.reading import open_for_writing
from recipes_core.schema import Template, VariableSchema
from recipes_core.storage import StagedSource
from recipes_core.survey import check_source
from recipes_core.tasks import CopyTask, WriteTask


class UnitWriter:
    """Writes whole write units into a prepared store; keeps its arrays open between calls."""

    def __init__(self, store: str) -> None:
        self.store = store
        self._arrays: dict[str, zarr.Array] = {}

    def array(self, name: str) -> zarr.Array:
        if name not in self._arrays:
            self._arrays[name] = zarr.open_array(self.store, path=name, mode="r+")
        return self._arrays[name]


def write_unit_shape(array: zarr.Array) -> tuple[int, ...]:
    shards = getattr(array, "shards", None)
    return tuple(shards) if shards else tuple(array.chunks)


class _Buffers:
    """The write units of one variable inside a task's box, filled piece by piece."""

    def __init__(self, var: VariableSchema, array: zarr.Array, task: WriteTask) -> None:
        self.var = var
        self.array = array
        self.grid = ChunkGrid(tuple(array.shape), write_unit_shape(array))
        self.box = tuple(task.bounds(d, s) for d, s in zip(var.dims, var.shape, strict=True))
        self.units: dict[tuple[int, ...], np.ndarray] = {}
        self.filled: dict[tuple[int, ...], int] = {}

    def place(self, region: tuple[tuple[int, int], ...], encoded: np.ndarray) -> None:
        """Place encoded data covering ``region`` (absolute target coordinates)."""
        for piece in split_region(region, self.grid):
            unit = self.units.get(piece.chunk)
            if unit is None:
                unit = np.empty(self.grid.chunk_shape(piece.chunk), dtype=self.array.dtype)
                self.units[piece.chunk] = unit
                self.filled[piece.chunk] = 0
            data = encoded[piece.source]
            unit[piece.within] = data
            self.filled[piece.chunk] += data.size

    def write_all(self) -> int:
        written = 0
        for index, unit in self.units.items():
            if self.filled[index] != unit.size:
                raise TargetError(
                    f"write unit {index} of '{self.var.name}' received {self.filled[index]} of "
                    f"{unit.size} values", where=self.array.store_path.path if hasattr(
                        self.array, "store_path") else self.var.name,
                    fix="this is a planning bug; please report it with the recipe.")
            self.array[self.grid.region(index)] = unit
            written += unit.nbytes
        return written


def _intersect(a: tuple[tuple[int, int], ...], b: tuple[tuple[int, int], ...],
               ) -> tuple[tuple[int, int], ...] | None:
    out = tuple((max(x0, y0), min(x1, y1)) for (x0, x1), (y0, y1) in zip(a, b, strict=True))
    return None if any(lo >= hi for lo, hi in out) else out


def run_write_task(task: WriteTask, plan: Plan, template: Template,
                   staged: Mapping[SourceKey, StagedSource], writer: UnitWriter,
                   positions: Mapping[str, int],
                   local_path: Callable[[SourceKey, StagedSource], str] | None = None,
                   ) -> tuple[int, int]:
    """Do one task; return (units written, bytes written).

    ``local_path`` finds a staged source on this worker (re-staging it, checked against the
    recorded sha256, when the worker that staged it was another machine).
    """
    buffers = {name: _Buffers(template.variables[name], writer.array(name), task)
               for name in task.variables}
    for key in task.sources:
        source = staged[key]
        path = local_path(key, source) if local_path else source.path
        with open_for_writing(plan, key, path, source.url, template) as reader:
            check_source(reader.sizes, reader.index_values(), template, key, positions,
                         source.url)
            for name, buffer in buffers.items():
                if not reader.has(name):
                    continue  # another merge key holds it
                var = buffer.var
                region = template.region_of(var, key, positions)
                inside = _intersect(region, buffer.box)
                if inside is None:
                    continue
                local = tuple(slice(lo - r0, hi - r0)
                              for (lo, hi), (r0, _r1) in zip(inside, region, strict=True))
                buffer.place(inside, reader.read_encoded(var, local))
    units = sum(len(b.units) for b in buffers.values())
    return units, sum(b.write_all() for b in buffers.values())


def run_copy_task(task: CopyTask, template: Template, source: UnitWriter,
                  destination: UnitWriter) -> tuple[int, int]:
    """Copy one block of a staged rechunk; return (units written, bytes written).

    Values move as stored (the intermediate stores hold the target's encoded dtype and fill
    value), and the block is a whole number of the destination's write units, so every unit
    is written whole, once.
    """
    units = written = 0
    for name in task.variables:
        var = template.variables[name]
        region = tuple(slice(*task.bounds(d, s)) for d, s in zip(var.dims, var.shape, strict=True))
        data = source.array(name)[region]
        target = destination.array(name)
        target[region] = data
        grid = ChunkGrid(tuple(target.shape), write_unit_shape(target))
        units += sum(1 for _ in split_region(tuple((r.start, r.stop) for r in region), grid))
        written += data.nbytes
    return units, written
