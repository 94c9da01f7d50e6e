"""Run a bake: pick the version folder, build the pipeline, run it on the profile's engine.

Layout of a target root (DESIGN §5)::

    <root>/<id>/v<N>/<id>.zarr      the store
    <root>/<id>/v<N>/bake.json      plan hash, status, timings and counts of the bake
    <root>/<id>/v<N>/sources.json   every source read, with its size and sha256

A re-run of the same plan reuses its version (chunks are rewritten with identical bytes); a
changed plan gets the next version, so earlier bakes stay readable. So does a published
version whose sources changed upstream: the same plan is then baked into the next version,
whose state (``revises``) and provenance name the version it revises.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from recipes_core.errors import RunnerError, TargetError
from recipes_core.plan.plan import Plan
from recipes_core.progress import ProgressMonitor, Snapshot
from recipes_core.runners.jobs import StateCallback, follow_job, live_counters, state_name
from recipes_core.runners.profile import RunnerProfile
from recipes_core.storage import AccessPolicy, Pins, safe_join
from recipes_core.storage import files as fs
from recipes_core.storage.admission import admit_sources
from recipes_core.survey import sample_keys

VERSION_DIR = re.compile(r"^v(\d+)$")
DEFAULT_PROFILE = RunnerProfile(name="direct", engine="direct")


@dataclass
class BakeResult:
    store: str
    version: int
    plan_hash: str
    seconds: float
    bytes_written: int
    sources: int
    counters: dict[str, int] = field(default_factory=dict)
    engine: str = "direct"
    job_id: str | None = None
    state: str = "DONE"
    dashboard: str | None = None
    pipeline_result: Any = None  # the engine's result (e.g. the Dataflow job of a dry run)
    catalog: str | None = None  # <root>/catalog.json and <root>/index.html, once published
    page: str | None = None

    @property
    def mb_per_s(self) -> float:
        return self.bytes_written / 1e6 / self.seconds if self.seconds else 0.0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_state(version_dir: str) -> dict[str, Any] | None:
    state = fs.read_json(fs.join(version_dir, "bake.json"))
    return state if isinstance(state, dict) else None


def write_state(version_dir: str, state: dict[str, Any]) -> None:
    fs.write_json(fs.join(version_dir, "bake.json"), state)


def versions(dataset_dir: str) -> list[int]:
    """The numbers of the dataset's version folders (``v<N>``), newest first."""
    return sorted((int(m.group(1)) for name in fs.list_names(dataset_dir)
                   if (m := VERSION_DIR.match(name))), reverse=True)


def choose_version(dataset_dir: str, plan_hash: str) -> tuple[int, bool]:
    """The version to bake into, and whether it already holds a bake of this plan."""
    numbers = versions(dataset_dir)
    for n in numbers:
        state = read_state(fs.join(dataset_dir, f"v{n}"))
        if state and state.get("plan_hash") == plan_hash:
            return n, True
    return next_version(dataset_dir, numbers), False


def store_path(target_root: str, plan: Plan, version: int) -> str:
    return safe_join(target_root, plan.id, f"v{version}", f"{plan.id}.zarr")


def policy_from(profile: RunnerProfile) -> AccessPolicy:
    fields = profile.access.model_dump()
    fields["allowed_hosts"] = tuple(fields["allowed_hosts"])
    return AccessPolicy(**fields)


