"""The bake as Beam pipelines: thin transforms over pure functions (DESIGN §4).

    Expand -> Stage -> Survey -> Prepare -> WriteTasks -> Reshuffle -> Write
           [-> CopyTasks -> Reshuffle -> Copy, once per rechunk hop] -> Finalise

Stage fetches each source into the cache; Survey reads its metadata; Prepare combines the
schemas into the template, creates the store once and plans the write tasks; each task reads
the slices it needs from its sources and writes whole chunks (see :mod:`recipes_core.tasks`).
When the target layout is far from the files', the write tasks fill an intermediate store and
copy hops move whole blocks on to the target, each hop starting once the previous one is done.
No data crosses a shuffle: only small task descriptions do.

Each DoFn holds only plain, picklable state (the plan and a few paths) so the same graph runs in
process, in several processes, on Dask, Flink or Dataflow.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
import fsspec
from apache_beam.metrics import Metrics

from recipes_core.combine import combine_schemas
from recipes_core.errors import TargetError
from recipes_core.opener import open_transformed
from recipes_core.plan.pattern import SourceKey, url_scheme
from recipes_core.plan.plan import Plan
from recipes_core.progress import ProgressSink, write_totals
from recipes_core.schema import SourceSchema, Template, schema_of
from recipes_core.source_hashes import HASHES_DIR, hash_owners, hash_sources, write_task_record
from recipes_core.storage import AccessPolicy, Pins, StagedSource, Stager, files
from recipes_core.storage.stage import PENDING_SHA256
from recipes_core.survey import complete_survey
from recipes_core.target import (
    finalise_target,
    intermediate_store,
    prepare_intermediate,
    prepare_target,
    store_exists,
    template_digest,
    write_shape,
)
from recipes_core.tasks import CopyTask, Staging, WriteTask, plan_staging, plan_write_tasks
from recipes_core.writer import (
    BackgroundWrites,
    UnitWrite,
    UnitWriter,
    behind_the_reader,
    fill_write_task,
    run_copy_task,
    shared_pool,
)

NAMESPACE = "arco"
STAGE_THREADS = max(1, min(4, os.cpu_count() or 1))  # local sources hashed at once, per worker
DEFAULT_TASK_BYTES = 256 * 1024 * 1024
MAX_HOPS = 3  # a staged rechunk has at most two intermediate stores
Surveyed = tuple[SourceKey, StagedSource, SourceSchema]


@dataclass(frozen=True)
class BakeSpec:
    """Everything the workers need, all plain data."""

    plan: Plan
    store: str
    cache_dir: str
    policy: AccessPolicy
    progress_dir: str | None = None  # live counts for engines on this machine
    bake_id: str = ""  # one per run: scopes the per-process memo below
    survey_key: str = ""  # hex key that signs the survey handed to the driver (two graphs)
    pins: Pins | None = None  # inline + sha256_manifest pins, loaded by the driver before fetching
    max_task_bytes: int = DEFAULT_TASK_BYTES  # memory bound of one write task's buffers
    survey_sample: frozenset[SourceKey] | None = None  # sources opened to plan; None: all
    write_threads: int = 1  # background threads per worker that store units; 0: none
    defer_hashes: bool = False  # local sources hashed by their write tasks (source_hashes.py)
    max_hops: int = MAX_HOPS  # 1: no staged rechunk (tasks.staging_possible said it cannot be)
    # Reshuffle the sources and the write tasks, so that a runner with several workers spreads
    # them out; False for one worker in this process, where each Reshuffle only adds Beam
    # transforms and stages (~0.1 s of a bake, see RunnerProfile.spreads_work).
    spread: bool = True

    def pin_for(self, url: str) -> str | None:
        if self.pins is not None:
            return self.pins.lookup(url)
        pins = self.plan.recipe.source.sha256 or {}
        return pins.get(url) or pins.get(os.path.basename(url))


# Beam's Dask runner evaluates side inputs inside tasks by recomputing their upstream graph, so
# Stage and Schema can run several times for one source in one bake. Both are idempotent; this
# per-process memo, scoped to one bake, makes the repeats free (and keeps progress honest).
_MEMO: dict[tuple[str, Any], Any] = {}
_MEMO_OWNER = [""]  # the bake the memo belongs to
_MEMO_LIMIT = 200_000


def _memo_get(spec: BakeSpec, kind: str, key: Any) -> Any:
    if not spec.bake_id or _MEMO_OWNER[0] != spec.bake_id:
        return None
    return _MEMO.get((kind, key))


def _memo_put(spec: BakeSpec, kind: str, key: Any, value: Any) -> None:
    if not spec.bake_id:
        return
    if _MEMO_OWNER[0] != spec.bake_id or len(_MEMO) >= _MEMO_LIMIT:
        _MEMO.clear()  # a new bake in a long-lived worker: forget the old one
        _MEMO_OWNER[0] = spec.bake_id
    _MEMO[(kind, key)] = value


class _DoFn(beam.DoFn):
    """A DoFn whose runtime state (sessions, open arrays) is rebuilt in ``setup``, never pickled.

    Beam's Dask runner may pickle a DoFn again after ``setup`` ran (to evaluate a side input
    in a nested graph), and sessions or thread locals cannot be pickled.
    """

    _runtime: tuple[str, ...] = ()

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._runtime}


class StageFn(_DoFn):
    """Fetch a batch of sources into the cache (or check local ones); pass on each local path.

    Sources come in small batches so that local ones, which only need hashing (hashlib and file
    reads release the GIL), are hashed by a few threads at once: a one-process bake then hashes
    on every core. Remote sources are fetched one after another, within the per-host limit.
    """

    _runtime = ("stager", "pool")

    def __init__(self, spec: BakeSpec) -> None:
        self.spec = spec
        self.staged = Metrics.counter(NAMESPACE, "sources_staged")
        self.staged_bytes = Metrics.counter(NAMESPACE, "bytes_staged")
        self.progress = ProgressSink(spec.progress_dir)

    def setup(self) -> None:
        self.stager = Stager(self.spec.cache_dir, self.spec.policy)
        self.pool = ThreadPoolExecutor(max_workers=STAGE_THREADS, thread_name_prefix="arco-hash")

    def teardown(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def finish_bundle(self) -> None:
        self.progress.flush()

    def _stage(self, url: str) -> StagedSource:
        return self.stager.stage(url, self.spec.pin_for(url),
                                 hash_local=not self.spec.defer_hashes)

    def process(self, batch: list[tuple[SourceKey, str]],
                ) -> Iterator[tuple[SourceKey, StagedSource]]:
        todo = [(key, url) for key, url in batch if _memo_get(self.spec, "staged", url) is None]
        local = [url for _, url in todo if url_scheme(url) in ("", "file")]
        hashed = dict(zip(local, self.pool.map(self._stage, local), strict=True))
        for key, url in batch:
            staged = _memo_get(self.spec, "staged", url)
            if staged is None:
                staged = hashed.get(url) or self._stage(url)
                _memo_put(self.spec, "staged", url, staged)
                self.staged.inc()
                self.staged_bytes.inc(staged.size)
                self.progress.add(sources_staged=1, bytes_staged=staged.size)
            yield key, staged


def stage_batches(sources: list[tuple[SourceKey, str]],
                  ) -> list[list[tuple[SourceKey, str]]]:
    """The sources in batches of a few, in order: the elements that Stage receives."""
    size = 2 * STAGE_THREADS
    return [sources[i:i + size] for i in range(0, len(sources), size)]


def read_schema(element: tuple[SourceKey, StagedSource], spec: BakeSpec) -> SourceSchema:
    key, staged = element
    schema = _memo_get(spec, "schema", (key, staged.sha256))
    if schema is None:
        with open_transformed(spec.plan, key, staged.path, staged.url) as ds:
            schema = schema_of(ds, key, staged.url)
        _memo_put(spec, "schema", (key, staged.sha256), schema)
    return schema


def survey_source(element: tuple[SourceKey, StagedSource], spec: BakeSpec,
                  ) -> tuple[SourceKey, StagedSource, SourceSchema | None]:
    """Open a source to read its schema, if it is in the survey's sample (see survey.py)."""
    key, staged = element
    if spec.survey_sample is not None and key not in spec.survey_sample:
        return key, staged, None
    return key, staged, read_schema(element, spec)


