"""This machine's own limits, measured on the workload's files, and the bake limit they imply.

Each component is timed on one core (one thread, the GIL-free C code doing the work):

* netCDF read: netCDF4-python reads every variable of N files into numpy (raw values, no
  masking), from the page cache;
* compress: the numcodecs compressor that zarr 3's codec wraps (``BloscCodec`` -> numcodecs
  ``Blosc`` with blosc's own threads off, as zarr sets them; ``ZstdCodec`` -> numcodecs
  ``Zstd``), on real target chunks (``time_chunk`` days of one variable); gives the ratio too;
* disk write: the compressed chunks written to files, each file fsync'ed at the end;
* sha256: the hash arco computes when it stages a local file (a cost xarray does not pay).

The limit, with speeds in MB/s of uncompressed data and ``ratio`` = compressed / uncompressed::

    t     = 1/read + 1/compress + ratio/disk        # seconds per MB on one core
    limit = min(cores / t, disk / ratio)            # MB/s: all cores busy, or the disk saturated
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

MB = 1e6


@dataclass
class Limits:
    codec: str
    cores: int
    read_mb_s: float
    compress_mb_s: float
    ratio: float  # compressed bytes / uncompressed bytes
    disk_mb_s: float
    sha256_mb_s: float

    @property
    def seconds_per_mb(self) -> float:
        return 1 / self.read_mb_s + 1 / self.compress_mb_s + self.ratio / self.disk_mb_s

    @property
    def per_core_mb_s(self) -> float:
        return 1 / self.seconds_per_mb

    @property
    def limit_mb_s(self) -> float:
        return min(self.cores / self.seconds_per_mb, self.disk_mb_s / self.ratio)

    @property
    def limit_with_hash_mb_s(self) -> float:
        """The same limit if every source byte is also hashed once (arco's local staging)."""
        t = self.seconds_per_mb + 1 / self.sha256_mb_s
        return min(self.cores / t, self.disk_mb_s / self.ratio)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"per_core_mb_s": self.per_core_mb_s,
                               "limit_mb_s": self.limit_mb_s,
                               "limit_with_hash_mb_s": self.limit_with_hash_mb_s}


def _timed(work: Callable[[], int], min_seconds: float = 1.0) -> float:
    """MB/s of ``work`` (which returns the bytes it handled), repeated for ``min_seconds``."""
    done, started = 0, time.perf_counter()
    while True:
        done += work()
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return done / MB / elapsed


def netcdf_read_mb_s(files: Sequence[Path], variables: Sequence[str],
                     min_seconds: float = 1.0) -> float:
    import netCDF4

    def read() -> int:
        total = 0
        for path in files:
            with netCDF4.Dataset(path) as nc:
                for name in variables:
                    var = nc.variables[name]
                    var.set_auto_maskandscale(False)  # xarray masks in numpy, after the read
                    total += np.asarray(var[:]).nbytes
        return total

    read()  # first pass: file handles and HDF5 caches warm, as in a long bake
    return _timed(read, min_seconds)


def real_chunks(files: Sequence[Path], variables: Sequence[str],
                time_chunk: int) -> list[np.ndarray]:
    """One target chunk per variable, stacked from the first ``time_chunk`` files."""
    import netCDF4

    chunks = []
    for name in variables:
        days = []
        for path in files[:time_chunk]:
            with netCDF4.Dataset(path) as nc:
                var = nc.variables[name]
                var.set_auto_maskandscale(False)  # the encoded values, fills included
                days.append(np.asarray(var[:]))
        chunks.append(np.ascontiguousarray(np.concatenate(days)))
    return chunks


def compressor(codec: str) -> Any:
    """The numcodecs object behind zarr 3's codec, configured as zarr configures it."""
    import numcodecs
    import numcodecs.blosc

    if codec == "blosc-lz4":
        numcodecs.blosc.use_threads = False  # zarr.codecs.blosc sets this at import
        return numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE,
                               typesize=4)
    if codec == "zstd-0":
        return numcodecs.Zstd(level=0)
    raise ValueError(f"unknown codec {codec}")


def compress_mb_s(chunks: Sequence[np.ndarray], codec: str,
                  min_seconds: float = 1.0) -> tuple[float, float, list[bytes]]:
    """(MB/s, compressed/uncompressed ratio, the compressed chunks)."""
    compress = compressor(codec)
    # zarr hands the codec the chunk's bytes (a uint8 view), not the float array.
    views = [c.view(np.uint8).ravel() for c in chunks]
    encoded = [bytes(compress.encode(v)) for v in views]
    ratio = sum(map(len, encoded)) / sum(v.nbytes for v in views)

    def work() -> int:
        for v in views:
            compress.encode(v)
        return sum(v.nbytes for v in views)

    return _timed(work, min_seconds), ratio, encoded


def disk_write_mb_s(blobs: Sequence[bytes], folder: Path, total_bytes: int) -> float:
    """Write ``total_bytes`` of compressed chunks, one file each, then fsync them all."""
    scratch = Path(tempfile.mkdtemp(prefix="disk-", dir=folder))
    try:
        started = time.perf_counter()
        written, paths = 0, []
        while written < total_bytes:
            blob = blobs[len(paths) % len(blobs)]
            path = scratch / f"c{len(paths)}"
            path.write_bytes(blob)
            paths.append(path)
            written += len(blob)
        for path in paths:  # fsync at the end, as a store's bytes reach the disk eventually
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return written / MB / (time.perf_counter() - started)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def sha256_mb_s(files: Sequence[Path], min_seconds: float = 1.0) -> float:
    from recipes_core.storage.cache import BLOCK

    def work() -> int:
        total = 0
        for path in files:
            digest = hashlib.sha256()
            with open(path, "rb") as f:  # as recipes_core.storage.cache.sha256_file does
                while block := f.read(BLOCK):
                    digest.update(block)
                    total += len(block)
        return total

    return _timed(work, min_seconds)


def measure(files: Sequence[Path], variables: Sequence[str], time_chunk: int,
            codecs: Sequence[str], cores: int, scratch: Path,
            disk_bytes: int = 512 * 1000 * 1000, min_seconds: float = 1.0) -> dict[str, Limits]:
    """Every component speed once, and the limit for each codec."""
    sample = list(files[: max(time_chunk, 60)])
    read = netcdf_read_mb_s(sample, variables, min_seconds)
    sha = sha256_mb_s(sample, min_seconds)
    chunks = real_chunks(files, variables, min(time_chunk, len(files)))
    out: dict[str, Limits] = {}
    disk: float | None = None
    for codec in codecs:
        speed, ratio, blobs = compress_mb_s(chunks, codec, min_seconds)
        if disk is None:  # the disk does not care which codec made the bytes
            disk = disk_write_mb_s(blobs, scratch, disk_bytes)
        out[codec] = Limits(codec=codec, cores=cores, read_mb_s=read, compress_mb_s=speed,
                            ratio=ratio, disk_mb_s=disk, sha256_mb_s=sha)
    return out
