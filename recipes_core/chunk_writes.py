"""Whole chunks stored straight into a local Zarr v3 store, encoded by zarr's own codecs.

A write task hands its background writer one whole chunk (a write unit) at a time. Through
``array[region] = data``, zarr 3 runs the write on its event-loop thread, which hands the
compression and then the file write each to a thread of its own: the chunk passes through
four threads, each of which needs the GIL to wake up while the task's thread is busy reading
the next sources. Measured on the benchmark (2 cores, 31 MB chunks, blosc-lz4): that path
took 43-48 ms a chunk where the same codecs and the file write took 35-40, and with one
background writer the write phase of the 1.1 GB bake went from 4.5 to 4.0 s without it.
zarr also pads an edge chunk into fresh chunk-sized buffers; here the write unit's own
(pooled, whole-sized) buffer is padded in place (the last units of the benchmark had cost
+110 MiB of peak RSS).

Where every codec of the array encodes synchronously (zarr's ``SupportsSyncCodec``: bytes,
blosc, zstd, gzip, transpose, crc32c) and the store is a local folder, :class:`LocalChunks`
runs those same codec objects on the writer's thread and writes the file as zarr's
``LocalStore`` does: into a temporary file beside it, renamed into place, so that a reader
never sees half a chunk. Everything else (sharded arrays, remote stores, Zarr v2, a chunk
that is not exactly one whole chunk, an array that skips empty chunks) goes through zarr.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype


@dataclass(frozen=True, eq=False)
class LocalChunks:
    """Encodes and stores whole chunks of one local Zarr v3 array without zarr's event loop."""

    array: zarr.Array
    folder: str  # the array's folder on disk
    codecs: tuple[Any, ...]  # array -> array codecs, the one array -> bytes, bytes -> bytes

    @classmethod
    def of(cls, array: zarr.Array) -> LocalChunks | None:
        """The fast path for ``array``, or None where zarr has to store its chunks."""
        try:
            from zarr.abc.codec import (
                ArrayArrayCodec,
                ArrayBytesCodec,
                BytesBytesCodec,
                SupportsSyncCodec,
            )
            from zarr.core.chunk_grids import RegularChunkGrid
            from zarr.core.metadata.v3 import ArrayV3Metadata
            from zarr.storage import LocalStore
        except ImportError:  # an older zarr 3: no synchronous codecs
            return None
        metadata, store = array.metadata, array.store
        if (not isinstance(metadata, ArrayV3Metadata) or not isinstance(store, LocalStore)
                or store.read_only or not isinstance(metadata.chunk_grid, RegularChunkGrid)
                or not array.config.write_empty_chunks):
            return None
        codecs = tuple(metadata.codecs)
        if not all(isinstance(c, SupportsSyncCodec) for c in codecs):
            return None  # sharding, or a codec only zarr's pipeline runs
        # zarr keeps them in order: array -> array codecs, one array -> bytes, bytes -> bytes
        middle = [i for i, c in enumerate(codecs) if isinstance(c, ArrayBytesCodec)]
        if len(middle) != 1 or not all(
                isinstance(c, ArrayArrayCodec) for c in codecs[:middle[0]]) or not all(
                isinstance(c, BytesBytesCodec) for c in codecs[middle[0] + 1:]):
            return None
        folder = os.path.join(str(store.root), *[p for p in array.path.split("/") if p])
        return cls(array, folder, codecs)

    def _chunk(self, region: Sequence[slice]) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """(its coordinates, its shape inside the array) when ``region`` is exactly one chunk
        (a whole one, or an edge chunk's part inside the array); None otherwise."""
        chunks = self.array.metadata.chunk_grid.chunk_shape
        if len(region) != len(chunks):
            return None
        coords, inside = [], []
        for where, size, extent in zip(region, chunks, self.array.shape, strict=True):
            start, stop, step = where.indices(extent)
            if step != 1 or start % size or stop - start != min(size, extent - start):
                return None
            coords.append(start // size)
            inside.append(stop - start)
        return tuple(coords), tuple(inside)

    def store(self, region: Sequence[slice], data: np.ndarray,
              whole: np.ndarray | None = None) -> bool:
        """Encode and store ``data`` as the chunk ``region``; False when it is not exactly
        one chunk, or an edge chunk without ``whole`` (the caller then writes it through
        zarr). At the array's edge ``data`` is the leading corner of ``whole``, a buffer of
        the full chunk shape, whose rest is padded with the fill value here, as zarr pads it.
        """
        found = self._chunk(region)
        if found is None or data.dtype != self.array.dtype or data.shape != found[1]:
            return False
        coords, inside = found
        chunks = tuple(self.array.metadata.chunk_grid.chunk_shape)
        if inside != chunks:
            if whole is None or not _is_leading_corner(data, whole, chunks):
                return False
            for axis, n in enumerate(inside):  # zarr pads an edge chunk with the fill value
                if n < chunks[axis]:
                    whole[(slice(None),) * axis + (slice(n, None),)] = (
                        self.array.metadata.fill_value)
            data = whole
        prototype = default_buffer_prototype()
        spec = self.array.metadata.get_chunk_spec(coords, self.array.config, prototype)
        encoded: Any = prototype.nd_buffer.from_numpy_array(data)
        for codec in self.codecs:
            encoded = codec._encode_sync(encoded, spec)
            spec = codec.resolve_metadata(spec)
        _write_atomically(os.path.join(self.folder, *self.array.metadata.encode_chunk_key(
            coords).split("/")), encoded.as_buffer_like())
        return True


def _is_leading_corner(data: np.ndarray, whole: np.ndarray, shape: tuple[int, ...]) -> bool:
    """Whether ``data`` is ``whole[:n0, :n1, ...]``, with ``whole`` a C-ordered ``shape``."""
    return (whole.shape == shape and whole.dtype == data.dtype and whole.flags.c_contiguous
            and data.strides == whole.strides
            and data.__array_interface__["data"][0] == whole.__array_interface__["data"][0])


def _write_atomically(path: str, data: Any) -> None:
    """Write the file whole under a temporary name, then rename it into place (as zarr's
    LocalStore does: a crash or a concurrent reader never meets half a chunk)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.{uuid.uuid4().hex}.partial"
    try:
        with open(partial, "wb") as f:
            f.write(data)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
