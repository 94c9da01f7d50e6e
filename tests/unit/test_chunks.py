"""Chunk-grid arithmetic, tested against a brute-force oracle (in the style of xarray-beam).

The oracle numbers every element of an array, lets :func:`split_region` scatter each file's
region into per-chunk buffers, and checks that the assembled chunks are exactly the elements a
brute-force ``element // chunk`` mapping puts there: every element once, nothing missing.
"""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recipes_core.errors import AlignmentError, PlanError
from recipes_core.plan.chunks import ChunkGrid, Piece, check_shards_align, split_region

SETTINGS = settings(max_examples=150, deadline=None)

# -- strategies ---------------------------------------------------------------------------------

# Per-rank cap on the number of chunks along each axis, so a rank-3 grid stays under ~2,000
# chunks (the oracle loops over pieces in Python).
_MAX_GRID_PER_AXIS = {1: 40, 2: 40, 3: 12}


@st.composite
def shapes_and_chunks(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    rank = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(0, 40), min_size=rank, max_size=rank)))
    cap = _MAX_GRID_PER_AXIS[rank]
    chunks = tuple(draw(st.integers(max(1, math.ceil(s / cap)), 45)) for s in shape)
    return shape, chunks


@st.composite
def file_partitions(draw: st.DrawFn, length: int) -> list[tuple[int, int]]:
    """Files laid end to end along axis 0: a random partition of ``range(length)``.

    Cut points may repeat (an empty file) and may be far apart (a file longer than a chunk) or
    close together (a chunk spanning several files).
    """
    cuts = draw(st.lists(st.integers(0, length), max_size=12))
    bounds = [0, *sorted(cuts), length]
    return list(itertools.pairwise(bounds))


@st.composite
def grids_with_files(draw: st.DrawFn) -> tuple[ChunkGrid, list[tuple[tuple[int, int], ...]]]:
    shape, chunks = draw(shapes_and_chunks())
    files = draw(file_partitions(shape[0]))
    rest = tuple((0, s) for s in shape[1:])
    return ChunkGrid(shape, chunks), [((a, b), *rest) for a, b in files]


@st.composite
def grids_with_region(draw: st.DrawFn) -> tuple[ChunkGrid, tuple[tuple[int, int], ...]]:
    shape, chunks = draw(shapes_and_chunks())
    region = []
    for size in shape:
        a = draw(st.integers(0, size))
        b = draw(st.integers(a, size))
        region.append((a, b))
    return ChunkGrid(shape, chunks), tuple(region)


# -- oracle helpers -----------------------------------------------------------------------------


def _as_slices(region: tuple[tuple[int, int], ...]) -> tuple[slice, ...]:
    return tuple(slice(a, b) for a, b in region)


