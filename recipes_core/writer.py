"""Execute a write task: read the sources' slices, encode them, write whole units.

Each task opens every source it needs once, reads only the part of each variable inside its
box, encodes it with the target encoding (one encoding for the whole dataset, so per-file time
units cannot leak), places it into the buffers of the write units it covers, and writes each
unit whole. A unit not covered exactly once is a planning bug and fails loudly.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import zarr

from recipes_core.chunk_writes import LocalChunks
from recipes_core.errors import TargetError
from recipes_core.model.recipe import Codec
from recipes_core.plan.chunks import ChunkGrid, split_region
from recipes_core.plan.pattern import SourceKey
from recipes_core.plan.plan import Plan
from recipes_core.reading import SourceReader, index_values_of, open_for_writing
from recipes_core.schema import Template, VariableSchema
from recipes_core.storage import StagedSource
from recipes_core.survey import check_source
from recipes_core.tasks import CopyTask, WriteTask


def release_free_memory() -> bool:
    """Drop the idle unit buffers of this process's pools, and hand memory that was freed
    back to the system (glibc's ``malloc_trim``), if possible.

    Write units are tens of MB; glibc serves them from its heaps once it has freed a few, and
    keeps what they leave there resident after the data is gone (100 MiB on the benchmark).
    Trimming once the writes are done lets the next step (a bundle, the catalogue) start from
    what is really in use: the pools' idle buffers were another 60 MiB of the benchmark's
    peak, reached while the catalogue's thumbnail was drawn. Returns whether it could ask
    (False without glibc: then only the pools are emptied).
    """
    import ctypes

    with _POOLS_LOCK:
        for pool in _POOLS.values():
            pool.clear()

    try:  # the symbols already loaded into this process (no ldconfig subprocess to find libc)
        trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:
        return False
    if trim is None:
        return False
    trim(0)
    return True


class BufferPool:
    """Write-unit buffers handed back once their unit is stored, and filled again by the next.

    A write unit is tens of MB (30 days of a 0.5-degree grid: 31 MB). A fresh buffer costs a
    page fault, and the kernel zeroing a page, for every 4 KiB the first time it is filled:
    measured on the benchmark, h5py's reads into fresh buffers ran at 1.1 GB/s, against
    2.7 GB/s into buffers filled before. At most ``max_bytes`` of idle buffers are kept;
    thread-safe (the writer threads give them back).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._idle: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        key = (tuple(shape), np.dtype(dtype).str)
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                buffer = idle.pop()
                self._bytes -= buffer.nbytes
                return buffer
        return np.empty(shape, dtype=dtype)

    def clear(self) -> None:
        """Forget every idle buffer (their memory is freed once nothing else holds them)."""
        with self._lock:
            self._idle.clear()
            self._bytes = 0

    def give(self, buffer: np.ndarray) -> None:
        if buffer.base is not None or not buffer.flags.c_contiguous:
            return  # a view: its memory belongs to another array
        with self._lock:
            if self._bytes + buffer.nbytes <= self.max_bytes:
                self._idle.setdefault((buffer.shape, buffer.dtype.str), []).append(buffer)
                self._bytes += buffer.nbytes


_POOLS: dict[int, BufferPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(max_bytes: int) -> BufferPool:
    """The process's buffer pool for this bound. One per process, not per DoFn instance: some
    engines make many instances in one worker (Beam's Dask runner, one per partition), and a
    pool each would keep ``max_bytes`` idle per instance (measured: +100 MiB on a Dask worker).
    """
    with _POOLS_LOCK:
        pool = _POOLS.get(max_bytes)
        if pool is None:
            pool = _POOLS[max_bytes] = BufferPool(max_bytes)
        return pool


class UnitWriter:
    """Writes whole write units into a prepared store; keeps its arrays open between calls."""

    def __init__(self, store: str, pool: BufferPool | None = None) -> None:
        self.store = store
        self.pool = pool
        self._arrays: dict[str, zarr.Array] = {}
        self._local: dict[str, LocalChunks | None] = {}

    def array(self, name: str) -> zarr.Array:
        if name not in self._arrays:
            # Every chunk is stored, even one that is all fill value (zarr skips those by
            # default): a complete store then has every chunk, which verify and publish check.
            self._arrays[name] = zarr.open_array(self.store, path=name, mode="r+").with_config(
                {"write_empty_chunks": True})
        return self._arrays[name]

    def local_chunks(self, name: str) -> LocalChunks | None:
        """The array's chunks stored without zarr's event loop, where that is exact."""
        if name not in self._local:
            self._local[name] = LocalChunks.of(self.array(name))
        return self._local[name]


def write_unit_shape(array: zarr.Array) -> tuple[int, ...]:
    shards = getattr(array, "shards", None)
    return tuple(shards) if shards else tuple(array.chunks)


class _Buffers:
    """The write units of one variable inside a task's box, filled piece by piece."""

    def __init__(self, var: VariableSchema, array: zarr.Array, task: WriteTask,
                 pool: BufferPool | None = None, local: LocalChunks | None = None) -> None:
        self.var = var
        self.array = array
        self.pool = pool
        self.local = local
        self.grid = ChunkGrid(tuple(array.shape), write_unit_shape(array))
        self.box = tuple(task.bounds(d, s) for d, s in zip(var.dims, var.shape, strict=True))
        self.units: dict[tuple[int, ...], np.ndarray] = {}
        self.filled: dict[tuple[int, ...], int] = {}
        self._full: list[tuple[int, ...]] = []  # units that became full, not yet handed out

    def _unit(self, index: tuple[int, ...]) -> np.ndarray:
        """The buffer of unit ``index``: always a whole unit, even at the array's edge, where
        only its leading corner (``grid.chunk_shape``) is filled. zarr stores an edge chunk
        whole too, padded with fill values; padding this buffer in place spares the two
        extra chunk-sized buffers zarr's own padding takes (measured: +110 MiB of peak RSS
        when the last two units of the benchmark were edge chunks)."""
        unit = self.units.get(index)
        if unit is None:
            shape = self.grid.chunks
            unit = (self.pool.take(shape, self.array.dtype) if self.pool is not None
                    else np.empty(shape, dtype=self.array.dtype))
            self.units[index] = unit
            self.filled[index] = 0
        return unit

    def _size(self, index: tuple[int, ...]) -> int:
        return math.prod(self.grid.chunk_shape(index))

    def _write(self, index: tuple[int, ...], unit: np.ndarray) -> UnitWrite:
        region = self.grid.region(index)
        filled = unit[tuple(slice(0, r.stop - r.start) for r in region)]
        return UnitWrite(self.array, region, filled, self.pool, self.local, unit)

    def place(self, region: tuple[tuple[int, int], ...], encoded: np.ndarray) -> None:
        """Place encoded data covering ``region`` (absolute target coordinates)."""
        for piece in split_region(region, self.grid):
            unit = self._unit(piece.chunk)
            data = encoded[piece.source]
            unit[piece.within] = data
            self._count(piece.chunk, data.size)

    def _count(self, index: tuple[int, ...], values: int) -> None:
        self.filled[index] += values
        if self.filled[index] == self._size(index):
            self._full.append(index)

    def read(self, region: tuple[tuple[int, int], ...], local: tuple[slice, ...],
             reader: SourceReader) -> None:
        """Fill ``region`` (absolute) with the source's slice ``local`` of this variable,
        read straight into the units where the reader can, else through one copy."""
        pieces = list(split_region(region, self.grid))
        for n, piece in enumerate(pieces):
            where = tuple(slice(lo.start + s.start, lo.start + s.stop)
                          for lo, s in zip(local, piece.source, strict=True))
            unit = self._unit(piece.chunk)
            if not reader.read_into(self.var, where, unit, piece.within):
                if n:
                    raise TargetError(f"a reader of '{self.var.name}' read only part of a slice",
                                      where=self.var.name, fix="this is a bug; please report it.")
                self.place(region, reader.read_encoded(self.var, local))
                return
            self._count(piece.chunk, unit[piece.within].size)

    def full_units(self) -> Iterator[UnitWrite]:
        """The units filled completely since the last call, each handed out once (and
        forgotten here)."""
        full, self._full = self._full, []
        for index in full:
            unit = self.units.pop(index)
            del self.filled[index]
            yield self._write(index, unit)

    def writes(self) -> Iterator[UnitWrite]:
        """One write per unit still held, each checked to be covered exactly once first."""
        for index, unit in self.units.items():
            if self.filled[index] != self._size(index):
                raise TargetError(
                    f"write unit {index} of '{self.var.name}' received {self.filled[index]} of "
                    f"{self._size(index)} values", where=self.array.store_path.path if hasattr(
                        self.array, "store_path") else self.var.name,
                    fix="this is a planning bug; please report it with the recipe.")
            yield self._write(index, unit)


@dataclass(frozen=True, eq=False)
class UnitWrite:
    """One whole write unit, filled and ready: encoding and storing it is all that is left."""

    array: zarr.Array
    region: tuple[slice, ...]
    data: np.ndarray
    pool: BufferPool | None = None  # where the buffer goes back once it is stored
    local: LocalChunks | None = None  # the array's chunks stored without zarr's event loop
    whole: np.ndarray | None = None  # the whole unit ``data`` is the leading corner of

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    def __call__(self) -> int:
        if self.local is None or not self.local.store(self.region, self.data, self.whole):
            self.array[self.region] = self.data
        if self.pool is not None:
            self.pool.give(self.data if self.whole is None else self.whole)
        return self.nbytes


FAST_CODECS = frozenset({("blosc", "lz4"), ("blosc", "blosclz")})


def auto_write_threads(codec: Codec, cores: int | None = None,
                       workers: int | None = 1) -> int:
    """Background writers for a codec, when the profile does not say.

    Measured on 2 cores (bench/README.md): zstd and gzip compress 4x slower than the sources
    are read, so a writer per core is what keeps them busy. blosc-lz4 compresses about as
    fast as the sources are read: one process alone on the machine (the default direct bake)
    shortened its write phase by ~20 % with a second writer, which compresses one unit while
    the other's file is written and the task reads on; with two worker processes on two
    cores the second writer only competed for them (and held another unit in memory). So 2
    when each of the ``workers`` running tasks at once on this machine has at least 2 cores
    to itself, else 1; ``workers`` None: they run on machines this one knows nothing about,
    1. No codec: writing a file is all there is, 1.
    """
    cores = cores or os.cpu_count() or 1
    if codec.name == "none":
        return 1
    if (codec.name, codec.cname if codec.name == "blosc" else "") in FAST_CODECS:
        return 2 if workers is not None and cores // max(1, workers) >= 2 else 1
    return max(1, min(4, cores))


# How much nicer than the task's own thread its helpers run (writers, the source hasher).
HELPER_NICENESS = 8


def behind_the_reader() -> None:
    """Run this thread (a write task's helper) at a lower OS priority than the thread that
    reads the sources. A ThreadPoolExecutor initializer.

    The reading thread is a bake's critical path: every source's layout is proven and read
    there, holding the GIL, while the writers compress and write and the hasher hashes, all
    outside it. With four runnable threads on two cores the scheduler gave the reader only
    its fair share, and each source took it twice as long as alone (layout 3.4 against 1.5
    ms). Behind it, the helpers still get every core the reader leaves, and all of it
    whenever they fall behind (the reader then waits for them): an 11 GB bake took 31.0
    against 34.5 s (medians of 4 interleaved runs). Linux only, where a thread has its own
    nice value (elsewhere the call would renice the whole process); raising one's own nice
    value needs no privilege.
    """
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        niceness = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness + HELPER_NICENESS))


