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
from rich.markup import escape
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

from recipes_core.cli import (
    _BEAM_SUFFIX,
    _default_cache,
    _human_bytes,
    _load_plan,
    _run,
    app,
    err,
    out,
)
from recipes_core.cli_preflight import run_preflight
from recipes_core.progress import Snapshot
from recipes_core.redact import redact_text


class StatusLog:
    """JSON-lines status events: setup, fetching, writing, finalising, done or failed."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.phase: str | None = None
        # The latest counts, for the `failed` event.
        self.counts: dict[str, Any] = {"sources_staged": 0, "chunks_written": 0,
                                       "bytes_written": 0}

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
        self.counts = counts
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
    # With the JSON log on stdout, stdout carries JSON lines only: people read stderr.
    say = err if json_log == "-" else out
    failure: dict[str, str] = {}

    def action() -> Any:
        log.event("setup", recipe=str(recipe), runner=runner)
        compiled = _load_plan(recipe)
        if prune is not None:  # --prune 0 is refused by Plan.prune, not taken as "no prune"
            compiled = compiled.prune(prune)
        profile = load_profile(runner, set_ or ())
        policy = policy_from(profile)
        policy = dataclasses.replace(
            policy, allow_local=policy.allow_local or allow_local,
            allow_private_hosts=policy.allow_private_hosts or allow_private_hosts,
            allow_http=policy.allow_http or allow_http)
        if preflight:
            run_preflight(compiled, policy)
        say.print(f"baking [bold]{escape(compiled.id)}[/]: {compiled.nsources} sources, plan "
                  f"{compiled.hash[:12]}, engine {profile.engine} ({profile.name})")
        display = ProgressDisplay(compiled.nsources, log,
                                  enabled=progress and profile.runs_here and json_log != "-")

        def on_job(result: Any) -> None:
            say.print(escape(f"submitted job {result.job_id or '(no id)'} to "
                             f"{result.dashboard or profile.engine}"), soft_wrap=True)
            log.event("submitted", job_id=result.job_id, state=result.state,
                      dashboard=result.dashboard)

        def on_state(state: str, counters: dict[str, int]) -> None:
            counts = {"sources_staged": counters.get("sources_staged"),
                      "chunks_written": counters.get("chunks_written"),
                      "bytes_written": counters.get("bytes_written")} if counters else {}
            log.counts = counts or log.counts
            detail = (f": {counters.get('sources_staged', 0)}/{compiled.nsources} sources "
                      f"staged, {counters.get('chunks_written', 0)} chunks written, "
                      f"{_human_bytes(counters.get('bytes_written', 0))}") if counters else ""
            say.print(escape(f"job {state}{detail}"))
            log.event("state", state=state, **counts)

        with display.progress:
            return run_bake(
                compiled, str(target) if target else None,
                cache_dir=str(cache) if cache else (None if profile.cache_root
                                                    else str(_default_cache())),
                policy=policy, profile=profile, on_progress=display, on_job=on_job,
                on_state=on_state, detach=detach, full_schema_check=full_schema_check)

    def recorded() -> Any:
        from recipes_core.runners.engines import frozen_heap  # not at the top: `arco --help`

        try:
            with frozen_heap():  # from the recipe's loading on: see frozen_heap
                return action()
        except Exception as error:
            failure["error"] = redact_text(_BEAM_SUFFIX.sub("", str(error)))
            raise

    try:
        result = _run(recorded)
        _summary(result, log, say)
    except (typer.Exit, Exception):
        log.event("failed", error=failure.get("error"), **log.counts)
        raise
    finally:
        if stream is not None and stream is not sys.stdout:
            stream.close()


def _summary(result: Any, log: StatusLog, say: Any) -> None:
    """One summary: time, bytes, MB/s, and where the store, catalogue and page are."""
    if result.state == "DRY_RUN":
        say.print(f"dry run: the {result.engine} job was built, not submitted; nothing was "
                  "written")
        log.event("done", state=result.state)
        return
    if result.state not in ("DONE", "PipelineState.DONE"):  # --detach
        say.print(escape(f"job {result.job_id or '(no id)'} is {result.state}; once it is "
                         f"done, run `arco publish` with the same recipe and --target"),
                  soft_wrap=True)
        log.event("submitted", state=result.state, job_id=result.job_id,
                  dashboard=result.dashboard)
        return
    counters = result.counters
    say.print(
        f"[green]done[/] in {result.seconds:.1f} s: {counters.get('sources_staged', 0)} sources "
        f"staged, {counters.get('chunks_written', 0)} chunks written, "
        f"{_human_bytes(result.bytes_written)} at {result.mb_per_s:.1f} MB/s")
    say.print(escape(f"store: {result.store}"), soft_wrap=True)
    if result.catalog:
        say.print(escape(f"catalogue: {result.catalog}"), soft_wrap=True)
        say.print(escape(f"page: {result.page}"), soft_wrap=True)
    say.print(escape(f"open it: xr.open_zarr({result.store!r})"), soft_wrap=True)
    log.event("done", seconds=round(result.seconds, 3), bytes_written=result.bytes_written,
              mb_per_s=round(result.mb_per_s, 2), store=result.store, catalog=result.catalog,
              page=result.page, counters=counters)


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
