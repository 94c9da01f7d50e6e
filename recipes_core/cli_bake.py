"""`arco bake` and `arco runners`: run a recipe on a runner profile with live progress.

On engines that run here the bake shows progress bars (sources fetched, chunks written, bytes,
rate, ETA); `--json-log` writes the same as JSON-lines status events for machines. Remote
engines print the job id and the engine's URL, then poll the job's state unless `--detach`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from recipes_core.cli import _default_cache, _human_bytes, _load_plan, _run, app, out
from recipes_core.cli_preflight import run_preflight
from recipes_core.progress import Snapshot


class StatusLog:
    """JSON-lines status events: setup, fetching, writing, finalising, done or failed."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.phase: str | None = None

    def event(self, event: str, **fields: Any) -> None:
        if self.stream is None:
            return
        record = {"event": event, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        record.update(fields)
        self.stream.write(json.dumps(record, default=str) + "\n")
        self.stream.flush()

    def snapshot(self, snap: Snapshot) -> None:
        counts = {
            "sources_staged": snap.get("sources_staged"),
            "sources_total": snap.totals.get("sources"),
            "chunks_written": snap.get("chunks_written"),
            "chunks_total": snap.totals.get("chunks"),
            "bytes_written": snap.get("bytes_written"),
            "rechunk_chunks_written": snap.get("rechunk_chunks_written"),
            "elapsed": round(snap.elapsed, 2),
        }
        if snap.phase != self.phase:
            self.phase = snap.phase
            self.event(snap.phase, **counts)


class ProgressDisplay:
    """Rich progress bars fed by progress snapshots (called from the monitor thread)."""

    def __init__(self, sources: int, log: StatusLog, enabled: bool) -> None:
        self.log = log
        self.progress = Progress(
            TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
            TaskProgressColumn(), TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
            TimeRemainingColumn(), console=out, disable=not enabled, transient=False,
        )
        self.fetch = self.progress.add_task("sources fetched", total=sources, detail="")
        self.write = self.progress.add_task("chunks written", total=None, detail="")

    def __call__(self, snap: Snapshot) -> None:
        self.log.snapshot(snap)
        staged_bytes = snap.get("bytes_staged")
        self.progress.update(self.fetch, completed=snap.get("sources_staged"),
                             detail=_human_bytes(staged_bytes))
        written = snap.bytes_done
        rate = written / 1e6 / snap.elapsed if snap.elapsed else 0.0
        self.progress.update(self.write, completed=snap.chunks_done,
                             total=snap.totals.get("chunks"),
                             detail=f"{_human_bytes(written)} {rate:.1f} MB/s")


def _open_log(path: str | None) -> TextIO | None:
    if path is None:
        return None
    if path == "-":
        return sys.stdout
    return open(path, "a", encoding="utf-8")


@app.command()
def bake(
    recipe: Annotated[Path, typer.Argument(help="The recipe file.")],
    target: Annotated[Path | None, typer.Option(
        "--target", "-t", help="Target root (default: the profile's target_root).")] = None,
    runner: Annotated[str, typer.Option(
        "--runner", "-r", help="A bundled profile name (see `arco runners`) or a profile file."),
    ] = "direct",
    prune: Annotated[int | None, typer.Option(
        help="Bake only the first N keys of each concat dimension (test bakes).")] = None,
    allow_local: Annotated[bool, typer.Option(
        help="Allow local source paths (relative ones resolve against the recipe).")] = False,
    allow_private_hosts: Annotated[bool, typer.Option(
        help="Allow loopback/private hosts (trusted recipes only).")] = False,
    allow_http: Annotated[bool, typer.Option(
        help="Allow plain http sources (servers you trust; default: https only).")] = False,
    cache: Annotated[Path | None, typer.Option(
        help="Staging cache (default: the profile's cache_root, else ~/.cache/arco).")] = None,
    json_log: Annotated[str | None, typer.Option(
        "--json-log", help="Write JSON-lines status events to this file ('-': stdout).")] = None,
    detach: Annotated[bool, typer.Option(
        help="Remote engines: return once the job is submitted.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    full_schema_check: Annotated[bool, typer.Option(
        help="Open every source to plan (default: a sample, when the recipe's dates and "
        "items_per_file say where each source lands; every source is still checked as it "
        "is written).")] = False,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a profile value: section.key=value (repeatable).")] = None,
    preflight: Annotated[bool, typer.Option(
        help="First check that every source exists (HEAD) and list all missing ones.")] = False,
) -> None:
    """Bake a recipe into TARGET/<id>/v<N>/<id>.zarr on a runner profile's engine."""
    from recipes_core.bake import bake as run_bake
    from recipes_core.bake import policy_from
    from recipes_core.runners import load_profile

    stream = _open_log(json_log)
    log = StatusLog(stream)

    def action() -> Any:
        log.event("setup", recipe=str(recipe), runner=runner)
        compiled = _load_plan(recipe)
        if prune:
            compiled = compiled.prune(prune)
        profile = load_profile(runner, set_ or ())
        policy = policy_from(profile)
        policy = dataclasses.replace(
            policy, allow_local=policy.allow_local or allow_local,
            allow_private_hosts=policy.allow_private_hosts or allow_private_hosts,
            allow_http=policy.allow_http or allow_http)
        if preflight:
            run_preflight(compiled, policy)
        out.print(f"baking [bold]{compiled.id}[/]: {compiled.nsources} sources, plan "
                  f"{compiled.hash[:12]}, engine {profile.engine} ({profile.name})")
        display = ProgressDisplay(compiled.nsources, log,
                                  enabled=progress and profile.runs_here and json_log != "-")

        def on_job(result: Any) -> None:
            out.print(f"submitted job {result.job_id or '(no id)'} state {result.state}"
                      + (f"\nfollow it at {result.dashboard}" if result.dashboard else ""))
            log.event("submitted", job_id=result.job_id, state=result.state,
                      dashboard=result.dashboard)

        with display.progress:
            return run_bake(
                compiled, str(target) if target else None,
                cache_dir=str(cache) if cache else (None if profile.cache_root
                                                    else str(_default_cache())),
                policy=policy, profile=profile, on_progress=display, on_job=on_job,
                detach=detach, full_schema_check=full_schema_check)

    try:
        result = _run(action)
        _summary(result, log)
    except typer.Exit:
        log.event("failed")
        raise
    finally:
        if stream is not None and stream is not sys.stdout:
            stream.close()


def _summary(result: Any, log: StatusLog) -> None:
    if result.state not in ("DONE", "PipelineState.DONE"):
        out.print(f"job {result.job_id or ''} is {result.state}")
        log.event("done" if result.state == "DRY_RUN" else "submitted", state=result.state,
                  job_id=result.job_id)
        return
    counters = result.counters
    out.print(
        f"[green]done[/] in {result.seconds:.1f} s: {counters.get('sources_staged', 0)} sources "
        f"staged, {counters.get('chunks_written', 0)} chunks written, "
        f"{_human_bytes(result.bytes_written)} at {result.mb_per_s:.1f} MB/s")
    out.print(f"store: {result.store}")
    out.print(f"open it: xr.open_zarr({result.store!r})")
    log.event("done", seconds=round(result.seconds, 3), bytes_written=result.bytes_written,
              mb_per_s=round(result.mb_per_s, 2), store=result.store, counters=counters)


@app.command()
def runners() -> None:
    """List the bundled runner profiles."""
    from recipes_core.runners import bundled_profiles, load_profile

    def action() -> None:
        table = Table(title="runner profiles (use with --runner NAME)")
        for column in ("name", "engine", "description", "file"):
            table.add_column(column)
        for name, path in bundled_profiles().items():
            profile = load_profile(path)
            table.add_row(name, profile.engine, profile.description, str(path.name))
        out.print(table)

    _run(action)
