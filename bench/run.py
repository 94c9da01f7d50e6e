"""``make bench``: bake one archive with every local runner and with plain xarray, and compare.

    python -m bench.run                       # default: 365 days x 3 vars x 360 x 720 (1.1 GB)
    python -m bench.run --quick               # ~50 MB smoke test
    python -m bench.run --size large          # ~11 GB (make bench-large)
    python -m bench.run --days 730 --ny 180 --nx 360 --codecs zstd-0 --runners xarray,dask-2
    python -m bench.run --size large --dry-run   # generate and check the inputs, bake nothing

Steps: generate (or reuse) the archive and read it once into the page cache; measure the
component limits; run each (codec, runner) in a fresh subprocess while sampling its process
tree; verify each store against the sources; profile one direct 1-process bake with py-spy;
time the planning steps; print the tables and write ``bench/results/<stamp>-<workload>.*``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import hotspots, limits, planning
from bench.report import (
    HEADERS,
    LIMITS_HEADERS,
    RunResult,
    chart,
    limits_rows,
    markdown_table,
    print_table,
    scaling,
    table_rows,
    write_json,
)
from bench.rss import run_measured
from bench.workload import (
    BENCH_DIR,
    CODECS,
    DATA_DIR,
    PROFILES,
    SIZES,
    Workload,
    generate,
    warm_page_cache,
    write_profile,
    write_recipe,
)

ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
RUNNERS = ["xarray", *PROFILES]  # xarray first: the baseline of each codec
FULL_VERIFY_BYTES = 2_000_000_000  # compare every chunk below this size, a sample above


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=sorted(SIZES), default="default",
                   help="a preset workload (quick ~50 MB, default 1.1 GB, large ~11 GB)")
    p.add_argument("--quick", action="store_true", help="same as --size quick")
    p.add_argument("--days", type=int, help="override the preset's number of daily files")
    p.add_argument("--ny", type=int, help="override the preset's latitudes")
    p.add_argument("--nx", type=int, help="override the preset's longitudes")
    p.add_argument("--nvars", type=int, help="override the number of variables (3)")
    p.add_argument("--codecs", default=",".join(CODECS), help=f"comma list of {', '.join(CODECS)}")
    p.add_argument("--runners", default=",".join(RUNNERS),
                   help=f"comma list of {', '.join(RUNNERS)}")
    p.add_argument("--repeat", type=int, default=1, help="runs of each; the median counts")
    p.add_argument("--verify-sample", type=int, default=None,
                   help="chunks per variable to verify (default: all below 2 GB, else 4)")
    p.add_argument("--xarray-threads", type=int, default=2)
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1,
                   help="cores the limit assumes (default: this machine's)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per run")
    p.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    p.add_argument("--profile-runners", default="direct-1",
                   help="comma list of arco runners to profile with py-spy (default direct-1)")
    p.add_argument("--no-planning", action="store_true", help="skip the planning timings")
    p.add_argument("--no-limits", action="store_true", help="skip the component limits")
    p.add_argument("--keep", action="store_true", help="keep the stores after verifying them")
    p.add_argument("--dry-run", action="store_true",
                   help="generate and check the inputs, write recipes and profiles; bake nothing")
    p.add_argument("--data-dir", type=Path, default=DATA_DIR)
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = p.parse_args(argv)
    for name, allowed in (("codecs", CODECS), ("runners", RUNNERS),
                          ("profile_runners", PROFILES)):
        chosen = [c for c in getattr(args, name).split(",") if c]
        unknown = sorted(set(chosen) - set(allowed))
        if unknown:
            p.error(f"unknown {name}: {', '.join(unknown)}")
        setattr(args, name, chosen)
    return args


def choose_workload(args: argparse.Namespace) -> Workload:
    workload = SIZES["quick" if args.quick else args.size]
    overrides = {k: getattr(args, k) for k in ("days", "ny", "nx", "nvars")
                 if getattr(args, k) is not None}
    return replace(workload, **overrides)


# ---- one run ---------------------------------------------------------------------------------
def run_once(runner: str, codec: str, workload: Workload, folder: Path,
             args: argparse.Namespace) -> tuple[RunResult, str | None]:
    """Bake once in a fresh subprocess; returns the result and the store (None if failed)."""
    result = RunResult(runner=runner, codec=codec, nbytes=workload.nbytes)
    work = folder / "runs" / f"{codec}-{runner}"
    shutil.rmtree(work, ignore_errors=True)  # always a fresh target
    work.mkdir(parents=True)
    out = work / "result.json"
    if runner == "xarray":
        command = [sys.executable, "-m", "bench.child", "xarray", "--files-dir",
                   str(folder / "files"), "--codec", codec, "--time-chunk",
                   str(workload.time_chunk), "--threads", str(args.xarray_threads),
                   "--store", str(work / "store.zarr"), "--out", str(out)]
    else:
        command = [sys.executable, "-m", "bench.child", "arco", "--recipe",
                   str(folder / f"recipe-{codec}.yaml"), "--profile",
                   str(folder / "profiles" / f"{runner}.yaml"), "--target", str(work / "target"),
                   "--cache", str(folder / "cache"), "--out", str(out)]
    usage = run_measured(command, cwd=ROOT, log_path=work / "run.log", timeout=args.timeout)
    result.process_seconds = usage.wall
    result.peak_rss = usage.peak_rss
    result.largest_process_rss = usage.largest_process_rss
    result.peak_processes = usage.peak_processes
    result.cpu_seconds = usage.cpu_seconds
    result.other_cpu_seconds = usage.other_cpu_seconds
    result.steal_seconds = usage.steal_seconds
    if usage.returncode != 0 or not out.exists():
        tail = (work / "run.log").read_text(errors="replace").strip().splitlines()[-5:]
        result.error = f"exit {usage.returncode}: " + " | ".join(tail)
        return result, None
    data = json.loads(out.read_text())
    result.seconds = data["seconds"]
    result.pipeline_seconds = data["pipeline_seconds"]
    result.milestones = data.get("milestones", {})
    return result, data["store"]


def verify(result: RunResult, store: str, recipe: Path, cache: Path, sample: int | None) -> None:
    """Open the store with xarray and compare it with the sources (arco's own verifier)."""
    from recipes_core.plan import compile_recipe
    from recipes_core.recipe_io import load_recipe
    from recipes_core.storage import AccessPolicy
    from recipes_core.verify import verify_store

    loaded, _ = load_recipe(recipe)
    plan = compile_recipe(loaded, recipe)
    try:
        report = verify_store(store, plan, sample=sample, cache_dir=str(cache),
                              policy=AccessPolicy(allow_local=True))
    except Exception as err:  # a crash of the verifier fails the run, it does not stop the rest
        result.verified, result.verify_note = False, f"{type(err).__name__}: {err}"
        return
    result.verified = report.ok
    result.verify_note = (f"{report.checked_chunks}/{report.total_chunks} chunks"
                          + ("" if report.ok else ": " + "; ".join(report.problems[:3])))


def run_all(workload: Workload, folder: Path, args: argparse.Namespace) -> list[RunResult]:
    """Every (codec, runner), ``--repeat`` times. The attempts are interleaved, one round of
    every runner after another, so that a machine whose speed drifts (a shared VM's does,
    by a third within minutes) slows every runner alike instead of the ones that ran late."""
    sample = args.verify_sample
    if sample is None and workload.nbytes > FULL_VERIFY_BYTES:
        sample = 4
    results = []
    for codec in args.codecs:
        attempts: dict[str, list[RunResult]] = {runner: [] for runner in args.runners}
        for attempt in range(args.repeat):
            for runner in args.runners:
                log(f"run {codec} / {runner}" + (f" #{attempt + 1}" if args.repeat > 1 else ""))
                attempts[runner].append(_attempt(runner, codec, workload, folder, args, sample))
        results.extend(_median(attempts[runner]) for runner in args.runners)
    return results


def _attempt(runner: str, codec: str, workload: Workload, folder: Path,
             args: argparse.Namespace, sample: int | None) -> RunResult:
    """One timed bake, then its verification (not timed), then its store removed."""
    result, store = run_once(runner, codec, workload, folder, args)
    if store is not None:
        started = time.perf_counter()
        verify(result, store, folder / f"recipe-{codec}.yaml", folder / "cache", sample)
        log(f"  verified in {time.perf_counter() - started:.1f} s: "
            f"{'OK' if result.verified else 'FAILED'} ({result.verify_note})")
    if not args.keep:
        shutil.rmtree(folder / "runs" / f"{codec}-{runner}", ignore_errors=True)
    log(f"  {result.mb_s:.1f} MB/s, {result.seconds:.1f} s timed, "
        f"{result.process_seconds:.1f} s process, peak RSS "
        f"{result.peak_rss / 2**20:.0f} MiB, noise (other processes + VM steal) "
        f"{result.noise_cores:.2f} cores" + (f"  ERROR {result.error}" if result.error else ""))
    if result.milestones:
        log(f"  milestones (s): {result.milestones}")
    return result


def _median(attempts: list[RunResult]) -> RunResult:
    """The attempt with the median time; failures win, so a flaky runner is not hidden."""
    failed = [r for r in attempts if not r.ok]
    if failed:
        return failed[0]
    ordered = sorted(attempts, key=lambda r: r.seconds)
    chosen = ordered[len(ordered) // 2]
    chosen.peak_rss = max(r.peak_rss for r in attempts)
    chosen.attempts_mb_s = [r.mb_s for r in attempts]
    return chosen


# ---- profile -----------------------------------------------------------------------------------
def profile_run(folder: Path, runner: str, codec: str, stamp: str) -> str:
    """py-spy of one bake (not one of the timed runs: sampling costs a little), every process.

    The raw stacks and the summary stay in the data folder (gitignored); the summary also goes
    into the results JSON.
    """
    work = folder / "runs" / "profile"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    command = [sys.executable, "-m", "bench.child", "arco", "--recipe",
               str(folder / f"recipe-{codec}.yaml"), "--profile",
               str(folder / "profiles" / f"{runner}.yaml"), "--target", str(work / "target"),
               "--cache", str(folder / "cache"), "--out", str(work / "result.json")]
    out = folder / "profiles-out"
    out.mkdir(exist_ok=True)
    raw = out / f"{stamp}-{runner}-{codec}.pyspy.raw"
    try:
        if hotspots.record(command, raw, cwd=ROOT, log=work / "py-spy.log"):
            text = hotspots.format_summary(hotspots.summary(hotspots.parse(raw)))
        else:  # py-spy needs ptrace; pyinstrument works in process
            pyi = out / f"{stamp}-{runner}-{codec}.pyinstrument.txt"
            subprocess.run([*command, "--pyinstrument", str(pyi)], cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            text = pyi.read_text()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (out / f"{stamp}-{runner}-{codec}.txt").write_text(text + "\n")
    log(f"profile: {raw}")
    return text


# ---- the whole benchmark -----------------------------------------------------------------------
def machine() -> dict[str, Any]:
    import importlib.metadata as md

    import psutil

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    versions = {}
    for package in ("apache-beam", "xarray", "zarr", "numcodecs", "dask", "netCDF4", "numpy"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True, check=False).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "recipes_core"],
                                cwd=ROOT, capture_output=True, text=True,
                                check=False).stdout.strip())
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib":
            round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
            "versions": versions, "commit": commit, "recipes_core_modified": dirty}


