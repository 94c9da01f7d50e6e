"""Multi-stage rechunk plans: how to go from one chunk layout to another within ``max_mem``.

A bake copies sources into target chunks. When the two layouts are far apart (one netCDF file
per day, into target chunks that span the whole time axis but only a few grid cells), a single
copy hop has two bad choices: hold huge blocks of the target in memory, or read every source
file once per small block. The way out (the rechunker pattern) is to go through one or more
intermediate Zarr stores whose chunk shapes lie geometrically between the source and the target,
so that each hop only changes the layout a little and every hop fits in ``max_mem``.

This module is only the arithmetic, pure and property-tested against brute-force oracles: which
intermediate chunk shapes, which copy blocks, and what each hop costs. The cost model:

* A hop reads the previous store (the first hop: the sources, one read chunk per file) and
  writes whole chunks of the next store. A copy task writes one *block*: a whole number of write
  chunks per dimension (clipped at the array's edge), grown up to the memory left beside one
  decoded read chunk, last axis first, the way rechunker consolidates writes.
* Every read chunk that overlaps a block is one read op *for that block* (so a chunk read by
  two blocks costs two: that is the read amplification); every write chunk is one write op.
* A task holds its block plus one read chunk in flight; that must fit in ``max_mem``.

Among plans of 1..``max_stages`` hops the cheapest in total ops wins, ties going to fewer hops,
since every intermediate store is a full extra copy of the array on disk.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from recipes_core.errors import PlanError
from recipes_core.plan.chunks import ChunkGrid

Shape = tuple[int, ...]


def _prod(values: Shape) -> int:
    # Python ints: element counts of real archives overflow int32 and products of several
    # shapes can overflow int64.
    return math.prod(values)


def _clip(chunks: Shape, shape: Shape) -> Shape:
    """Chunks no larger than the array, and at least one element (zarr needs that even at 0)."""
    return tuple(max(1, min(c, s)) for c, s in zip(chunks, shape, strict=True))


def _pairs_along(size: int, block: int, read: int) -> int:
    """How many (block, read chunk) pairs share an element along one dimension.

    Each such pair is one piece of the common refinement of the two grids, and the refinement has
    one piece more than it has distinct interior boundaries: those of both grids, minus the
    boundaries they share (the multiples of their lcm).
    """
    if size == 0:
        return 0
    blocks = -(-size // block)
    reads = -(-size // read)
    shared = (size - 1) // math.lcm(block, read)
    return blocks + reads - 1 - shared


@dataclass(frozen=True)
class Hop:
    """Copy an array stored with chunks `read_chunks` into a store with chunks `write_chunks`."""

    read_chunks: Shape
    write_chunks: Shape
    block: Shape  # a copy task writes one block: a whole multiple of write_chunks (clipped)

    def io_ops(self, shape: Shape) -> int:
        """Read ops plus write ops of this hop over an array of ``shape``.

        Overlap in n dimensions is overlap in every dimension, so the (block, read chunk) pairs
        of the whole array are the product of the pairs along each dimension.
        """
        reads = _prod(tuple(_pairs_along(s, b, r) for s, b, r
                            in zip(shape, self.block, self.read_chunks, strict=True)))
        writes = ChunkGrid(shape, self.write_chunks).nchunks
        return reads + writes

    def peak_bytes(self, itemsize: int) -> int:
        """Bytes a copy task holds: its block, plus one decoded read chunk being copied in."""
        return (_prod(self.block) + _prod(self.read_chunks)) * itemsize


@dataclass(frozen=True)
class RechunkPlan:
    """The hops of a rechunk, in order; hop ``i`` writes the store hop ``i + 1`` reads."""

    shape: Shape
    itemsize: int
    max_mem: int
    hops: tuple[Hop, ...]  # len 1: copy directly; len n: n-1 intermediate stores

    @property
    def intermediates(self) -> tuple[Shape, ...]:
        """Chunk shapes of the intermediate stores, in the order they are written."""
        return tuple(hop.write_chunks for hop in self.hops[:-1])

    def io_ops(self) -> int:
        return sum(hop.io_ops(self.shape) for hop in self.hops)


def copy_blocks(shape: Shape, block: Shape) -> list[tuple[tuple[int, int], ...]]:
    """The regions ((start, stop) per dim) of the copy tasks of a hop, tiling the array once."""
    grid = ChunkGrid(tuple(shape), tuple(block))
    return [tuple((s.start, s.stop) for s in grid.region(index)) for index in grid.indices()]


def _geometric_round(start: int, stop: int, step: int, steps: int) -> int:
    """``start ** (1 - step/steps) * stop ** (step/steps)`` rounded to the nearest int, halves up.

    Decided in exact integer arithmetic (m is the answer iff (2m-1)^n <= 2^n * P < (2m+1)^n, with
    P = start^(n-k) * stop^k), because a float log/exp may land on the other side of a rounding
    edge on another platform, and a chunk size off by one is a different store layout.
    """
    scaled = 2**steps * start ** (steps - step) * stop**step
    guess = max(1, round(math.exp(((steps - step) * math.log(start)
                                   + step * math.log(stop)) / steps)))
    while guess > 1 and (2 * guess - 1) ** steps > scaled:
        guess -= 1
    while (2 * guess + 1) ** steps <= scaled:
        guess += 1
    return guess


def _stage_chunks(source: Shape, target: Shape, hops: int) -> list[Shape]:
    """Source, the ``hops - 1`` intermediate chunk shapes, and target: geometric per dimension.

    Geometric spacing changes every dimension by the same factor at each hop, which keeps each
    hop's read amplification about equal instead of piling it all on one hop.
    """
    inner = [tuple(_geometric_round(s, t, k, hops) for s, t in zip(source, target, strict=True))
             for k in range(1, hops)]
    return [source, *inner, target]


def _consolidate(shape: Shape, read: Shape, write: Shape, budget: int) -> Shape:
    """The copy block: write chunks grown, last axis first, until ``budget`` elements are full.

    An axis is taken whole if that fits; otherwise it grows by the largest whole multiple that
    fits, and then the block is full (less than one more multiple of any axis would fit).
    Bigger blocks mean fewer tasks, so each read chunk is read by fewer of them.
    """
    block = list(write)
    for axis in reversed(range(len(shape))):
        rest = _prod(tuple(block)) // block[axis]
        whole = max(1, shape[axis])
        if rest * whole <= budget:
            block[axis] = whole
            continue
        block[axis] = min(write[axis] * (budget // (rest * write[axis])), whole)
        break
    return tuple(block)


def _mib(nbytes: int) -> str:
    mib = nbytes / 2**20
    return f"{mib:.1f} MiB" if mib >= 0.1 else f"{mib:.2g} MiB"


def plan_rechunk(shape: Shape, source_chunks: Shape, target_chunks: Shape, itemsize: int,
                 max_mem: int, max_stages: int = 4) -> RechunkPlan:
    """The cheapest plan of 1..``max_stages`` hops from ``source_chunks`` to ``target_chunks``.

    ``source_chunks`` is the extent of one source file (the unit the first hop reads);
    ``max_mem`` bounds the bytes any copy task holds. Raises :class:`PlanError` when even one
    target chunk beside one source chunk does not fit, because then no hop into the target can.
    """
    shape = tuple(int(s) for s in shape)
    if not len(shape) == len(source_chunks) == len(target_chunks):
        raise ValueError(f"shape {shape}, source chunks {source_chunks} and target chunks "
                         f"{target_chunks} differ in rank")
    if any(s < 0 for s in shape):
        raise ValueError(f"array sizes must not be negative, got {shape}")
    if any(c < 1 for c in (*source_chunks, *target_chunks)):
        raise ValueError(f"chunk sizes must be positive, got {source_chunks} and {target_chunks}")
    if itemsize < 1 or max_stages < 1:
        raise ValueError(f"itemsize ({itemsize}) and max_stages ({max_stages}) must be positive")
    source = _clip(tuple(source_chunks), shape)
    target = _clip(tuple(target_chunks), shape)
    capacity = max_mem // itemsize  # elements a task may hold

    need = (_prod(source) + _prod(target)) * itemsize
    if need > max_mem:
        raise PlanError(
            f"a copy task holds at least one target chunk ({_mib(_prod(target) * itemsize)}) "
            f"and one source chunk ({_mib(_prod(source) * itemsize)}), {_mib(need)} in all, "
            f"more than the {_mib(max_mem)} a task may use.",
            where="target.chunks",
            fix=f"raise max_task_memory in the runner profile to at least {_mib(need)}, "
                "or use smaller target chunks.",
        )

    best: RechunkPlan | None = None
    for count in range(1, max_stages + 1):
        stages = _stage_chunks(source, target, count)
        pairs = list(itertools.pairwise(stages))
        # Two mid-sized stages can outweigh one big and one small chunk, so a geometric plan
        # may not fit where the direct hop does; it is then simply not a candidate.
        if any(_prod(read) + _prod(write) > capacity for read, write in pairs):
            continue
        hops = tuple(Hop(read, write, _consolidate(shape, read, write, capacity - _prod(read)))
                     for read, write in pairs)
        plan = RechunkPlan(shape, itemsize, max_mem, hops)
        if best is None or plan.io_ops() < best.io_ops():
            best = plan
    assert best is not None  # the one-hop plan is feasible once the check above passed
    return best
