"""The bake as a Beam pipeline: thin transforms over the pure functions (DESIGN §4).

    Expand -> Stage -> Schema -> CombineSchema -> Prepare
                   \\-> Split (after Prepare) -> GroupByChunk -> Write -> Finalise

Each DoFn holds only plain, picklable state (the plan and a few paths) so the same graph runs in
process, in several processes, on Dask, Flink or Dataflow.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import fsspec
from apache_beam.metrics import Metrics

from recipes_core.errors import TargetError
from recipes_core.opener import open_transformed
from recipes_core.plan.pattern import SourceKey
from recipes_core.plan.plan import Plan
from recipes_core.progress import ProgressSink, write_totals
from recipes_core.schema import SourceSchema, Template, combine_schemas, schema_of
from recipes_core.storage import AccessPolicy, Pins, StagedSource, Stager, files
from recipes_core.target import (
    ChunkKey,
    ChunkWriter,
    Fragment,
    count_write_units,
    finalise_target,
    fragments,
    prepare_target,
    store_exists,
    template_digest,
)

NAMESPACE = "arco"


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
    """Fetch a source into the cache (or check a local one) and pass on its local path."""

    _runtime = ("stager",)

    def __init__(self, spec: BakeSpec) -> None:
        self.spec = spec
        self.staged = Metrics.counter(NAMESPACE, "sources_staged")
        self.staged_bytes = Metrics.counter(NAMESPACE, "bytes_staged")
        self.progress = ProgressSink(spec.progress_dir)

    def setup(self) -> None:
        self.stager = Stager(self.spec.cache_dir, self.spec.policy)

    def finish_bundle(self) -> None:
        self.progress.flush()

    def process(self, element: tuple[SourceKey, str]) -> Iterator[tuple[SourceKey, StagedSource]]:
        key, url = element
        staged = _memo_get(self.spec, "staged", url)
        if staged is not None:
            yield key, staged
            return
        staged = self.stager.stage(url, self.spec.pin_for(url))
        _memo_put(self.spec, "staged", url, staged)
        self.staged.inc()
        self.staged_bytes.inc(staged.size)
        self.progress.add(sources_staged=1, bytes_staged=staged.size)
        yield key, staged


def read_schema(element: tuple[SourceKey, StagedSource], spec: BakeSpec) -> SourceSchema:
    key, staged = element
    schema = _memo_get(spec, "schema", (key, staged.sha256))
    if schema is None:
        with open_transformed(spec.plan, key, staged.path, staged.url) as ds:
            schema = schema_of(ds, key, staged.url)
        _memo_put(spec, "schema", (key, staged.sha256), schema)
    return schema


def prepare_store(template: Template, spec: BakeSpec) -> Template:
    """Create the store from the template, unless it already holds this exact layout.

    A re-run of the same plan over the same sources finds the same template digest and keeps
    the store (every chunk is then rewritten with identical bytes); anything else starts over.
    """
    target = spec.plan.recipe.target
    digest = template_digest(template, target)
    marker = files.join(os.path.dirname(spec.store), "template.json")
    recorded = files.read_json(marker) or {}
    if not (recorded.get("digest") == digest and store_exists(spec.store)):
        prepare_target(spec.store, template, target)
        files.write_json(marker, {"digest": digest})
    write_totals(spec.progress_dir, chunks=count_write_units(template, target),
                 bytes=template.nbytes)
    return template


def prepare(schemas: list[SourceSchema], spec: BakeSpec) -> Template:
    return prepare_store(combine_schemas(spec.plan, schemas), spec)


def survey_path(spec: BakeSpec) -> str:
    return files.join(os.path.dirname(spec.store), "survey.pickle")


def survey_source(element: tuple[SourceKey, StagedSource], spec: BakeSpec,
                  ) -> tuple[SourceKey, StagedSource, SourceSchema]:
    return element[0], element[1], read_schema(element, spec)


def save_survey(surveyed: list[tuple[SourceKey, StagedSource, SourceSchema]],
                spec: BakeSpec) -> int:
    """Record the sources, and hand the schemas to the driver signed with this bake's key
    (the driver never unpickles anything it did not ask for)."""
    record_sources([(key, staged) for key, staged, _ in surveyed], spec)
    schemas = sorted((schema for _, _, schema in surveyed), key=lambda s: s.key)
    payload = pickle.dumps(schemas, protocol=5)
    signature = hmac.new(bytes.fromhex(spec.survey_key), payload, hashlib.sha256).digest()
    with fsspec.open(survey_path(spec), "wb") as f:
        f.write(signature + payload)
    return len(schemas)


def load_survey(spec: BakeSpec) -> list[SourceSchema]:
    with fsspec.open(survey_path(spec), "rb") as f:
        blob = f.read()
    signature, payload = blob[:32], blob[32:]
    expected = hmac.new(bytes.fromhex(spec.survey_key), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise TargetError("the survey of the sources was not written by this bake",
                          where=survey_path(spec), fix="re-run the bake.")
    return pickle.loads(payload)


def split(
    element: tuple[SourceKey, StagedSource],
    spec: BakeSpec,
    template: Template,
) -> Iterator[tuple[ChunkKey, Fragment]]:
    key, staged = element
    positions = {d.name: i for i, d in enumerate(spec.plan.pattern.dims)}
    with open_transformed(spec.plan, key, staged.path, staged.url) as ds:
        yield from fragments(ds, template, spec.plan.recipe.target, key, positions)


class WriteFn(_DoFn):
    """Write each chunk whole from its grouped pieces."""

    _runtime = ("writer",)

    def __init__(self, store: str, progress_dir: str | None = None) -> None:
        self.store = store
        self.chunks = Metrics.counter(NAMESPACE, "chunks_written")
        self.bytes = Metrics.counter(NAMESPACE, "bytes_written")
        self.progress = ProgressSink(progress_dir)

    def setup(self) -> None:
        self.writer = ChunkWriter(self.store)

    def finish_bundle(self) -> None:
        self.progress.flush()

    def process(self, element: tuple[ChunkKey, Iterable[Fragment]]) -> Iterator[int]:
        key, pieces = element
        nbytes = self.writer.write(key, pieces)
        self.chunks.inc()
        self.bytes.inc(nbytes)
        self.progress.add(chunks_written=1, bytes_written=nbytes)
        yield nbytes


def record_sources(staged: list[tuple[SourceKey, StagedSource]], spec: BakeSpec) -> int:
    """Write ``sources.json`` beside the store: every input with its size and checksum.

    Provenance and the catalogue are built from this record, so they describe exactly the
    bytes this bake read (URLs redacted of credentials and query values).
    """
    records = [dict(s.record(), key=list(k)) for k, s in sorted(staged, key=lambda e: e[0])]
    files.write_json(files.join(os.path.dirname(spec.store), "sources.json"), records, indent=1)
    return len(records)


def finalise(total_bytes: int, store: str, template: Template, recorded: int) -> int:
    """Consolidate the store's metadata, after every chunk and the sources record exist."""
    finalise_target(store)
    return total_bytes


