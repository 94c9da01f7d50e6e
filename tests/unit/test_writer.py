"""The write side: whole units stored in order on background threads, every chunk stored."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import zarr

from recipes_core.writer import (
    HELPER_NICENESS,
    BackgroundWrites,
    UnitWrite,
    UnitWriter,
    behind_the_reader,
    release_free_memory,
)


def _array(path: Path, fill: float = 0.0) -> UnitWriter:
    zarr.create_array(str(path), name="v", shape=(8, 4), chunks=(2, 4), dtype="f4",
                      fill_value=fill)
    return UnitWriter(str(path))


def test_a_unit_of_only_fill_values_is_stored_too(tmp_path: Path) -> None:
    writer = _array(tmp_path / "s.zarr")
    array = writer.array("v")
    UnitWrite(array, (slice(0, 2), slice(0, 4)), np.zeros((2, 4), "f4"))()
    # zarr skips all-fill chunks by default; a complete store must have every chunk.
    assert (tmp_path / "s.zarr" / "v" / "c" / "0" / "0").is_file()


def test_background_writes_store_every_unit_and_report_in_order(tmp_path: Path) -> None:
    writer = _array(tmp_path / "s.zarr")
    array = writer.array("v")
    background = BackgroundWrites(threads=3, max_bytes=2 * 32)  # two units in flight at most
    done = []
    for i in range(4):
        unit = np.full((2, 4), i + 1, "f4")
        done += list(background.submit(UnitWrite(array, (slice(2 * i, 2 * i + 2), slice(0, 4)),
                                                 unit), tag=i))
        assert background._bytes <= 2 * 32
    done += list(background.finished(wait=True))
    assert [tag for tag, _ in done] == [0, 1, 2, 3]
    assert all(nbytes == 32 for _, nbytes in done)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "s.zarr"), path="v")[:, 0],
                                  np.repeat(np.arange(1, 5, dtype="f4"), 2))
    background.close()


def test_a_failed_background_write_raises_on_the_callers_thread(tmp_path: Path) -> None:
    writer = _array(tmp_path / "s.zarr")
    array = writer.array("v")
    background = BackgroundWrites(threads=2, max_bytes=1 << 20)
    callers = []

    class Broken(UnitWrite):
        def __call__(self) -> int:
            callers.append(threading.current_thread().name)
            raise OSError("disk full")

    list(background.submit(Broken(array, (slice(0, 2), slice(0, 4)), np.ones((2, 4), "f4"))))
    with pytest.raises(OSError, match="disk full"):
        list(background.finished(wait=True))
    assert callers and callers[0].startswith("arco-write")
    background.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values")
def test_writers_and_the_hasher_run_behind_the_reading_thread(tmp_path: Path) -> None:
    """The background writers (and a write task's hasher, which shares the initializer) run
    HELPER_NICENESS nicer than the thread that reads; that thread is left as it was."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    mine = niceness()
    writer = _array(tmp_path / "s.zarr")
    background = BackgroundWrites(threads=2, max_bytes=1 << 20)
    seen = []

    class Noted(UnitWrite):
        def __call__(self) -> int:
            seen.append(niceness())
            return super().__call__()

    list(background.submit(Noted(writer.array("v"), (slice(0, 2), slice(0, 4)),
                                 np.ones((2, 4), "f4"))))
    list(background.finished(wait=True))
    background.close()
    assert seen == [min(19, mine + HELPER_NICENESS)]
    with ThreadPoolExecutor(1, initializer=behind_the_reader) as hasher:
        assert hasher.submit(niceness).result() == min(19, mine + HELPER_NICENESS)
    assert niceness() == mine


def test_two_writers_for_fast_codecs_in_a_lone_process_one_per_core_for_slow_ones() -> None:
    from recipes_core.model.recipe import Codec
    from recipes_core.writer import auto_write_threads

    assert auto_write_threads(Codec(), cores=2) == 2  # blosc-lz4, the default, one process
    assert auto_write_threads(Codec(), cores=2, workers=2) == 1  # two workers share 2 cores
    assert auto_write_threads(Codec(), cores=8, workers=2) == 2
    assert auto_write_threads(Codec(), cores=1) == 1
    assert auto_write_threads(Codec(), cores=16, workers=None) == 1  # workers elsewhere
    assert auto_write_threads(Codec(name="none"), cores=4) == 1
    assert auto_write_threads(Codec(name="zstd", level=0), cores=2) == 2
    assert auto_write_threads(Codec(name="blosc", cname="zstd"), cores=8) == 4
    assert auto_write_threads(Codec(name="gzip"), cores=1) == 1


def test_freed_chunk_buffers_go_back_to_the_system() -> None:
    import platform

    def resident_mib() -> float:
        with open("/proc/self/status") as f:
            line = next(x for x in f if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    # Many mid-sized buffers (below the mmap threshold: they come from the heap) freed while
    # one allocated after them still lives, so the heap cannot shrink by itself.
    buffers = [np.ones(100_000, dtype="f8") for _ in range(400)]  # 800 kB each, 320 MB
    keep = np.ones(10, dtype="f8")
    before = resident_mib()
    del buffers
    assert release_free_memory() is True
    assert resident_mib() < before - 200
    assert keep.sum() == 10


def test_releasing_memory_empties_the_shared_pools() -> None:
    from recipes_core.writer import shared_pool

    pool = shared_pool(1 << 20)
    pool.give(np.ones((16, 16), "f8"))
    assert pool._bytes == 2048
    release_free_memory()
    assert pool._bytes == 0 and not any(pool._idle.values())


def test_buffer_pool_reuses_stored_units_within_its_bound(tmp_path: Path) -> None:
    from recipes_core.writer import BufferPool

    pool = BufferPool(max_bytes=2 * 32)  # two (2, 4) float32 units
    writer = _array(tmp_path / "s.zarr")
    writer.pool = pool
    first = pool.take((2, 4), np.dtype("f4"))
    first[...] = 1
    UnitWrite(writer.array("v"), (slice(0, 2), slice(0, 4)), first, pool)()
    again = pool.take((2, 4), np.dtype("f4"))
    assert again is first  # stored, handed back, reused
    assert pool.take((2, 4), np.dtype("f4")) is not first  # none idle: a new one
    assert pool.take((4, 4), np.dtype("f4")).shape == (4, 4)
    # Views are not kept (their memory is another array's), nor buffers beyond the bound.
    pool.give(np.zeros((4, 4), "f4")[:2])
    given = [np.zeros((2, 4), "f4") for _ in range(3)]
    for buffer in given:
        pool.give(buffer)
    taken = [pool.take((2, 4), np.dtype("f4")) for _ in range(3)]
    assert sum(any(t is g for g in given) for t in taken) == 2  # the bound holds two
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "s.zarr"), path="v")[:2],
                                  np.ones((2, 4), "f4"))
