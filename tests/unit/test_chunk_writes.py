"""Chunks stored without zarr's event loop are byte for byte the chunks zarr stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.codecs import (
    BloscCodec,
    BytesCodec,
    Crc32cCodec,
    GzipCodec,
    ShardingCodec,
    TransposeCodec,
    ZstdCodec,
)

from recipes_core.chunk_writes import LocalChunks
from recipes_core.writer import UnitWrite, UnitWriter

SHAPE, CHUNKS = (6, 5, 8), (3, 5, 4)


def _data(dtype: str) -> np.ndarray:
    rng = np.random.default_rng(1)
    values = np.cumsum(rng.standard_normal(SHAPE), axis=2) * 100
    return values.astype(dtype)


def _both(tmp_path: Path, dtype: str = "f4", **options: Any) -> tuple[zarr.Array, zarr.Array]:
    """The same array twice: one written by zarr, one to be written by LocalChunks."""
    arrays = []
    for name in ("zarr", "local"):
        arrays.append(zarr.create_array(
            str(tmp_path / f"{name}.zarr"), name="v", shape=SHAPE, chunks=CHUNKS, dtype=dtype,
            fill_value=-9, zarr_format=3, config={"write_empty_chunks": True}, **options))
    return arrays[0], arrays[1]


def _stored(array: zarr.Array) -> dict[str, bytes]:
    folder = Path(str(array.store.root)) / array.path
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "zarr.json"}


CHAINS = {
    "blosc-lz4": {"compressors": [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")]},
    "blosc-zstd-bitshuffle": {"compressors": [BloscCodec(cname="zstd", shuffle="bitshuffle")]},
    "zstd": {"compressors": [ZstdCodec(level=0)]},
    "zstd-checksum+crc32c": {"compressors": [ZstdCodec(level=3, checksum=True), Crc32cCodec()]},
    "gzip": {"compressors": [GzipCodec(level=1)]},
    "none": {"compressors": None},
    "big-endian bytes": {"serializer": BytesCodec(endian="big"), "compressors": None},
    "transpose": {"filters": [TransposeCodec(order=(2, 0, 1))]},
}


@pytest.mark.parametrize("chain", sorted(CHAINS))
@pytest.mark.parametrize("dtype", ["f4", ">f8", "i2"])
def test_every_chunk_is_the_bytes_zarr_stores(tmp_path: Path, chain: str, dtype: str) -> None:
    by_zarr, by_us = _both(tmp_path, dtype, **CHAINS[chain])
    local = LocalChunks.of(by_us)
    assert local is not None
    data = _data(dtype)
    for i in range(0, SHAPE[0], CHUNKS[0]):
        for k in range(0, SHAPE[2], CHUNKS[2]):
            region = (slice(i, i + CHUNKS[0]), slice(0, SHAPE[1]), slice(k, k + CHUNKS[2]))
            by_zarr[region] = data[region]
            assert local.store(region, np.ascontiguousarray(data[region]))
    assert _stored(by_us) == _stored(by_zarr)
    assert not list((tmp_path / "local.zarr").rglob("*.partial"))
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "local.zarr"), path="v")[:], data)


def test_anything_but_one_whole_chunk_is_left_to_zarr(tmp_path: Path) -> None:
    array = zarr.create_array(str(tmp_path / "s.zarr"), name="v", shape=(7, 4), chunks=(3, 4),
                              dtype="f4", zarr_format=3, config={"write_empty_chunks": True})
    local = LocalChunks.of(array)
    assert local is not None
    assert not local.store((slice(6, 7), slice(0, 4)), np.ones((1, 4), "f4"))  # the edge chunk
    assert not local.store((slice(1, 4), slice(0, 4)), np.ones((3, 4), "f4"))  # not aligned
    assert not local.store((slice(0, 3), slice(0, 4)), np.ones((3, 4), "f8"))  # another dtype
    assert not local.store((slice(0, 6), slice(0, 4)), np.ones((6, 4), "f4"))  # two chunks
    assert not (tmp_path / "s.zarr" / "v" / "c").exists()


def test_zarr_keeps_what_it_alone_can_write(tmp_path: Path) -> None:
    def made(**options: Any) -> zarr.Array:
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.zarr"
        return zarr.create_array(str(path), name="v", shape=(8, 4), dtype="f4", **options)

    assert LocalChunks.of(made(chunks=(2, 4), zarr_format=2)) is None
    assert LocalChunks.of(made(chunks=(2, 4), shards=(4, 4))) is None
    skipping = made(chunks=(2, 4), config={"write_empty_chunks": False})
    assert LocalChunks.of(skipping) is None  # zarr drops all-fill chunks; we store them all
    in_memory = zarr.create_array(zarr.storage.MemoryStore(), shape=(8, 4), chunks=(2, 4),
                                  dtype="f4")
    assert LocalChunks.of(in_memory) is None


@pytest.mark.parametrize("shape", [(7, 4), (7, 5), (6, 5)])
def test_an_edge_chunk_padded_in_its_whole_buffer_is_the_chunk_zarr_pads(
        tmp_path: Path, shape: tuple[int, int]) -> None:
    arrays = [zarr.create_array(str(tmp_path / f"{name}.zarr"), name="v", shape=shape,
                                chunks=(3, 4), dtype="i4", fill_value=-7,
                                compressors=[BloscCodec(cname="lz4")],
                                config={"write_empty_chunks": True}) for name in ("a", "b")]
    local = LocalChunks.of(arrays[1])
    assert local is not None
    data = np.arange(np.prod(shape), dtype="i4").reshape(shape)
    for i in range(0, shape[0], 3):
        for j in range(0, shape[1], 4):
            region = (slice(i, min(i + 3, shape[0])), slice(j, min(j + 4, shape[1])))
            arrays[0][region] = data[region]
            whole = np.full((3, 4), 99, "i4")  # a reused buffer: stale values outside
            inside = whole[:region[0].stop - i, :region[1].stop - j]
            inside[...] = data[region]
            assert local.store(region, inside, whole)
    assert _stored(arrays[1]) == _stored(arrays[0])


def test_an_edge_chunk_needs_the_buffer_it_is_the_corner_of(tmp_path: Path) -> None:
    array = zarr.create_array(str(tmp_path / "s.zarr"), name="v", shape=(7, 4), chunks=(3, 4),
                              dtype="f4", config={"write_empty_chunks": True})
    local = LocalChunks.of(array)
    assert local is not None
    whole = np.zeros((3, 4), "f4")
    edge = (slice(6, 7), slice(0, 4))
    assert not local.store(edge, np.zeros((1, 4), "f4"), whole)  # not a view of it
    assert not local.store(edge, whole[1:2], whole)  # a view, but not its corner
    assert not local.store(edge, whole[:1], np.zeros((3, 4), "f8"))
    assert local.store(edge, whole[:1], whole)


def test_a_unit_write_stores_whole_and_edge_chunks_itself(tmp_path: Path) -> None:
    zarr.create_array(str(tmp_path / "s.zarr"), name="v", shape=(5, 4), chunks=(2, 4),
                      dtype="f4", fill_value=7, compressors=[ZstdCodec(level=0)])
    writer = UnitWriter(str(tmp_path / "s.zarr"))
    array, local = writer.array("v"), writer.local_chunks("v")
    assert local is not None
    stored = []
    original = local.store

    def counted(*args: Any) -> bool:
        stored.append(original(*args))
        return stored[-1]

    object.__setattr__(local, "store", counted)
    for start in (0, 2, 4):
        stop = min(start + 2, 5)
        whole = np.full((2, 4), start, "f4")
        UnitWrite(array, (slice(start, stop), slice(0, 4)), whole[:stop - start], local=local,
                  whole=whole)()
    assert stored == [True, True, True]
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "s.zarr"), path="v")[:, 0],
                                  [0, 0, 2, 2, 4])
    assert sorted(p.name for p in (tmp_path / "s.zarr" / "v" / "c").iterdir()) == ["0", "1", "2"]


def test_sharding_is_not_synchronous_in_zarr() -> None:
    from zarr.abc.codec import SupportsSyncCodec

    # the reason sharded arrays take zarr's path (the day zarr changes it, this fails)
    assert not isinstance(ShardingCodec(chunk_shape=(2, 4)), SupportsSyncCodec)