def _brute_force_chunks(region: tuple[tuple[int, int], ...], chunks: tuple[int, ...]) -> set:
    """The chunk index of every element of ``region``, element by element."""
    return {
        tuple(e // c for e, c in zip(element, chunks, strict=True))
        for element in itertools.product(*(range(a, b) for a, b in region))
    }


def _slice_inside(s: slice, length: int) -> bool:
    return s.step is None and 0 <= s.start < s.stop <= length


# -- ChunkGrid ----------------------------------------------------------------------------------


def test_grid_shape_nchunks_and_clipped_regions() -> None:
    grid = ChunkGrid((10, 7), (3, 7))
    assert grid.grid_shape == (4, 1)
    assert grid.nchunks == 4
    assert list(grid.indices()) == [(0, 0), (1, 0), (2, 0), (3, 0)]
    assert grid.region((0, 0)) == (slice(0, 3), slice(0, 7))
    assert grid.region((2, 0)) == (slice(6, 9), slice(0, 7))
    assert grid.region((3, 0)) == (slice(9, 10), slice(0, 7))  # clipped at the edge
    assert grid.chunk_shape((3, 0)) == (1, 7)
    assert grid.chunk_shape((1, 0)) == (3, 7)


def test_chunk_larger_than_array_is_one_short_chunk() -> None:
    grid = ChunkGrid((5,), (100,))
    assert grid.grid_shape == (1,)
    assert grid.region((0,)) == (slice(0, 5),)
    assert grid.chunk_shape((0,)) == (5,)


def test_empty_dimension_has_no_chunks() -> None:
    grid = ChunkGrid((0, 4), (3, 2))
    assert grid.grid_shape == (0, 2)
    assert grid.nchunks == 0
    assert list(grid.indices()) == []


def test_scalar_grid_has_one_chunk() -> None:
    grid = ChunkGrid((), ())
    assert grid.grid_shape == ()
    assert grid.nchunks == 1
    assert list(grid.indices()) == [()]
    assert list(split_region((), grid)) == [Piece(chunk=(), source=(), within=())]


@pytest.mark.parametrize(
    ("shape", "chunks", "message"),
    [
        ((10, 10), (5,), "rank"),
        ((10,), (5, 5), "rank"),
        ((10,), (0,), "positive"),
        ((10, 4), (2, -1), "positive"),
        ((-5,), (2,), "negative"),
    ],
)
def test_invalid_grids_are_refused(shape, chunks, message) -> None:
    with pytest.raises(ValueError, match=message):
        ChunkGrid(shape, chunks)


@SETTINGS
@given(shapes_and_chunks())
def test_grid_matches_brute_force(shape_chunks) -> None:
    shape, chunks = shape_chunks
    grid = ChunkGrid(shape, chunks)
    expected = tuple(len(range(0, s, c)) for s, c in zip(shape, chunks, strict=True))
    assert grid.grid_shape == expected
    assert grid.nchunks == math.prod(expected)
    indices = list(grid.indices())
    assert len(indices) == grid.nchunks == len(set(indices))
    assert indices == sorted(indices)  # C order
    for index in indices:
        assert grid.chunk_shape(index) == tuple(
            min(c, s - i * c) for i, c, s in zip(index, chunks, shape, strict=True)
        )


@SETTINGS
@given(shapes_and_chunks())
def test_write_regions_are_aligned_disjoint_and_tile_the_array(shape_chunks) -> None:
    shape, chunks = shape_chunks
    grid = ChunkGrid(shape, chunks)
    coverage = np.zeros(shape, dtype=np.int64)
    for index in grid.indices():
        region = grid.region(index)
        for s, c, size in zip(region, chunks, shape, strict=True):
            assert s.start % c == 0
            assert s.stop == min(s.start + c, size)
            assert s.start < s.stop  # no empty write region
        coverage[region] += 1
    assert (coverage == 1).all()


# -- split_region -------------------------------------------------------------------------------


@SETTINGS
@given(grids_with_files())
def test_files_along_axis_0_assemble_every_chunk_exactly_once(grid_files) -> None:
    grid, files = grid_files
    shape = grid.shape
    ids = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
    out = {i: np.full(grid.chunk_shape(i), -1, dtype=np.int64) for i in grid.indices()}
    coverage = {i: np.zeros(grid.chunk_shape(i), dtype=np.int64) for i in grid.indices()}
    touched: set[tuple[int, ...]] = set()

    for region in files:
        data = ids[_as_slices(region)]
        file_coverage = np.zeros(data.shape, dtype=np.int64)
        pieces = list(split_region(region, grid))
        assert len({p.chunk for p in pieces}) == len(pieces)  # one piece per chunk per file
        for piece in pieces:
            assert piece.chunk in out, f"{piece.chunk} is not a chunk of the grid"
            chunk_shape = grid.chunk_shape(piece.chunk)
            for s, n in zip(piece.within, chunk_shape, strict=True):
                assert _slice_inside(s, n), f"{piece.within} is outside chunk {chunk_shape}"
            for s, n in zip(piece.source, data.shape, strict=True):
                assert _slice_inside(s, n), f"{piece.source} is outside file {data.shape}"
            block = data[piece.source]
            assert block.shape == out[piece.chunk][piece.within].shape
            out[piece.chunk][piece.within] = block
            coverage[piece.chunk][piece.within] += 1
            file_coverage[piece.source] += 1
            touched.add(piece.chunk)
        assert (file_coverage == 1).all()  # a file's pieces are disjoint and cover it

    for index in grid.indices():
        assert (coverage[index] == 1).all(), f"chunk {index} not covered exactly once"
        np.testing.assert_array_equal(out[index], ids[grid.region(index)])
    whole = tuple((0, s) for s in shape)
    assert touched == _brute_force_chunks(whole, grid.chunks) == set(grid.indices())


@SETTINGS
@given(grids_with_region())
def test_any_region_splits_into_the_brute_force_chunks(grid_region) -> None:
    grid, region = grid_region
    ids = np.arange(math.prod(grid.shape), dtype=np.int64).reshape(grid.shape)
    data = ids[_as_slices(region)]
    pieces = list(split_region(region, grid))
    assert {p.chunk for p in pieces} == _brute_force_chunks(region, grid.chunks)
    assert len({p.chunk for p in pieces}) == len(pieces)
    covered = np.zeros(data.shape, dtype=np.int64)
    for piece in pieces:
        chunk_origin = [s.start for s in grid.region(piece.chunk)]
        # The piece's source, shifted to array coordinates, is its slot in the chunk.
        for src, dst, start, origin in zip(
            piece.source, piece.within, (a for a, _ in region), chunk_origin, strict=True
        ):
            assert src.stop - src.start == dst.stop - dst.start
            assert start + src.start == origin + dst.start
        np.testing.assert_array_equal(
            data[piece.source], ids[grid.region(piece.chunk)][piece.within]
        )
        covered[piece.source] += 1
    assert (covered == 1).all()


def test_split_region_worked_example() -> None:
    # A file holding rows 4..11 of a 12x2 array chunked by 5 rows: rows 4, 5..9, 10..11.
    grid = ChunkGrid((12, 2), (5, 2))
    pieces = list(split_region(((4, 12), (0, 2)), grid))
    assert pieces == [
        Piece(chunk=(0, 0), source=(slice(0, 1), slice(0, 2)), within=(slice(4, 5), slice(0, 2))),
        Piece(chunk=(1, 0), source=(slice(1, 6), slice(0, 2)), within=(slice(0, 5), slice(0, 2))),
        Piece(chunk=(2, 0), source=(slice(6, 8), slice(0, 2)), within=(slice(0, 2), slice(0, 2))),
    ]


def test_empty_region_has_no_pieces() -> None:
    grid = ChunkGrid((10, 3), (4, 3))
    assert list(split_region(((5, 5), (0, 3)), grid)) == []


@pytest.mark.parametrize(
    "region",
    [
        ((0, 11),),  # past the end
        ((-1, 3),),  # before the start
        ((6, 4),),  # reversed
    ],
)
def test_split_region_refuses_regions_outside_the_array(region) -> None:
    with pytest.raises(ValueError, match="outside a dimension of size 10"):
        list(split_region(region, ChunkGrid((10,), (4,))))


def test_split_region_refuses_a_region_of_the_wrong_rank() -> None:
    with pytest.raises(ValueError):
        list(split_region(((0, 2),), ChunkGrid((10, 3), (4, 3))))


# -- check_shards_align -------------------------------------------------------------------------


def test_aligned_shards_pass() -> None:
    check_shards_align({"time": 12, "lat": 90, "lon": 180}, {"time": 48, "lat": 90, "lon": 360})


def test_shards_on_unchunked_or_whole_dims_are_not_checked_here() -> None:
    # Without a chunk size (missing, or -1 for the whole dimension) there is nothing to check yet.
    check_shards_align({"lat": -1}, {"lat": 7, "time": 13})


def test_misaligned_shards_name_dim_sizes_and_multiples() -> None:
    with pytest.raises(AlignmentError) as info:
        check_shards_align({"time": 10, "lat": 90}, {"time": 25, "lat": 90})
    err = info.value
    assert isinstance(err, PlanError)
    assert err.where == "target.shards"
    assert "shards.time = 25 is not a multiple of chunks.time = 10" in err.message
    assert "(try 20 or 30)" in err.message
    assert "lat" not in err.message
    assert err.fix is not None and "multiple of the chunk size" in err.fix
    assert str(err).startswith("target.shards: ")


def test_shard_smaller_than_chunk_suggests_the_chunk_size_once() -> None:
    with pytest.raises(AlignmentError) as info:
        check_shards_align({"time": 10}, {"time": 5})
    assert "shards.time = 5 is not a multiple of chunks.time = 10 (try 10)" in info.value.message


def test_every_misaligned_dim_is_reported() -> None:
    with pytest.raises(AlignmentError) as info:
        check_shards_align({"time": 10, "lat": 4}, {"time": 15, "lat": 6})
    message = info.value.message
    assert "shards.time = 15 is not a multiple of chunks.time = 10 (try 10 or 20)" in message
    assert "shards.lat = 6 is not a multiple of chunks.lat = 4 (try 4 or 8)" in message


@SETTINGS
@given(chunk=st.integers(1, 50), shard=st.integers(1, 500))
def test_shards_align_iff_multiple_and_suggestions_are_multiples(chunk, shard) -> None:
    if shard % chunk == 0:
        check_shards_align({"x": chunk}, {"x": shard})
        return
    with pytest.raises(AlignmentError) as info:
        check_shards_align({"x": chunk}, {"x": shard})
    message = info.value.message
    assert f"shards.x = {shard}" in message and f"chunks.x = {chunk}" in message
    match = re.search(r"\(try (\d+)(?: or (\d+))?\)", message)
    assert match is not None
    suggestions = [int(g) for g in match.groups() if g is not None]
    assert all(s % chunk == 0 and s >= chunk for s in suggestions)
    if shard > chunk:  # the two nearest multiples, either side
        assert suggestions == [shard // chunk * chunk, (shard // chunk + 1) * chunk]
    else:
        assert suggestions == [chunk]
