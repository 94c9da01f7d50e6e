"""Multi-stage rechunk planning against brute-force oracles.

The oracles label every element of a small array with the block, read chunk and write chunk it
falls in, and count distinct (block, chunk) pairs, so a hop's cost is checked element by element
rather than by the per-dimension closed form the planner uses. Optimality is checked by
rebuilding every candidate plan (geometric stages, consolidated blocks) independently here.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recipes_core.errors import PlanError
from recipes_core.plan.rechunk import Hop, RechunkPlan, copy_blocks, plan_rechunk

SETTINGS = settings(max_examples=200, deadline=None)
MiB = 2**20

# Rank 3 arrays stay small so the element-level oracles are quick.
_MAX_SIZE = {0: 0, 1: 20, 2: 16, 3: 10}

Shape = tuple[int, ...]


# -- strategies ---------------------------------------------------------------------------------


@st.composite
def shapes(draw: st.DrawFn, min_rank: int = 1) -> Shape:
    rank = draw(st.integers(min_rank, 3))
    return tuple(draw(st.lists(st.integers(0, _MAX_SIZE[rank]), min_size=rank, max_size=rank)))


def chunks_for(shape: Shape) -> st.SearchStrategy[Shape]:
    # Up to a few elements past the array, so clipping is exercised.
    return st.tuples(*(st.integers(1, s + 3) for s in shape))


@st.composite
def problems(draw: st.DrawFn) -> tuple[Shape, Shape, Shape, int, int]:
    """(shape, source_chunks, target_chunks, itemsize, max_stages); rank 0 included."""
    shape = draw(shapes(min_rank=0))
    return (shape, draw(chunks_for(shape)), draw(chunks_for(shape)),
            draw(st.sampled_from([1, 2, 4, 8])), draw(st.integers(1, 4)))


@st.composite
def crossing_problems(draw: st.DrawFn) -> tuple[Shape, Shape, Shape, int, int]:
    """Source and target long on opposite axes (daily files into time series, in small).

    Random chunks almost never make an intermediate store pay off on arrays this small; these
    layouts do, often, so the optimality oracle sees real multi-stage plans.
    """
    rank = draw(st.integers(2, 3))
    low, high = {2: (6, 20), 3: (4, 10)}[rank]
    shape = tuple(draw(st.lists(st.integers(low, high), min_size=rank, max_size=rank)))
    flips = draw(st.lists(st.booleans(), min_size=rank, max_size=rank).filter(
        lambda f: any(f) and not all(f)))
    source = tuple(s if f else 1 for s, f in zip(shape, flips, strict=True))
    target = tuple(1 if f else s for s, f in zip(shape, flips, strict=True))
    return shape, source, target, draw(st.sampled_from([1, 4])), draw(st.integers(2, 4))


@st.composite
def feasible_problems(draw: st.DrawFn) -> tuple[Shape, Shape, Shape, int, int, int]:
    shape, source, target, itemsize, stages = draw(st.one_of(problems(), crossing_problems()))
    need = (_elements(source, shape) + _elements(target, shape)) * itemsize
    # Mostly tight memory (where the plans differ), sometimes room for the whole array.
    slack = draw(st.one_of(st.integers(0, need // 4), st.integers(0, 2 * math.prod(shape))))
    return shape, source, target, itemsize, need + slack * itemsize, stages


@st.composite
def hops(draw: st.DrawFn) -> tuple[Shape, Hop]:
    """An arbitrary hop (not necessarily one a planner would choose) over a small array."""
    shape = draw(shapes())
    read, write = draw(chunks_for(shape)), draw(chunks_for(shape))
    block = []
    for size, w in zip(shape, write, strict=True):
        multiple = w * draw(st.integers(1, 4))
        block.append(min(multiple, max(size, 1)) if draw(st.booleans()) else multiple)
    return shape, Hop(read, write, tuple(block))


# -- oracles ------------------------------------------------------------------------------------


def _clip(chunks: Shape, shape: Shape) -> Shape:
    return tuple(max(1, min(c, s)) for c, s in zip(chunks, shape, strict=True))


def _elements(chunks: Shape, shape: Shape) -> int:
    return math.prod(_clip(chunks, shape))


def _labels(shape: Shape, chunks: Shape) -> np.ndarray:
    """The index (flattened) of the chunk each element falls in."""
    ids = np.zeros(shape, dtype=np.int64)
    for axis, (size, chunk) in enumerate(zip(shape, chunks, strict=True)):
        along = (np.arange(size) // chunk).reshape([-1 if a == axis else 1
                                                    for a in range(len(shape))])
        ids = ids * -(-size // chunk) + along
    return ids


def _pairs(a: np.ndarray, b: np.ndarray) -> int:
    """Distinct (a, b) label pairs over all elements: chunks of b touched, summed over a's."""
    if a.size == 0:
        return 0
    return np.unique(a * (int(b.max()) + 1) + b).size