def _staged_sources(pbegin: beam.pvalue.PBegin, spec: BakeSpec) -> beam.PCollection:
    return (
        pbegin
        | "Expand" >> beam.Create(spec.plan.sources())
        | "Stage" >> beam.ParDo(StageFn(spec))
    )


def _record(staged: beam.PCollection, spec: BakeSpec) -> beam.PCollection:
    return (
        staged
        | "CollectSources" >> beam.combiners.ToList()
        | "RecordSources" >> beam.Map(record_sources, spec)
    )


def _write(pieces: beam.PCollection, spec: BakeSpec) -> beam.PCollection:
    return (
        pieces
        | "GroupByChunk" >> beam.GroupByKey()
        | "Write" >> beam.ParDo(WriteFn(spec.store, spec.progress_dir))
        | "SumBytes" >> beam.CombineGlobally(sum)
    )


@dataclass
class Bake(beam.PTransform):
    """The whole bake in one graph, from an empty pipeline to a finalised store.

    Prepare runs as a task and reaches the writers as a side input. Engines that materialise
    side inputs (direct, portable/Flink, Dataflow) run this graph; see :class:`Survey` and
    :class:`WriteChunks` for engines that do not. Yields the bytes written.
    """

    spec: BakeSpec

    def __post_init__(self) -> None:
        beam.PTransform.__init__(self)

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[int]:
        spec = self.spec
        staged = _staged_sources(pbegin, spec)
        template = (
            staged
            | "Schema" >> beam.Map(read_schema, spec)
            | "CollectSchemas" >> beam.combiners.ToList()
            | "Prepare" >> beam.Map(prepare, spec)
        )
        template_view = beam.pvalue.AsSingleton(template)
        recorded = _record(staged, spec)
        return (
            _write(staged | "Split" >> beam.FlatMap(split, spec, template_view), spec)
            | "Finalise" >> beam.Map(finalise, spec.store, template_view,
                                     beam.pvalue.AsSingleton(recorded))
        )


@dataclass
class Survey(beam.PTransform):
    """First of two graphs: stage every source and survey it; the driver then prepares.

    Beam's Dask runner evaluates a side input inside each task by recomputing its whole
    upstream graph, so on Dask the bake runs as two graphs with no side input at all.
    """

    spec: BakeSpec

    def __post_init__(self) -> None:
        beam.PTransform.__init__(self)

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[int]:
        # One linear chain: the Dask runner computes only the graph's last output.
        return (
            _staged_sources(pbegin, self.spec)
            | "Schema" >> beam.Map(survey_source, self.spec)
            | "CollectSurvey" >> beam.combiners.ToList()
            | "SaveSurvey" >> beam.Map(save_survey, self.spec)
        )


@dataclass
class WriteChunks(beam.PTransform):
    """Second graph: split the staged sources by the prepared template and write every chunk."""

    spec: BakeSpec
    template: Template
    staged: list[tuple[SourceKey, StagedSource]]

    def __post_init__(self) -> None:
        beam.PTransform.__init__(self)

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[int]:
        spec = self.spec
        return _write(
            pbegin
            | "Staged" >> beam.Create(self.staged)
            | "Split" >> beam.FlatMap(split, spec, self.template),
            spec,
        )
