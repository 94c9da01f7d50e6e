"""`arco plan --inspect`: open the first source and estimate the target template."""

from __future__ import annotations

from typing import Any

import numpy as np

from recipes_core.combine import combine_schemas
from recipes_core.opener import open_transformed
from recipes_core.plan.chunks import ChunkGrid
from recipes_core.plan.plan import Plan, resolve_chunks
from recipes_core.schema import schema_of
from recipes_core.storage import AccessPolicy, Stager


def inspect_plan(plan: Plan, cache_dir: str, policy: AccessPolicy) -> dict[str, Any]:
    """Shapes, dtypes, chunk grid and size of the target, from the first source(s) only.

    Concat dimensions are scaled from the first file: exact when the recipe gives
    ``items_per_file``, an estimate otherwise.
    """
    first = plan.prune(1)
    stager = Stager(cache_dir, policy)
    schemas = []
    for key, url in first.sources():
        staged = stager.stage(url)
        with open_transformed(first, key, staged.path, staged.url) as ds:
            schemas.append(schema_of(ds, key, staged.url))
    template = combine_schemas(first, schemas)
    dims = dict(template.dims)
    for pdim in plan.concat_dims:
        dims[pdim.name] = (pdim.items_per_file or template.dims[pdim.name]) * len(pdim)
    step_bytes = max(
        [
            int(np.prod([dims[d] for d in v.dims if d not in template.concat_dims], dtype=np.int64))
            * np.dtype(v.dtype).itemsize
            for v in template.variables.values()
            if set(v.dims) & set(template.concat_dims)
        ]
        or [0]
    )
    target = plan.recipe.target
    chunks = resolve_chunks(
        target.chunks,
        int(target.chunk_size) if target.chunk_size else None,
        dims,
        template.concat_dims,
        step_bytes,
        recipe_file=plan.recipe_file,
    )
    variables = []
    total_bytes = 0
    total_chunks = 0
    for name, var in template.variables.items():
        shape = tuple(dims[d] for d in var.dims)
        var_chunks = tuple(chunks[d] for d in var.dims)
        grid = ChunkGrid(shape, var_chunks)
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(var.dtype).itemsize
        total_bytes += nbytes
        total_chunks += grid.nchunks
        variables.append(
            {
                "name": name,
                "dims": list(var.dims),
                "shape": list(shape),
                "dtype": str(np.dtype(var.dtype)),
                "chunks": list(var_chunks),
                "grid": list(grid.grid_shape),
                "nbytes": nbytes,
                "encoding": {k: str(v) for k, v in var.encoding.items()},
            }
        )
    return {
        "dims": dims,
        "chunks": chunks,
        "variables": variables,
        "nbytes": total_bytes,
        "nchunks": total_chunks,
        "exact": all(p.items_per_file for p in plan.concat_dims),
    }