@dataclass(frozen=True, eq=False)
class Prepared:
    """What every write task needs: the template and where each staged source is."""

    template: Template
    staged: dict[SourceKey, StagedSource]
    positions: dict[str, int]
    tasks: tuple[WriteTask, ...] = field(default=())
    staging: Staging | None = None  # a staged rechunk, when the layouts are far apart
    hashed_by: dict[int, tuple[SourceKey, ...]] = field(default_factory=dict)  # task: sources

    def copy_tasks(self, hop: int) -> list[CopyTask]:
        """The copy tasks of rechunk hop ``hop`` (1-based); none without staging."""
        if self.staging is None or hop > self.staging.stores:
            return []
        return self.staging.copy_tasks(hop)


def record_sources(surveyed: list[Surveyed], spec: BakeSpec) -> None:
    """Write ``sources.json`` beside the store: every input with its size and checksum.

    Provenance and the catalogue are built from this record, so they describe exactly the
    bytes this bake read (URLs redacted of credentials and query values).
    """
    records = [dict(s.record(), key=list(k)) for k, s, _ in sorted(surveyed, key=lambda e: e[0])]
    files.write_json(files.join(os.path.dirname(spec.store), "sources.json"), records, indent=1)


SOURCES_CHANGED = "sources-changed.json"  # a published version's sources changed upstream


