"""The Zarr target: prepare it once from the template, then finalise.

Preparation writes every array's metadata and the dimension coordinates before any data, so
workers never create arrays (DESIGN §4, step 5). Write tasks (:mod:`recipes_core.writer`)
then fill whole chunks (or shards); finalising consolidates the metadata.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr
import zarr

from recipes_core.errors import TargetError
from recipes_core.model import Codec, Target
from recipes_core.schema import Template, VariableSchema

warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")


def compressors(codec: Codec, zarr_format: int) -> list[Any] | None:
    """The compressor list for xarray's zarr encoding, per Zarr format."""
    if codec.name == "none":
        return None
    if zarr_format == 3:
        from zarr import codecs

        if codec.name == "blosc":
            return [
                codecs.BloscCodec(cname=codec.cname, clevel=codec.clevel, shuffle=codec.shuffle)
            ]
        if codec.name == "zstd":
            return [codecs.ZstdCodec(level=codec.level if codec.level is not None else 0)]
        return [codecs.GzipCodec(level=codec.level if codec.level is not None else 5)]
    import numcodecs

    if codec.name == "blosc":
        shuffle = {"shuffle": 1, "bitshuffle": 2, "noshuffle": 0}[codec.shuffle]
        return [numcodecs.Blosc(cname=codec.cname, clevel=codec.clevel, shuffle=shuffle)]
    if codec.name == "zstd":
        return [numcodecs.Zstd(level=codec.level if codec.level is not None else 0)]
    return [numcodecs.GZip(level=codec.level if codec.level is not None else 5)]


def write_shape(template: Template, var: VariableSchema, target: Target) -> tuple[int, ...]:
    """The unit a task writes whole: the shard when sharding, else the chunk."""
    chunks = template.chunk_shape(var)
    if not target.shards:
        return chunks
    return tuple(
        min(target.shards.get(d, c), size) if target.shards.get(d) else c
        for d, c, size in zip(var.dims, chunks, var.shape, strict=True)
    )


def template_dataset(template: Template, target: Target) -> tuple[xr.Dataset, dict[str, Any]]:
    """An xarray skeleton of the target (lazy zeros for data) and its encoding."""
    import dask.array as dsa  # here, not at the top: write workers never need dask

    coords = {}
    encoding: dict[str, Any] = {}
    for name, values in template.coords.items():
        meta = template.coord_vars.get(name)
        coords[name] = xr.Variable((name,), values, attrs=meta.attrs if meta else {})
        enc = dict(meta.encoding) if meta else {}
        enc["chunks"] = (max(1, len(values)),)  # one chunk: opening stays fast (DESIGN §9)
        enc.setdefault("_FillValue", None)
        encoding[name] = enc
    ds = xr.Dataset(coords=coords, attrs=template.attrs)
    codec = compressors(target.codec, target.zarr_format)
    for name, var in template.variables.items():
        chunks = template.chunk_shape(var)
        # Lazy data laid out by write unit (the shard when sharding): nothing is computed.
        data = dsa.zeros(var.shape, dtype=var.dtype, chunks=write_shape(template, var, target))
        ds[name] = xr.Variable(var.dims, data, attrs=var.attrs)
        enc = dict(var.encoding)
        enc["chunks"] = chunks
        enc["compressors"] = codec
        if target.shards and target.zarr_format == 3:
            enc["shards"] = write_shape(template, var, target)
        encoding[name] = enc
    ds = ds.set_coords([n for n, v in template.variables.items() if v.is_coord])
    return ds, encoding


def template_digest(template: Template, target: Target) -> str:
    """A digest of everything that fixes the store's layout, to refuse mismatched resumes."""
    h = hashlib.sha256()
    for name in sorted(template.coords):
        h.update(name.encode())
        h.update(np.ascontiguousarray(template.coords[name]).tobytes())
    layout = {
        "dims": template.dims,
        "vars": {
            n: [v.dims, v.dtype, repr(sorted(v.encoding.items()))]
            for n, v in sorted(template.variables.items())
        },
        "chunks": template.chunks,
        "target": target.model_dump(mode="json"),
    }
    h.update(json.dumps(layout, sort_keys=True, default=str).encode())
    return h.hexdigest()


def prepare_target(store: str, template: Template, target: Target) -> None:
    """Create every array and write the dimension coordinates. Runs once, before any data."""
    ds, encoding = template_dataset(template, target)
    try:
        ds.to_zarr(
            store,
            mode="w",
            compute=False,
            zarr_format=target.zarr_format,
            consolidated=False,
            encoding=encoding,
        )
    except Exception as err:
        raise TargetError(
            f"could not prepare the Zarr store: {type(err).__name__}: {err}",
            where=store,
            fix="check the target's encoding and codec.",
        ) from None


def finalise_target(store: str) -> None:
    """Consolidate metadata and drop the rechunk's intermediate stores, if any."""
    remove_intermediates(store)
    zarr.consolidate_metadata(store)


# Intermediate stores of a staged rechunk: scratch space, fast to write and read (lz4 level 1),
# beside the store so that they live wherever the target lives (local disk or object store).
INTERMEDIATE_CODEC = {"cname": "lz4", "clevel": 1, "shuffle": "shuffle"}


def intermediate_store(store: str, number: int) -> str:
    """Where intermediate store ``number`` (1-based) of a staged rechunk lives."""
    from recipes_core.storage import files

    return files.join(files.parent(store), "_rechunk", f"stage-{number}.zarr")


def prepare_intermediate(path: str, store: str, variables: Mapping[str, VariableSchema],
                         chunks: Mapping[str, int]) -> None:
    """Create the arrays of an intermediate store: the target's stored dtype and fill value
    (so values are copied as they are, never decoded), and the stage's chunks."""
    from zarr import codecs

    group = zarr.open_group(path, mode="w", zarr_format=3)
    for name, var in variables.items():
        final = zarr.open_array(store, path=name, mode="r")
        group.create_array(name, shape=var.shape, dtype=final.dtype,
                           chunks=tuple(chunks[d] for d in var.dims),
                           fill_value=final.fill_value,
                           compressors=[codecs.BloscCodec(**INTERMEDIATE_CODEC)])


def remove_intermediates(store: str) -> None:
    from recipes_core.storage import files

    files.remove_tree(files.join(files.parent(store), "_rechunk"))


def store_exists(store: str) -> bool:
    from recipes_core.storage import files

    return files.exists(files.join(store, "zarr.json")) or files.exists(
        files.join(store, ".zgroup"))
