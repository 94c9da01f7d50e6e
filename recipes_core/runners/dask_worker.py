"""A Dask worker's start-up for bakes: a distributed preload.

Every local cluster's workers load this module as they start (``LocalCluster(preload=...)``);
an operator's own workers can too: ``dask worker SCHEDULER --preload
recipes_core.runners.dask_worker``. It does two things a worker would otherwise do inside
its first bake task, where they hold up the bake:

- It imports what a task needs (Beam, xarray, zarr, the netCDF readers and this package: ~2.5 s
  in a fresh interpreter on the benchmark's machine). Inside the first task, that import stalled
  the survey (every worker's first task paid it, one after another as tasks reached them);
  at start-up all workers import side by side, before the cluster reports ready.
- It freezes the heap those imports leave (``gc.freeze``, as :func:`frozen_heap` does for
  the driver): a worker then walks only the bake's own objects when it collects, not the
  quarter of a million objects Beam and xarray keep alive for the life of the process.
  Only the import-time heap is frozen, so nothing a task makes later is kept from the
  collector.
"""

from __future__ import annotations

import gc
from typing import Any

# Everything a task unpickles and runs: the pipeline's DoFns and what they import, and what
# they import lazily once they read (the readers; xarray's decoding imports dask.array).
import apache_beam.runners.dask.transform_evaluator  # noqa: F401
import dask.array  # noqa: F401
import h5py  # noqa: F401
import netCDF4  # noqa: F401

import recipes_core.pipeline  # noqa: F401


def dask_setup(worker: Any) -> None:
    """distributed calls this once the worker exists, before it takes any task."""
    gc.freeze()
