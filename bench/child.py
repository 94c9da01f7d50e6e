"""One timed run, in its own process: an arco bake, or plain xarray, of the workload.

The parent (``bench.run``) starts this module in a fresh interpreter per run so that peak RSS
belongs to that run alone. Heavy imports happen *before* the clock starts: start-up is the
same few seconds for every run and says nothing about the pipeline (the parent still records
the process's whole wall time). The result is written as JSON to ``--out``.

    python -m bench.child arco   --recipe R --profile P --target T --cache C --out F
    python -m bench.child xarray --files-dir D --codec blosc-lz4 --time-chunk 30 --store S --out F
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def run_arco(args: argparse.Namespace) -> dict[str, Any]:
    # Imported up front, untimed: Beam, the profile's runner, xarray/zarr/dask and the
    # catalogue code. Only that runner: Dask's distributed adds 20-40 MiB to a direct bake's
    # RSS that `arco bake` on the direct runner never pays. dask.array is imported by every
    # bake (xarray imports dask at its first decode, the store's template is lazy) and by the
    # xarray run's open_mfdataset alike: 0.3 s of start-up that was inside a bake's clock.
    import apache_beam.runners.direct.direct_runner
    import dask.array  # noqa: F401

    import recipes_core.pipeline
    import recipes_core.stac  # noqa: F401
    from recipes_core.bake import bake, policy_from
    from recipes_core.plan import compile_recipe
    from recipes_core.recipe_io import load_recipe
    from recipes_core.runners import load_profile
    from recipes_core.runners.engines import frozen_heap

    profile = load_profile(args.profile)
    if profile.engine == "dask":
        import apache_beam.runners.dask.dask_runner  # noqa: F401
        import distributed  # noqa: F401

    started = time.perf_counter()
    marks: dict[str, float] = {}

    def on_progress(snap: Any) -> None:
        """Milestones from the live counts (polled every 0.25 s): where the seconds went."""
        now = round(time.perf_counter() - started, 2)
        staged, sources = snap.get("sources_staged"), snap.totals.get("sources", 0)
        written, chunks = snap.get("chunks_written"), snap.totals.get("chunks")
        for name, reached in (("first_source_staged", staged > 0),
                              ("all_sources_staged", sources and staged >= sources),
                              ("first_chunk_written", written > 0),
                              ("all_chunks_written", chunks and written >= chunks)):
            if reached:
                marks.setdefault(name, now)

    # What `arco bake RECIPE --runner P --target T --cache C` does, minus the progress bars.
    with frozen_heap():
        recipe, _ = load_recipe(args.recipe)
        plan = compile_recipe(recipe, args.recipe)
        result = bake(plan, args.target, cache_dir=args.cache, policy=policy_from(profile),
                      profile=profile, on_progress=on_progress)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "pipeline_seconds": result.seconds, "store": result.store,
            "bytes_written": result.bytes_written, "counters": result.counters,
            "state": result.state, "milestones": marks}


def xarray_codec(name: str) -> Any:
    """The zarr 3 compressor of a benchmark codec: the objects arco's target uses too."""
    from zarr import codecs

    if name == "blosc-lz4":
        return codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
    if name == "zstd-0":
        return codecs.ZstdCodec(level=0)
    raise ValueError(f"unknown codec {name}")


def run_xarray(args: argparse.Namespace) -> dict[str, Any]:
    import dask
    import dask.array  # as for arco: an import, not the pipeline
    import xarray as xr
    import zarr  # noqa: F401

    files = sorted(str(p) for p in Path(args.files_dir).glob("*.nc"))
    chunk = args.time_chunk
    started = time.perf_counter()
    # The plain-xarray recipe a user would write. minimal/override/exact are what arco's own
    # oracle uses: without them xarray compares lat/lon of every file, which is slower and not
    # what a bake does either.
    with dask.config.set(scheduler="threads", num_workers=args.threads):
        ds = xr.open_mfdataset(files, engine="netcdf4", combine="by_coords", parallel=False,
                               chunks={"time": chunk}, data_vars="minimal", coords="minimal",
                               compat="override", join="exact")
        # One file per day gives dask chunks of one step; zarr chunks of `chunk` steps must
        # each be written by one task, so rechunk first (as a user has to).
        ds = ds.chunk({"time": chunk, "lat": -1, "lon": -1})
        codec = xarray_codec(args.codec)
        encoding = {str(name): {"chunks": (chunk, *ds[name].shape[1:]), "compressors": [codec]}
                    for name in ds.data_vars}
        ds.to_zarr(args.store, mode="w", zarr_format=3, encoding=encoding, consolidated=True)
        ds.close()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "pipeline_seconds": seconds, "store": args.store,
            "files": len(files)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    sub = parser.add_subparsers(dest="mode", required=True)
    arco = sub.add_parser("arco")
    arco.add_argument("--recipe", required=True)
    arco.add_argument("--profile", required=True)
    arco.add_argument("--target", required=True)
    arco.add_argument("--cache", required=True)
    xr_ = sub.add_parser("xarray")
    xr_.add_argument("--files-dir", required=True)
    xr_.add_argument("--codec", required=True)
    xr_.add_argument("--time-chunk", type=int, default=30)
    xr_.add_argument("--threads", type=int, default=2)
    xr_.add_argument("--store", required=True)
    for p in (arco, xr_):
        p.add_argument("--out", required=True)
        p.add_argument("--pyinstrument", help="profile the timed part in process, to this file")
    args = parser.parse_args(argv)
    run = run_arco if args.mode == "arco" else run_xarray
    if args.pyinstrument:
        from pyinstrument import Profiler

        with Profiler(interval=0.005) as profiler:
            result = run(args)
        Path(args.pyinstrument).write_text(profiler.output_text(unicode=False, color=False,
                                                                show_all=False))
    else:
        result = run(args)
    Path(args.out).write_text(json.dumps(result, default=str, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