class BackgroundWrites:
    """Encode and store write units on a few threads, in order, with bounded memory.

    Reading sources (netCDF/HDF5, serialised by one lock) and compressing chunks (blosc, zstd:
    GIL-free) then overlap instead of taking turns. At most ``max_bytes`` of filled units wait
    to be written; :meth:`submit` blocks on the oldest ones beyond that. Results come back in
    submission order through :meth:`finished`, on the caller's thread, so counters and
    progress are only ever touched by one thread.
    """

    def __init__(self, threads: int, max_bytes: int) -> None:
        self.max_bytes = max(1, max_bytes)
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads),
                                        thread_name_prefix="arco-write",
                                        initializer=behind_the_reader)
        self._pending: deque[tuple[Future[int], int, int]] = deque()
        self._bytes = 0

    def submit(self, write: UnitWrite, tag: int = 0) -> Iterator[tuple[int, int]]:
        """Queue one unit; yields the (tag, bytes) of units that had to finish first."""
        while self._pending and self._bytes + write.nbytes > self.max_bytes:
            yield self._pop()
        self._pending.append((self._pool.submit(write), write.nbytes, tag))
        self._bytes += write.nbytes

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def finished(self, wait: bool = False) -> Iterator[tuple[int, int]]:
        """(tag, bytes) of the units written so far, in order; all of them when ``wait``."""
        while self._pending and (wait or self._pending[0][0].done()):
            yield self._pop()

    def _pop(self) -> tuple[int, int]:
        future, nbytes, tag = self._pending.popleft()
        self._bytes -= nbytes
        return tag, future.result()  # a failed write raises here, on the caller's thread

    def close(self) -> None:
        """Stop: wait for running writes (their errors are dropped), forget queued ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()
        self._bytes = 0


def _intersect(a: tuple[tuple[int, int], ...], b: tuple[tuple[int, int], ...],
               ) -> tuple[tuple[int, int], ...] | None:
    out = tuple((max(x0, y0), min(x1, y1)) for (x0, x1), (y0, y1) in zip(a, b, strict=True))
    return None if any(lo >= hi for lo, hi in out) else out


MAX_OPEN_SOURCES = 64  # a task with more sources reads them in groups of this many


def fill_write_task(task: WriteTask, plan: Plan, template: Template,
                    staged: Mapping[SourceKey, StagedSource], writer: UnitWriter,
                    positions: Mapping[str, int],
                    local_path: Callable[[SourceKey, StagedSource], str] | None = None,
                    ) -> Iterator[UnitWrite]:
    """Read the task's slices of its sources into whole write units; yield each unit as soon
    as it is full, so it can be encoded and stored while the rest of the task is read.

    Sources are opened (and checked against the template) in groups of at most
    ``MAX_OPEN_SOURCES``, and each group is read variable by variable: with one group, the
    first variable's units are then full, and on their way to the store, after a third of the
    reading, and at most one variable's units are being filled at a time. ``local_path``
    finds a staged source on this worker (re-staging it, checked against the recorded sha256,
    when the worker that staged it was another machine).
    """
    buffers = [_Buffers(template.variables[name], writer.array(name), task, writer.pool,
                        writer.local_chunks(name)) for name in task.variables]

    def opened(stack: contextlib.ExitStack, keys: list[SourceKey]) -> list[SourceReader]:
        """Open these sources and check each against the template (coordinates decoded
        together, see :func:`index_values_of`)."""
        readers = []
        for key in keys:
            source = staged[key]
            path = local_path(key, source) if local_path else source.path
            readers.append(stack.enter_context(open_for_writing(plan, key, path, source.url,
                                                                template)))
        for key, reader, index in zip(keys, readers, index_values_of(readers), strict=True):
            check_source(reader.sizes, index, template, key, positions, staged[key].url)
        return readers

    def read(buffer: _Buffers, key: SourceKey, reader: SourceReader) -> Iterator[UnitWrite]:
        if not reader.has(buffer.var.name):
            return  # another merge key holds it
        region = template.region_of(buffer.var, key, positions)
        inside = _intersect(region, buffer.box)
        if inside is not None:
            local = tuple(slice(lo - r0, hi - r0)
                          for (lo, hi), (r0, _r1) in zip(inside, region, strict=True))
            buffer.read(inside, local, reader)
            yield from buffer.full_units()

    keys = list(task.sources)
    for first in range(0, len(keys), MAX_OPEN_SOURCES):
        group = keys[first:first + MAX_OPEN_SOURCES]
        with contextlib.ExitStack() as stack:
            readers = opened(stack, group)
            for buffer in buffers:
                for key, reader in zip(group, readers, strict=True):
                    yield from read(buffer, key, reader)
    for buffer in buffers:
        yield from buffer.writes()  # none left unless the plan missed a piece: that raises


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