def bake(
    plan: Plan,
    target_root: str | None = None,
    *,
    cache_dir: str | None = None,
    policy: AccessPolicy | None = None,
    profile: RunnerProfile | None = None,
    pipeline_args: list[str] | None = None,
    on_progress: Callable[[Snapshot], None] | None = None,
    on_job: Callable[[BakeResult], None] | None = None,
    detach: bool = False,
    full_schema_check: bool = False,
    on_state: StateCallback | None = None,
    poll_interval: float = 1.0,
) -> BakeResult:
    """Bake a plan on the profile's engine (the embedded direct runner by default).

    ``target_root``, ``cache_dir`` and ``policy`` override the profile's. ``on_progress`` gets
    live counts on engines that run here; ``on_job`` hears of a remote job as soon as it is
    submitted, and ``on_state(state, counters)`` of each change of its state while the bake
    polls it every ``poll_interval`` seconds; ``detach`` returns without waiting for a remote
    job (``arco publish`` completes the bake once it is done); ``full_schema_check`` opens
    every source to plan instead of a sample (see :mod:`recipes_core.survey`).
    """
    from recipes_core.runners.engines import engine_session

    profile = profile or DEFAULT_PROFILE
    policy = policy or policy_from(profile)
    root = target_root or profile.target_root
    if not root:
        raise RunnerError("no target: the profile names no target_root",
                          fix="pass --target DIR, or set target_root in the runner profile.")
    root = fs.absolute(root)
    if not fs.is_remote(root) and os.path.exists(root) and not os.path.isdir(root):
        raise TargetError("the target is not a directory", where=root,
                          fix="pass a directory to --target.")
    cache = fs.absolute(cache_dir or profile.cache_root or fs.join(root, ".cache"))
    # Refuse disallowed sources (resolving their hosts) and load the pinned checksums before
    # anything is written or fetched (DESIGN §6, promise 6).
    pins = admit_sources(plan, policy, cache)
    dry_run = bool(profile.engine == "dataflow" and profile.settings.dry_run)  # type: ignore[attr-defined]
    if detach and profile.engine == "flink" and \
            profile.settings.environment_type == "LOOPBACK":  # type: ignore[attr-defined]
        raise RunnerError(
            "--detach cannot leave a LOOPBACK job running: its SDK workers live in this "
            "process, which exits when the command returns", where=profile.name,
            fix="use environment_type EXTERNAL (a worker pool) or PROCESS, or bake without "
            "--detach.")

    with engine_session(profile, plan) as session:
        if pipeline_args:
            session.args = list(pipeline_args)
        dataset_dir = safe_join(root, plan.id)
        plan_hash = plan.hash
        # A dry run builds the job and touches nothing, not even the target's bookkeeping.
        version, existing = (1, False) if dry_run else choose_version(dataset_dir, plan_hash)
        revises: int | None = None
        for _attempt in range(2):
            version_dir = safe_join(dataset_dir, f"v{version}")
            previous = read_state(version_dir) if existing else None
            state = _initial_state(plan, profile, version, previous, revises)
            store = store_path(root, plan, version)
            if not dry_run:
                write_state(version_dir, state)
            progress_dir = None if session.remote else tempfile.mkdtemp(prefix="arco-progress-")
            try:
                return _run(plan, profile, session, store, version, version_dir, cache, policy,
                            progress_dir, state, existing, dry_run, on_progress, on_job, detach,
                            pins=pins, full_schema_check=full_schema_check,
                            on_state=on_state, poll_interval=poll_interval)
            except Exception:
                if dry_run or previous is None or not _restore_if_sources_changed(
                        version_dir, previous):
                    raise
            # The sources of published version N changed upstream: N stays as it was, and the
            # same plan is baked into a new version that records it revises N.
            revises, existing = version, False
            version = next_version(dataset_dir)
        raise AssertionError("unreachable: a rerun never asks for another")  # pragma: no cover


def _initial_state(plan: Plan, profile: RunnerProfile, version: int,
                   previous: dict[str, Any] | None, revises: int | None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "id": plan.id, "version": version, "plan_hash": plan.hash, "status": "running",
        "started": _now(), "store": f"{plan.id}.zarr",
        "pruned": plan.pruned, "engine": profile.engine, "profile": profile.name,
    }
    if previous is not None:
        # Kept so prepare() can tell a published version (never overwritten from changed
        # sources) from an unfinished one, although this file now says "running".
        state["previous_status"] = previous.get("status")
    if revises is not None:
        state["revises"] = revises
    return state


def _restore_if_sources_changed(version_dir: str, previous: dict[str, Any]) -> bool:
    """After a failed re-bake: if it stopped because its sources changed upstream, put the
    published version's ``bake.json`` back as it was and say so."""
    from recipes_core.pipeline import SOURCES_CHANGED

    marker = fs.join(version_dir, SOURCES_CHANGED)
    if not fs.exists(marker):
        return False
    write_state(version_dir, previous)
    fs.remove_tree(marker)
    return True


def next_version(dataset_dir: str, numbers: list[int] | None = None) -> int:
    """The number after the dataset's newest version folder (1 for a new dataset)."""
    return max(versions(dataset_dir) if numbers is None else numbers, default=0) + 1