def published(version_dir: str) -> bool:
    """Whether this version folder was completed before (its record is one to keep)."""
    state = files.read_json(files.join(version_dir, "bake.json")) or {}
    return (state.get("previous_status") == "complete"
            or files.exists(files.join(version_dir, "collection.json")))


def refuse_changed_sources(surveyed: list[Surveyed], spec: BakeSpec) -> None:
    """Stop before a published version is overwritten from sources that changed upstream.

    The plan hash names the recipe, not the bytes, so a provider re-publishing a file keeps the
    version folder. Once a version was published its chunks, ``sources.json`` and provenance
    are a record to keep: this writes ``sources-changed.json`` (what changed) beside it and
    raises, and :func:`recipes_core.bake.bake` then bakes a new version instead.
    """
    version_dir = os.path.dirname(spec.store)
    recorded = files.read_json(files.join(version_dir, "sources.json"))
    if not isinstance(recorded, list):
        return
    if not published(version_dir):
        return  # an unfinished bake has nothing worth keeping
    old = {tuple(r["key"]): r for r in recorded if isinstance(r, dict) and "key" in r}
    changed = [
        {"url": staged.record()["url"], "key": list(key), "old_sha256": old[key].get("sha256"),
         "new_sha256": staged.sha256}
        for key, staged, _ in sorted(surveyed, key=lambda e: e[0])
        if key in old and old[key].get("sha256") != staged.sha256
    ]
    if not changed:
        return
    files.write_json(files.join(version_dir, SOURCES_CHANGED),
                     {"version_dir": version_dir, "changed": changed}, indent=1)
    raise TargetError(
        f"{len(changed)} source file(s) changed upstream since this version was published "
        f"(first: {changed[0]['url']}, sha256 {changed[0]['old_sha256']} -> "
        f"{changed[0]['new_sha256']})",
        where=version_dir,
        fix="nothing to do: the bake keeps this version as it is and bakes the next one.",
    )


def prepare(surveyed: list[Surveyed], spec: BakeSpec) -> Prepared:
    """Combine the schemas, create the store once, and plan the write tasks.

    A re-run of the same plan over the same sources finds the same template digest and keeps
    the store (every chunk is then rewritten with identical bytes); anything else starts over.
    A published version whose sources changed upstream is never overwritten (see
    :func:`refuse_changed_sources`).
    """
    refuse_changed_sources(surveyed, spec)
    record_sources(surveyed, spec)
    files.remove_tree(files.join(os.path.dirname(spec.store), HASHES_DIR))  # an older run's
    plan = spec.plan
    found = {key: schema for key, _, schema in surveyed}
    staged_by_key = {key: source for key, source, _ in surveyed}
    schemas, unopened = complete_survey(plan, found, {k: s.url for k, s in staged_by_key.items()})
    # The sample showed the recipe's keys do not predict the coordinates: open the rest here.
    schemas += [read_schema((key, staged_by_key[key]), spec) for key in unopened]
    template = combine_schemas(plan, schemas)
    target = plan.recipe.target
    digest = template_digest(template, target)
    marker = files.join(os.path.dirname(spec.store), "template.json")
    recorded = files.read_json(marker) or {}
    if not (recorded.get("digest") == digest and store_exists(spec.store)):
        prepare_target(spec.store, template, target)
    positions = {d.name: i for i, d in enumerate(plan.pattern.dims)}
    units = {name: write_shape(template, var, target) for name, var in template.variables.items()}
    staging = plan_staging(template, units, spec.max_task_bytes, spec.max_hops)
    chunks = _count_units(template, units)
    if staging is None:
        tasks = plan_write_tasks(template, units, list(staged_by_key), positions,
                                 spec.max_task_bytes)
    else:
        stacked = {n: template.variables[n] for n in staging.variables}
        for number in range(1, staging.stores + 1):
            layout = staging.chunks(number)
            prepare_intermediate(intermediate_store(spec.store, number), spec.store, stacked,
                                 layout)
            shapes = {n: tuple(layout[d] for d in v.dims) for n, v in stacked.items()}
            chunks += _count_units(template, shapes)
        first = staging.chunks(1)
        units0 = dict(units, **{n: tuple(first[d] for d in v.dims) for n, v in stacked.items()})
        tasks = plan_write_tasks(template, units0, list(staged_by_key), positions,
                                 spec.max_task_bytes, stacked_store=1)
    files.write_json(marker, {"digest": digest, "rechunk_stages": [
        staging.chunks(n) for n in range(1, staging.stores + 1)] if staging else []})
    # Staged bakes write the stacked data once per hop; progress counts every write.
    hops = 1 + (staging.stores if staging else 0)
    stacked_bytes = sum(template.variables[n].nbytes for n in staging.variables) if staging else 0
    write_totals(spec.progress_dir, chunks=chunks,
                 bytes=template.nbytes + (hops - 1) * stacked_bytes)
    pending = [key for key, source in staged_by_key.items() if source.sha256 == PENDING_SHA256]
    return Prepared(template, staged_by_key, positions, tuple(tasks), staging,
                    hash_owners(tasks, pending) if pending else {})


