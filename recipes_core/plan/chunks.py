"""Chunk-grid arithmetic: which part of which file lands in which target chunk.

Every target chunk (or shard, when sharding) is written whole by exactly one task, so the
pipeline splits each file's region of the target along the chunk grid and groups the pieces by
chunk. This module is that arithmetic, pure and property-tested against a brute-force oracle.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from recipes_core.errors import AlignmentError

Region = tuple[tuple[int, int], ...]  # (start, stop) per dimension, stop exclusive


@dataclass(frozen=True)
class Piece:
    """A piece of a source region that belongs to one chunk.

    ``chunk`` is the chunk's index in the grid; ``source`` the slice of the source region (in
    the region's own coordinates); ``within`` the slice of the chunk it fills.
    """

    chunk: tuple[int, ...]
    source: tuple[slice, ...]
    within: tuple[slice, ...]


@dataclass(frozen=True)
class ChunkGrid:
    """A regular chunk grid over an array of ``shape``; the last chunk may be short."""

    shape: tuple[int, ...]
    chunks: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.shape) != len(self.chunks):
            raise ValueError(f"shape {self.shape} and chunks {self.chunks} differ in rank")
        if any(c < 1 for c in self.chunks):
            raise ValueError(f"chunk sizes must be positive, got {self.chunks}")
        if any(s < 0 for s in self.shape):
            raise ValueError(f"array sizes must not be negative, got {self.shape}")

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(-(-s // c) if s else 0 for s, c in zip(self.shape, self.chunks, strict=True))

    @property
    def nchunks(self) -> int:
        n = 1
        for g in self.grid_shape:
            n *= g
        return n

    def region(self, index: Sequence[int]) -> tuple[slice, ...]:
        """The array slice covered by the chunk at ``index`` (clipped at the array's edge)."""
        return tuple(
            slice(i * c, min((i + 1) * c, s))
            for i, c, s in zip(index, self.chunks, self.shape, strict=True)
        )

    def indices(self) -> Iterator[tuple[int, ...]]:
        return itertools.product(*(range(g) for g in self.grid_shape))

    def chunk_shape(self, index: Sequence[int]) -> tuple[int, ...]:
        return tuple(s.stop - s.start for s in self.region(index))


def split_region(region: Region, grid: ChunkGrid) -> Iterator[Piece]:
    """Split an array region into the pieces that fall in each chunk of ``grid``."""
    per_dim: list[list[tuple[int, slice, slice]]] = []
    for (start, stop), size, chunk in zip(region, grid.shape, grid.chunks, strict=True):
        if not 0 <= start <= stop <= size:
            raise ValueError(f"region {start}:{stop} is outside a dimension of size {size}")
        parts = []
        position = start
        while position < stop:
            index = position // chunk
            end = min((index + 1) * chunk, stop)
            parts.append(
                (
                    index,
                    slice(position - start, end - start),
                    slice(position - index * chunk, end - index * chunk),
                )
            )
            position = end
        per_dim.append(parts)
    for combo in itertools.product(*per_dim):
        yield Piece(
            chunk=tuple(p[0] for p in combo),
            source=tuple(p[1] for p in combo),
            within=tuple(p[2] for p in combo),
        )


def check_shards_align(chunks: Mapping[str, int], shards: Mapping[str, int]) -> None:
    """Refuse shards that are not whole multiples of chunks, saying what would work."""
    problems = []
    for dim, shard in shards.items():
        chunk = chunks.get(dim)
        if chunk is None or chunk <= 0:
            continue
        if shard % chunk:
            lower = max(chunk, shard // chunk * chunk)
            upper = lower + chunk if lower < shard else lower
            problems.append(
                f"shards.{dim} = {shard} is not a multiple of chunks.{dim} = {chunk} "
                f"(try {lower}{f' or {upper}' if upper != lower else ''})"
            )
    if problems:
        raise AlignmentError(
            "target shards do not align with chunks: " + "; ".join(problems) + ".",
            where="target.shards",
            fix="make every shard size a whole multiple of the chunk size along its dimension.",
        )