def _run(plan: Plan, profile: RunnerProfile, session: Any, store: str, version: int,
         version_dir: str, cache: str, policy: AccessPolicy, progress_dir: str | None,
         state: dict[str, Any], existing: bool, dry_run: bool,
         on_progress: Callable[[Snapshot], None] | None,
         on_job: Callable[[BakeResult], None] | None, detach: bool,
         pins: Pins | None = None, full_schema_check: bool = False,
         on_state: StateCallback | None = None, poll_interval: float = 1.0) -> BakeResult:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from recipes_core.pipeline import (
        MAX_HOPS,
        Bake,
        BakeSpec,
        CopyTasks,
        SurveyOnly,
        WriteTasks,
        load_survey,
        prepare,
        published,
    )
    from recipes_core.source_hashes import complete_sources
    from recipes_core.target import finalise_target
    from recipes_core.tasks import staging_possible
    from recipes_core.writer import auto_write_threads

    spec = BakeSpec(plan=plan, store=store, cache_dir=cache, policy=policy,
                    progress_dir=progress_dir, bake_id=uuid.uuid4().hex, pins=pins,
                    survey_key=secrets.token_hex(32),
                    survey_sample=None if full_schema_check else sample_keys(plan),
                    max_task_bytes=int(profile.max_task_memory),
                    write_threads=(auto_write_threads(plan.recipe.target.codec,
                                                      workers=profile.local_workers)
                                   if profile.write_threads is None else profile.write_threads),
                    # A published version's sources are compared with its record before
                    # anything is written: hash them up front then (source_hashes.py).
                    defer_hashes=not (existing and published(version_dir)),
                    max_hops=MAX_HOPS if staging_possible(plan) else 1,
                    spread=profile.spreads_work)
    result = BakeResult(store=store, version=version, plan_hash=plan.hash, seconds=0.0,
                        bytes_written=0, sources=plan.nsources, engine=profile.engine,
                        dashboard=session.dashboard)
    started = time.monotonic()
    snapshot: Snapshot | None = None
    try:
        def new_pipeline() -> beam.Pipeline:
            try:
                return beam.Pipeline(options=PipelineOptions(session.args))
            except ValueError as err:  # Beam's own check of the options
                raise RunnerError(f"the engine refused the options: {err}",
                                  where=profile.name, fix="check the runner profile.") from None

        def run_graph(transform: beam.PTransform) -> Any:
            pipeline = new_pipeline()
            _ = pipeline | "Bake" >> transform
            outcome = pipeline.run()
            try:
                outcome.wait_until_finish()
            finally:
                session.finished(outcome)
            return outcome

        if progress_dir is not None:
            with ProgressMonitor(progress_dir, on_progress or (lambda s: None),
                                 plan.nsources) as monitor:
                if session.two_phase:
                    run_graph(SurveyOnly(spec))
                    prepared = prepare(load_survey(spec), spec)
                    outcome = run_graph(WriteTasks(spec, prepared))
                    for hop in range(1, 1 + (prepared.staging.stores if prepared.staging
                                             else 0)):
                        outcome = run_graph(CopyTasks(spec, prepared, hop))
                    finalise_target(store)
                else:
                    outcome = run_graph(Bake(spec))
                snapshot = monitor.final()
        else:
            pipeline = new_pipeline()
            _ = pipeline | "Bake" >> Bake(spec)
            outcome = pipeline.run()
            result.pipeline_result = outcome
            if dry_run:  # the job was built, not submitted: there is no job to report
                result.state = "DRY_RUN"
                return result
            result.job_id = _job_id(outcome)
            result.state = state_name(getattr(outcome, "state", "UNKNOWN"))
            # `arco publish` completes a detached bake; it needs what the provenance records.
            state["job"] = {"id": result.job_id, "engine_url": session.dashboard,
                            "pipeline_args": list(session.args)}
            write_state(version_dir, state)
            if on_job:
                on_job(result)
            if detach:
                return result
            result.state = follow_job(outcome, result.job_id, on_state, interval=poll_interval)
        complete_sources(version_dir)
    except BaseException as error:
        if not dry_run:
            state.update(status="failed", ended=_now(), error=str(error)[:2000])
            write_state(version_dir, state)
        raise
    finally:
        if progress_dir is not None:
            shutil.rmtree(progress_dir, ignore_errors=True)
    result.seconds = time.monotonic() - started
    counters = dict(snapshot.counts) if snapshot else live_counters(outcome)
    result.counters = counters
    result.bytes_written = counters.get("bytes_written", 0)
    state.update(status="complete", ended=_now(), seconds=round(result.seconds, 3),
                 counters=counters, reused_version=existing)
    write_state(version_dir, state)
    # Last step: the catalogue only ever points at complete data (DESIGN §4 step 7, promise 4).
    from recipes_core.stac import publish
    from recipes_core.writer import release_free_memory

    release_free_memory()  # the chunk buffers of an in-process engine, before the catalogue

    published = publish(plan, os.path.dirname(os.path.dirname(version_dir)), version,
                        version_dir, store, state, pipeline_args=session.args,
                        storage_options=profile.catalog_storage_options)
    if published is not None:
        result.catalog, result.page = str(published.catalog), str(published.page)
    return result


def _job_id(outcome: Any) -> str | None:
    for attribute in ("job_id", "_job_id"):
        value = getattr(outcome, attribute, None)
        if callable(value):
            try:
                value = value()
            except Exception:
                value = None
        if value:
            return str(value)
    return None