def _count_units(template: Template, units: dict[str, tuple[int, ...]]) -> int:
    from recipes_core.plan.chunks import ChunkGrid

    return sum(ChunkGrid(template.variables[name].shape, shape).nchunks
               if template.variables[name].shape else 1 for name, shape in units.items())


def survey_path(spec: BakeSpec) -> str:
    return files.join(os.path.dirname(spec.store), "survey.pickle")


def save_survey(surveyed: list[Surveyed], spec: BakeSpec) -> int:
    """Hand the survey to the driver, signed with this bake's key (the driver never
    unpickles anything it did not ask for)."""
    payload = pickle.dumps(sorted(surveyed, key=lambda e: e[0]), protocol=5)
    signature = hmac.new(bytes.fromhex(spec.survey_key), payload, hashlib.sha256).digest()
    with fsspec.open(survey_path(spec), "wb") as f:
        f.write(signature + payload)
    return len(surveyed)


def load_survey(spec: BakeSpec) -> list[Surveyed]:
    with fsspec.open(survey_path(spec), "rb") as f:
        blob = f.read()
    signature, payload = blob[:32], blob[32:]
    expected = hmac.new(bytes.fromhex(spec.survey_key), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise TargetError("the survey of the sources was not written by this bake",
                          where=survey_path(spec), fix="re-run the bake.")
    return pickle.loads(payload)


class _StoreFn(_DoFn):
    """Writes into the target and, in a staged rechunk, its intermediate stores."""

    _runtime = ("writers", "stager", "pool")

    def __init__(self, spec: BakeSpec, prepared: Prepared | None = None) -> None:
        self.spec = spec
        self.prepared = prepared  # given here in the two-graph form, else a side input
        self.chunks = Metrics.counter(NAMESPACE, "chunks_written")
        self.bytes = Metrics.counter(NAMESPACE, "bytes_written")
        self.rechunk_chunks = Metrics.counter(NAMESPACE, "rechunk_chunks_written")
        self.rechunk_bytes = Metrics.counter(NAMESPACE, "rechunk_bytes_written")
        self.progress = ProgressSink(spec.progress_dir)

    def setup(self) -> None:
        self.writers: dict[int, UnitWriter] = {}
        self.stager = Stager(self.spec.cache_dir, self.spec.policy)
        # Idle unit buffers kept for the next units (writer.BufferPool), one pool per
        # process: a quarter of the task bound, about what waits for the writers.
        self.pool = shared_pool(self.spec.max_task_bytes // 4)

    def writer(self, store: int) -> UnitWriter:
        """The writer of the target (0) or of intermediate store ``store``."""
        if store not in self.writers:
            path = self.spec.store if store == 0 else intermediate_store(self.spec.store, store)
            self.writers[store] = UnitWriter(path, self.pool)
        return self.writers[store]

    def count(self, store: int, units: int, nbytes: int) -> int:
        """Count a write; returns the bytes that reached the target."""
        if store == 0:
            self.chunks.inc(units)
            self.bytes.inc(nbytes)
            self.progress.add(chunks_written=units, bytes_written=nbytes)
            return nbytes
        self.rechunk_chunks.inc(units)
        self.rechunk_bytes.inc(nbytes)
        self.progress.add(rechunk_chunks_written=units, rechunk_bytes_written=nbytes)
        return 0

    def finish_bundle(self) -> None:
        self.progress.flush()


class WriteFn(_StoreFn):
    """Run write tasks: read the slices each needs, write its chunks whole.

    The units a task fills are encoded and stored on background threads while the next task
    reads its sources (see :class:`~recipes_core.writer.BackgroundWrites`); the bundle ends
    only once every one of them is written, so a task's output never runs ahead of its data.
    """

    _runtime = ("writers", "stager", "pool", "background", "hasher")

    def setup(self) -> None:
        super().setup()
        # Hashes the task's local sources while they are read (hashlib and file reads
        # release the GIL), see recipes_core/source_hashes.py.
        self.hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="arco-hash",
                                         initializer=behind_the_reader)
        # Units waiting for the background writers: an eighth of the task bound per writer
        # thread (one 31 MB unit of the benchmark each), on top of the task being read (with
        # write_threads 0 the task's own thread writes them). Measured with one writer: a
        # quarter kept 20-30 MiB more resident for no speed; with fewer than one unit per
        # writer, zstd's second writer idles.
        self.background = (BackgroundWrites(self.spec.write_threads,
                                            self.spec.max_task_bytes // 8
                                            * self.spec.write_threads)
                           if self.spec.write_threads > 0 else None)

    def teardown(self) -> None:
        if getattr(self, "background", None) is not None:
            self.background.close()
        if getattr(self, "hasher", None) is not None:
            self.hasher.shutdown(wait=True, cancel_futures=True)

    def start_bundle(self) -> None:
        if self.background is not None and self.background.busy:
            self.background.close()  # left over from a bundle that failed: start afresh
            self.setup()

    def local_path(self, key: SourceKey, staged: StagedSource) -> str:
        """The staged file on this worker. On engines whose workers do not share the cache
        (Dataflow, a Flink cluster), fetch it again here, pinned to the sha256 the survey
        recorded, so every task reads exactly the surveyed bytes."""
        if os.path.exists(staged.path):
            return staged.path
        return self.stager.stage(self.spec.plan.pattern.url(key), staged.sha256 or None).path

    def _count_written(self, done: Iterator[tuple[int, int]]) -> None:
        for store, nbytes in done:
            self.count(store, 1, nbytes)

    def _write(self, write: UnitWrite, store: int) -> None:
        if self.background is None:
            self.count(store, 1, write())
        else:
            self._count_written(self.background.submit(write, store))

    def process(self, task: WriteTask, prepared: Prepared | None = None) -> Iterator[int]:
        prepared = prepared or self.prepared
        assert prepared is not None
        owned = prepared.hashed_by.get(task.index, ())
        hashes = None
        if owned:
            sources = {key: (self.local_path(key, prepared.staged[key]), prepared.staged[key])
                       for key in owned}
            hashes = self.hasher.submit(hash_sources, sources)
        nbytes = 0
        for write in fill_write_task(task, self.spec.plan, prepared.template, prepared.staged,
                                     self.writer(task.store), prepared.positions,
                                     self.local_path):
            nbytes += write.nbytes
            self._write(write, task.store)
        if self.background is not None:
            self._count_written(self.background.finished())
        if hashes is not None:
            write_task_record(os.path.dirname(self.spec.store), task.index, hashes.result())
        yield nbytes if task.store == 0 else 0

    def finish_bundle(self) -> None:
        if self.background is not None:
            self._count_written(self.background.finished(wait=True))
        super().finish_bundle()


class CopyFn(_StoreFn):
    """Run the copy tasks of one rechunk hop: whole blocks from one store into the next."""

    def process(self, task: CopyTask, prepared: Prepared | None = None) -> Iterator[int]:
        prepared = prepared or self.prepared
        assert prepared is not None and prepared.staging is not None
        destination = prepared.staging.destination(task.hop)
        units, nbytes = run_copy_task(task, prepared.template, self.writer(task.hop),
                                      self.writer(destination))
        yield self.count(destination, units, nbytes)


def finalise(total_bytes: int, store: str) -> int:
    """Consolidate the store's metadata, after every chunk exists."""
    finalise_target(store)
    return total_bytes


def _task_list(prepared: Prepared) -> tuple[WriteTask, ...]:
    return prepared.tasks


def _copy_list(_done: int, hop: int, prepared: Prepared) -> list[CopyTask]:
    # The input is the previous hop's byte count: one element, which exists only once that
    # hop has finished, so this hop cannot start early.
    return prepared.copy_tasks(hop)


def _surveyed(pbegin: beam.pvalue.PBegin, spec: BakeSpec) -> beam.PCollection:
    return (
        pbegin
        | "Expand" >> beam.Create(stage_batches(spec.plan.sources()), reshuffle=spec.spread)
        | "Stage" >> beam.ParDo(StageFn(spec))
        | "Survey" >> beam.Map(survey_source, spec)
        | "CollectSurvey" >> beam.combiners.ToList()
    )


class _Transform(beam.PTransform):
    def __init__(self, spec: BakeSpec) -> None:
        super().__init__()
        self.spec = spec


class Bake(_Transform):
    """The whole bake in one graph, from an empty pipeline to a finalised store.

    Prepare runs as a task and reaches the writers as a side input. Engines that materialise
    side inputs (direct, portable/Flink, Dataflow) run this graph; see :class:`SurveyOnly`
    and :class:`WriteTasks` for those that do not. Yields the bytes written.
    """

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[int]:
        spec = self.spec
        prepared = _surveyed(pbegin, spec) | "Prepare" >> beam.Map(prepare, spec)
        side = beam.pvalue.AsSingleton(prepared)
        tasks = prepared | "WriteTasks" >> beam.FlatMap(_task_list)
        if spec.spread:
            tasks = tasks | "Spread" >> beam.Reshuffle()
        written = (
            tasks
            | "Write" >> beam.ParDo(WriteFn(spec), side)
            | "SumBytes" >> beam.CombineGlobally(sum)
        )
        # One slot per possible rechunk hop; a slot with no tasks passes its input on at once.
        for hop in range(1, spec.max_hops):
            copied = (
                written
                | f"CopyTasks{hop}" >> beam.FlatMap(_copy_list, hop, side)
                | f"SpreadCopies{hop}" >> beam.Reshuffle()
                | f"Copy{hop}" >> beam.ParDo(CopyFn(spec), side)
            )
            written = ((written, copied) | f"Join{hop}" >> beam.Flatten()
                       | f"SumCopied{hop}" >> beam.CombineGlobally(sum))
        return written | "Finalise" >> beam.Map(finalise, spec.store)


class SurveyOnly(_Transform):
    """First of two graphs: stage and survey every source; the driver then prepares.

    Beam's Dask runner evaluates a side input inside each task by recomputing its whole
    upstream graph, so on Dask a bake runs as two graphs with no side input of ours (only
    CombineGlobally's own, for its default, which is computed once). One linear chain,
    because the Dask runner computes only a graph's last output.
    """

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[int]:
        return _surveyed(pbegin, self.spec) | "SaveSurvey" >> beam.Map(save_survey, self.spec)


class WriteTasks(_Transform):
    """Second graph: run the write tasks the driver planned, with the template built in."""

    def __init__(self, spec: BakeSpec, prepared: Prepared) -> None:
        super().__init__(spec)
        self.prepared = prepared

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[int]:
        # The tasks travel inside the DoFn's template, so strip them from what is pickled.
        prepared = Prepared(self.prepared.template, self.prepared.staged,
                            self.prepared.positions, staging=self.prepared.staging,
                            hashed_by=self.prepared.hashed_by)
        return (
            pbegin
            | "WriteTasks" >> beam.Create(list(self.prepared.tasks), reshuffle=True)
            | "Write" >> beam.ParDo(WriteFn(self.spec, prepared))
            | "SumBytes" >> beam.CombineGlobally(sum)
        )


class CopyTasks(_Transform):
    """A further graph of the two-graph form: one rechunk hop, after the previous one."""

    def __init__(self, spec: BakeSpec, prepared: Prepared, hop: int) -> None:
        super().__init__(spec)
        self.prepared = prepared
        self.hop = hop

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[int]:
        prepared = Prepared(self.prepared.template, {}, self.prepared.positions,
                            staging=self.prepared.staging)
        return (
            pbegin
            | "CopyTasks" >> beam.Create(self.prepared.copy_tasks(self.hop), reshuffle=True)
            | "Copy" >> beam.ParDo(CopyFn(self.spec, prepared))
            | "SumBytes" >> beam.CombineGlobally(sum)
        )