def brute_io_ops(shape: Shape, hop: Hop) -> int:
    blocks = _labels(shape, hop.block)
    writes = _labels(shape, hop.write_chunks)
    # Blocks are whole write chunks, so each write chunk lies in exactly one block.
    assert _pairs(blocks, writes) == np.unique(writes).size
    return _pairs(blocks, _labels(shape, hop.read_chunks)) + np.unique(writes).size


def nearest_geometric(a: int, b: int, k: int, n: int) -> int:
    """a^((n-k)/n) * b^(k/n) rounded half up, by scanning integers (exact, no floats)."""
    scaled = 2**n * a ** (n - k) * b**k
    return next(m for m in itertools.count(1) if (2 * m + 1) ** n > scaled)


def oracle_block(shape: Shape, write: Shape, budget: int) -> Shape:
    """Largest multiple of write chunks per axis, last axis first, stopping at a partial axis."""
    block = list(write)
    for axis in range(len(shape) - 1, -1, -1):
        size = max(shape[axis], 1)
        others = math.prod(block[:axis] + block[axis + 1:])
        k = max(k for k in range(1, -(-size // write[axis]) + 1)
                if others * min(k * write[axis], size) <= budget)
        block[axis] = min(k * write[axis], size)
        if block[axis] < size:
            break
    return tuple(block)


def candidate_plans(shape: Shape, source: Shape, target: Shape, itemsize: int, max_mem: int,
                    max_stages: int) -> list[tuple[int, tuple[Hop, ...]]]:
    """Every feasible plan of 1..max_stages hops, as (brute-force io ops, hops)."""
    source, target = _clip(source, shape), _clip(target, shape)
    capacity = max_mem // itemsize
    found = []
    for n in range(1, max_stages + 1):
        stages = [source]
        for k in range(1, n):
            stages.append(tuple(nearest_geometric(a, b, k, n)
                                for a, b in zip(source, target, strict=True)))
        stages.append(target)
        plan = []
        for read, write in itertools.pairwise(stages):
            if math.prod(read) + math.prod(write) > capacity:
                break
            plan.append(Hop(read, write, oracle_block(shape, write, capacity - math.prod(read))))
        else:
            found.append((sum(brute_io_ops(shape, hop) for hop in plan), tuple(plan)))
    return found


# -- properties ---------------------------------------------------------------------------------


@SETTINGS
@given(st.data())
def test_copy_blocks_tile_the_array_once(data: st.DataObject) -> None:
    shape = data.draw(shapes(min_rank=0))
    block = data.draw(chunks_for(shape))
    regions = copy_blocks(shape, block)
    coverage = np.zeros(shape, dtype=np.int64)
    for region in regions:
        assert len(region) == len(shape)
        for (start, stop), size, b in zip(region, shape, block, strict=True):
            assert start % b == 0
            assert stop == min(start + b, size)
        coverage[tuple(slice(a, b) for a, b in region)] += 1
    assert (coverage == 1).all()
    assert len(regions) == math.prod(-(-s // b) for s, b in zip(shape, block, strict=True))


@SETTINGS
@given(hops())
def test_hop_io_ops_matches_brute_force(case: tuple[Shape, Hop]) -> None:
    shape, hop = case
    assert hop.io_ops(shape) == brute_io_ops(shape, hop)


@SETTINGS
@given(feasible_problems())
def test_plans_chain_fit_in_memory_and_are_optimal(
        case: tuple[Shape, Shape, Shape, int, int, int]) -> None:
    shape, source, target, itemsize, max_mem, stages = case
    plan = plan_rechunk(shape, source, target, itemsize, max_mem, max_stages=stages)

    assert isinstance(plan, RechunkPlan)
    assert 1 <= len(plan.hops) <= stages
    assert plan.hops[0].read_chunks == _clip(source, shape)
    assert plan.hops[-1].write_chunks == _clip(target, shape)
    for before, after in itertools.pairwise(plan.hops):
        assert before.write_chunks == after.read_chunks
    assert plan.intermediates == tuple(h.write_chunks for h in plan.hops[:-1])
    for hop in plan.hops:
        assert hop.peak_bytes(itemsize) <= max_mem
        for b, w, size in zip(hop.block, hop.write_chunks, shape, strict=True):
            assert b % w == 0 or b == max(size, 1)
            assert 1 <= b <= max(size, 1)
    assert plan.io_ops() == sum(brute_io_ops(shape, hop) for hop in plan.hops)

    candidates = candidate_plans(shape, source, target, itemsize, max_mem, stages)
    cheapest = min(cost for cost, _ in candidates)
    assert all(plan.io_ops() <= cost for cost, _ in candidates)
    # The same candidates, so the winner is exactly the cheapest one with the fewest hops.
    fewest = min((c for c in candidates if c[0] == cheapest), key=lambda c: len(c[1]))
    assert plan.hops == fewest[1]


@SETTINGS
@given(problems(), st.data())
def test_infeasible_memory_raises_with_sizes_and_fix(
        case: tuple[Shape, Shape, Shape, int, int], data: st.DataObject) -> None:
    shape, source, target, itemsize, stages = case
    need = (_elements(source, shape) + _elements(target, shape)) * itemsize
    max_mem = data.draw(st.integers(0, need - 1))
    with pytest.raises(PlanError) as caught:
        plan_rechunk(shape, source, target, itemsize, max_mem, max_stages=stages)
    error = caught.value
    assert error.message.count("MiB") == 4  # target chunk, source chunk, total, limit
    assert error.where == "target.chunks"
    assert "max_task_memory" in error.fix and "smaller target chunks" in error.fix


# -- examples -----------------------------------------------------------------------------------

DAILY = (365, 360, 720)  # one year of a global 0.5 degree field, one netCDF file per day


def _direct(shape: Shape, source: Shape, target: Shape, max_mem: int) -> RechunkPlan:
    return plan_rechunk(shape, source, target, 4, max_mem, max_stages=1)


def test_daily_files_to_time_series_at_256_mib_is_one_hop() -> None:
    # The year is only 1.4x max_mem: two blocks of (365, 250, 720) cover it, so each file is
    # read twice and each target chunk written once. Any intermediate store adds a full write
    # and read of the array on top of that, so the direct hop is the cheapest plan.
    plan = plan_rechunk(DAILY, (1, 360, 720), (365, 10, 10), 4, 256 * MiB)
    assert plan.intermediates == ()
    assert plan.hops[0].block == (365, 250, 720)
    assert plan.io_ops() == 2 * 365 + 36 * 72 == 3322


def test_daily_files_to_time_series_goes_multi_stage_when_memory_is_tight() -> None:
    source, target = (1, 360, 720), (365, 10, 10)
    plan = plan_rechunk(DAILY, source, target, 4, 16 * MiB)
    direct = _direct(DAILY, source, target, 16 * MiB)
    assert plan.intermediates == ((19, 60, 85),)
    assert all(hop.peak_bytes(4) <= 16 * MiB for hop in plan.hops)
    assert (plan.io_ops(), direct.io_ops()) == (10882, 15732)


def test_a_decade_of_daily_files_goes_multi_stage() -> None:
    shape, source, target = (3650, 360, 720), (1, 360, 720), (3650, 10, 10)
    plan = plan_rechunk(shape, source, target, 4, 256 * MiB)
    direct = _direct(shape, source, target, 256 * MiB)
    assert plan.intermediates == ((60, 60, 85),)
    assert plan.io_ops() == 19418 < direct.io_ops() == 68292


def test_small_crossing_layout_is_multi_stage_and_optimal() -> None:
    shape, source, target, max_mem = (20, 20), (1, 20), (20, 1), 45
    plan = plan_rechunk(shape, source, target, 1, max_mem)
    assert plan.intermediates == ((4, 4),)
    assert all(hop.peak_bytes(1) <= max_mem for hop in plan.hops)
    candidates = candidate_plans(shape, source, target, 1, max_mem, 4)
    costs = {len(hops): cost for cost, hops in candidates}
    assert plan.io_ops() == costs[2] == min(costs.values()) < costs[1]


def test_identical_source_and_target_is_one_hop() -> None:
    plan = plan_rechunk(DAILY, (30, 360, 720), (30, 360, 720), 4, 256 * MiB)
    assert plan.intermediates == ()
    (hop,) = plan.hops
    assert hop.read_chunks == hop.write_chunks == (30, 360, 720)
    assert hop.block[0] % 30 == 0 and hop.peak_bytes(4) <= 256 * MiB


def test_one_dimensional_hop_by_hand() -> None:
    # Room for 40 items: one read chunk of 7 leaves 33, so blocks of 30 (three write chunks).
    plan = plan_rechunk((100,), (7,), (10,), 8, 8 * 40)
    (hop,) = plan.hops
    assert hop.block == (30,)
    assert copy_blocks((100,), hop.block) == [((0, 30),), ((30, 60),), ((60, 90),), ((90, 100),)]
    # Blocks touch 5 + 5 + 5 + 3 read chunks of 7; 10 write chunks.
    assert plan.io_ops() == 18 + 10


def test_rank_zero_and_empty_arrays() -> None:
    scalar = plan_rechunk((), (), (), 4, 8)
    assert scalar.hops == (Hop((), (), ()),)
    assert scalar.io_ops() == 2 and copy_blocks((), ()) == [()]
    empty = plan_rechunk((0, 5), (3, 5), (1, 1), 4, 1 * MiB)
    assert len(empty.hops) == 1 and empty.io_ops() == 0
    assert copy_blocks((0, 5), empty.hops[0].block) == []


def test_infeasible_error_names_sizes() -> None:
    with pytest.raises(PlanError) as caught:
        plan_rechunk(DAILY, (1, 360, 720), (365, 360, 720), 4, 256 * MiB)
    text = str(caught.value)
    assert "360.9 MiB" in text and "1.0 MiB" in text and "361.9 MiB" in text
    assert "256.0 MiB" in text


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_files_and_units_apart_along_one_dim_never_stage(data: st.DataObject) -> None:
    """What tasks.staging_possible relies on to build a bake without the rechunk hops: when
    the files and the write units differ along one dimension only, the cheapest plan is the
    direct one, at any memory bound."""
    rank = data.draw(st.integers(1, 4))
    shape = tuple(data.draw(st.integers(1, 4000 if i == 0 else 300)) for i in range(rank))
    axis = data.draw(st.integers(0, rank - 1))
    source, target = list(shape), list(shape)
    source[axis] = data.draw(st.integers(1, shape[axis]))
    target[axis] = data.draw(st.integers(1, shape[axis]))
    itemsize = data.draw(st.sampled_from([1, 4, 8, 12]))
    max_mem = data.draw(st.sampled_from([MiB, 16 * MiB, 256 * MiB, 4096 * MiB]))
    try:
        plan = plan_rechunk(shape, tuple(source), tuple(target), itemsize, max_mem,
                            max_stages=3)
    except PlanError:
        return  # one file or one unit over the bound: the direct path, one per task
    assert not plan.intermediates