def check_inputs(workload: Workload, folder: Path) -> None:
    """The archive opens as one dataset with the expected shape and decoded daily times."""
    import numpy as np
    import xarray as xr

    files = workload.files(folder.parent)
    missing = [p for p in files if not p.exists()]
    if missing:
        raise SystemExit(f"{len(missing)} files missing, e.g. {missing[0]}")
    ends = [str(files[0]), str(files[-1])]
    with xr.open_mfdataset(ends, engine="netcdf4", combine="by_coords") as ds:
        want = np.array([workload.first_day, workload.last_day], dtype="datetime64[ns]")
        assert list(ds.data_vars) == workload.variables, list(ds.data_vars)
        assert (ds.time.values == want).all(), ds.time.values
        assert ds.sizes["lat"] == workload.ny and ds.sizes["lon"] == workload.nx
        assert int(ds[workload.variables[0]].isnull().sum()) > 0, "no fill values"
    log(f"inputs OK: {len(files)} files, {workload.first_day} .. {workload.last_day}, "
        f"{sum(p.stat().st_size for p in files) / 1e9:.2f} GB on disk")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workload = choose_workload(args)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = args.results_dir / f"{stamp}-{workload.key}"
    started = time.perf_counter()
    log(f"workload {workload.key}: {workload.nbytes / 1e9:.3f} GB uncompressed")
    folder = generate(workload, args.data_dir, log=log)
    for codec in args.codecs:
        write_recipe(workload, codec, args.data_dir)
    for runner in PROFILES:
        write_profile(runner, folder)
    check_inputs(workload, folder)
    if args.dry_run:
        from recipes_core.inspection import inspect_plan
        from recipes_core.plan import compile_recipe
        from recipes_core.recipe_io import load_recipe
        from recipes_core.storage import AccessPolicy

        recipe = folder / f"recipe-{args.codecs[0]}.yaml"
        loaded, _ = load_recipe(recipe)
        plan = compile_recipe(loaded, recipe)
        info = inspect_plan(plan, str(folder / "cache"), AccessPolicy(allow_local=True))
        log(f"plan {plan.hash[:12]}: {plan.nsources} sources, dims {info['dims']}, chunks "
            f"{info['chunks']}, {info['nchunks']} chunks, {info['nbytes'] / 1e9:.3f} GB")
        log(f"would run: {', '.join(f'{c}/{r}' for c in args.codecs for r in args.runners)}")
        return 0

    log("reading the sources once (page cache)")
    warm_page_cache(workload.files(args.data_dir))
    measured: dict[str, limits.Limits] = {}
    if not args.no_limits:
        log("measuring component speeds")
        measured = limits.measure(workload.files(args.data_dir), workload.variables,
                                  workload.time_chunk, args.codecs, args.cores, folder)
        print_table("component limits (MB/s of uncompressed data unless noted)", LIMITS_HEADERS,
                    limits_rows(measured))

    results = run_all(workload, folder, args)

    profiles: dict[str, str] = {}
    if not args.no_profile:
        for runner in args.profile_runners:
            log(f"profiling a {runner} bake ({args.codecs[0]}) with py-spy")
            profiles[runner] = profile_run(folder, runner, args.codecs[0], stamp)

    plan_costs: dict[str, Any] = {}
    if not args.no_planning:
        log("timing the planning steps")
        plan_costs = {"compile": planning.compile_cost(),
                      "schema": planning.schema_cost(args.data_dir, log=log)}

    title = (f"{workload.days} days x {workload.nvars} vars x {workload.ny}x{workload.nx} "
             f"float32 = {workload.nbytes / 1e9:.2f} GB, {args.cores} cores")
    rows = table_rows(results, measured)
    print_table(f"bake throughput: {title}", HEADERS, rows)
    scalings = {f"{engine}-{codec}": scaling(results, codec, engine)
                for codec in args.codecs for engine in ("dask", "direct", "dasksync")}
    for name, value in scalings.items():
        if value is not None:
            print(f"scaling {name}: 2 workers / 1 worker = x{value:.2f}")
    for runner, text in profiles.items():
        print(f"\nhotspots of a {runner} bake ({args.codecs[0]}):\n{text}")
    if plan_costs:
        print("\nplanning:", json.dumps(plan_costs, indent=1))

    record = {
        "stamp": stamp, "workload": workload.__dict__ | {"key": workload.key,
                                                         "nbytes": workload.nbytes},
        "command": " ".join(sys.argv), "machine": machine(),
        "limits": {k: v.as_dict() for k, v in measured.items()},
        "runs": [r.as_dict() for r in results], "scaling": scalings,
        "planning": plan_costs, "profiles": profiles,
        "table_markdown": markdown_table(HEADERS, rows),
        "limits_markdown": markdown_table(LIMITS_HEADERS, limits_rows(measured)),
        "total_seconds": time.perf_counter() - started,
    }
    write_json(stem.with_suffix(".json"), record)
    if results:  # `--runners ""` only profiles and times the planning
        chart(stem.with_suffix(".png"), results, measured, title)
    log(f"wrote {stem.with_suffix('.json')} and {stem.with_suffix('.png')} "
        f"in {record['total_seconds'] / 60:.1f} min")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
